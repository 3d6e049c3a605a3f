<?php

declare(strict_types=1);

namespace Gantry;

use Gantry\Runtime\Connector;

/**
 * Base of the generated root class `Client`: how to get one.
 */
abstract class ApiClient extends ApiObject
{
    /**
     * Connects to a gantry engine and returns the API root.
     *
     * The engine is found in this order: the `gantry run` session
     * (`GANTRY_SESSION_PORT`/`GANTRY_SESSION_TOKEN`), then the Unix socket
     * (`GANTRY_SOCKET`, else `$XDG_RUNTIME_DIR/gantry/engine.sock`, else
     * `/tmp/gantry-$UID/engine.sock`); when nothing answers, `gantry serve` is
     * started (`GANTRY_BIN`, else `gantry` on PATH) and left running.
     *
     * Nothing stays open between requests, so there is nothing to close.
     *
     * @param string|null $socket Unix socket to use instead of `GANTRY_SOCKET` or
     *     the default path; given explicitly, it wins over a `gantry run` session.
     * @param string|null $workdir Directory relative host paths resolve against
     *     (default: the current working directory).
     * @param bool $startEngine Start `gantry serve` when no engine answers.
     * @param float $startTimeout Seconds to wait for a started engine.
     * @throws ConnectError When no engine can be reached or started.
     */
    public static function connect(
        ?string $socket = null,
        ?string $workdir = null,
        bool $startEngine = true,
        float $startTimeout = 20.0,
    ): static {
        $session = Connector::open($socket, $workdir, $startEngine, $startTimeout);
        return new static(new Runtime\Context($session));
    }
}
