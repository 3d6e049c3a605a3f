<?php

declare(strict_types=1);

namespace Gantry;

/**
 * No engine could be reached or started: no binary (the message says how to
 * install one), the started engine exited or timed out, or the `gantry run`
 * session variables are incomplete.
 */
final class ConnectError extends GantryError
{
    public function __construct(string $message, private readonly ?string $logPath = null)
    {
        parent::__construct($message);
    }

    /**
     * The engine log to read, when the SDK started the engine itself.
     */
    public function getLogPath(): ?string
    {
        return $this->logPath;
    }
}
