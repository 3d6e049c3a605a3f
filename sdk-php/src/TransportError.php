<?php

declare(strict_types=1);

namespace Gantry;

/**
 * The engine answered, but not with a GraphQL response: an HTTP error status
 * such as 401 (wrong session token), a dropped connection, a malformed body.
 */
final class TransportError extends GantryError
{
    public function __construct(string $message, private readonly ?int $status = null)
    {
        parent::__construct($message);
    }

    /**
     * The HTTP status, if a response arrived.
     */
    public function getStatus(): ?int
    {
        return $this->status;
    }
}
