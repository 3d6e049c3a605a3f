<?php

declare(strict_types=1);

namespace Gantry\Runtime;

/**
 * @internal Environment variables the SDK reads: the same names as the
 * engine's own (`server/cli/src/env.rs`); keep the two in step.
 */
final class Env
{
    /** Set by `gantry run` for the command it runs: loopback port of the session. */
    public const SESSION_PORT = 'GANTRY_SESSION_PORT';
    /** Set by `gantry run`: the token sent as the HTTP basic-auth username. */
    public const SESSION_TOKEN = 'GANTRY_SESSION_TOKEN';
    /** Path of the engine's Unix socket. */
    public const SOCKET = 'GANTRY_SOCKET';
    /** The `gantry` binary to start when no engine answers (else `gantry` on PATH). */
    public const BIN = 'GANTRY_BIN';

    public static function get(string $name): ?string
    {
        $value = getenv($name);
        return is_string($value) && $value !== '' ? $value : null;
    }

    /**
     * `$XDG_RUNTIME_DIR/gantry/engine.sock`, else `/tmp/gantry-$UID/engine.sock`.
     */
    public static function defaultSocket(): string
    {
        $runtimeDir = self::get('XDG_RUNTIME_DIR');
        if ($runtimeDir !== null) {
            return $runtimeDir . '/gantry/engine.sock';
        }
        return '/tmp/gantry-' . self::uid() . '/engine.sock';
    }

    /**
     * The socket to use: `GANTRY_SOCKET` if set and not empty, else the default.
     */
    public static function socketPath(): string
    {
        return self::get(self::SOCKET) ?? self::defaultSocket();
    }

    private static function uid(): int
    {
        if (function_exists('posix_getuid')) {
            return posix_getuid();
        }
        // Without the posix extension: the owner of this process's /proc entry.
        $owner = @fileowner('/proc/self');
        return $owner === false ? getmyuid() : $owner;
    }
}
