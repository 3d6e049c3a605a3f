<?php

declare(strict_types=1);

namespace Gantry\Runtime;

use Gantry\ConnectError;

/**
 * @internal Finding the engine (the same order in every gantry SDK):
 *
 * 1. Inside `gantry run`: `GANTRY_SESSION_PORT` and `GANTRY_SESSION_TOKEN` name
 *    a loopback HTTP session; the token is the basic-auth username.
 * 2. Otherwise the engine's Unix socket: `GANTRY_SOCKET`, else
 *    `$XDG_RUNTIME_DIR/gantry/engine.sock`, else `/tmp/gantry-$UID/engine.sock`.
 *    Requests carry `X-Gantry-Workdir` so relative host paths resolve against
 *    the script's working directory, not the engine's.
 * 3. If nothing answers on the socket: start `gantry serve --socket PATH` (the
 *    binary from `GANTRY_BIN`, else `gantry` on PATH) in its own session, log
 *    to `engine.log` beside the socket, wait for it to answer and leave it
 *    running for the next script. It stops by itself after
 *    `GANTRY_IDLE_TIMEOUT` (default 30m) with no client. Starting one says so,
 *    once, on stderr: `gantry: started engine (pid N) on SOCKET; log: PATH`;
 *    reusing one says nothing.
 */
final class Connector
{
    /**
     * How long an engine the SDK starts waits with no client before it stops,
     * unless `GANTRY_IDLE_TIMEOUT` says otherwise (the same in every gantry SDK).
     */
    public const DEFAULT_IDLE_TIMEOUT = '30m';

    private const INSTALL_HINT = 'build it with `cargo build --release -p gantry` in the gantry repository '
        . 'and put target/release/gantry on PATH, or set ' . Env::BIN . ' to the binary\'s path';

    public static function open(
        ?string $socket,
        ?string $workdir,
        bool $startEngine,
        float $startTimeout,
    ): HttpSession {
        $port = Env::get(Env::SESSION_PORT);
        if ($port !== null && $socket === null) {
            $token = Env::get(Env::SESSION_TOKEN);
            if ($token === null) {
                throw new ConnectError(
                    Env::SESSION_PORT . ' is set but ' . Env::SESSION_TOKEN . ' is not: run the script with '
                    . '`gantry run -- ...`, or unset both to use the engine\'s socket',
                );
            }
            if (!ctype_digit($port)) {
                throw new ConnectError(Env::SESSION_PORT . "={$port} is not a port number");
            }
            return new HttpSession(null, (int) $port, [], $token . ':');
        }

        $path = $socket ?? Env::socketPath();
        $session = new HttpSession($path, null, self::workdirHeader($workdir));
        if (self::answers($path)) {
            return $session;
        }
        if (!$startEngine) {
            throw new ConnectError("no gantry engine answers on {$path}: start one with `gantry serve`");
        }
        self::startEngine($path, $startTimeout);
        return $session;
    }

    /**
     * @return list<string>
     */
    private static function workdirHeader(?string $workdir): array
    {
        $dir = $workdir !== null ? (realpath($workdir) ?: $workdir) : getcwd();
        // Percent-encoded: any directory name (`café` too) reaches the engine, which
        // refuses relative host paths from a client that sends none.
        if (!is_string($dir)) {
            return [];
        }
        return [Env::WORKDIR_HEADER . ': ' . Env::encodeWorkdir($dir)];
    }

    /**
     * Whether an engine accepts connections on the socket.
     */
    public static function answers(string $path): bool
    {
        if (!file_exists($path)) {
            return false;
        }
        $client = @stream_socket_client('unix://' . $path, $errno, $errstr, 1.0);
        if ($client === false) {
            return false;
        }
        fclose($client);
        return true;
    }

    public static function findBinary(): string
    {
        $explicit = Env::get(Env::BIN);
        if ($explicit !== null) {
            if (is_file($explicit) && is_executable($explicit)) {
                return $explicit;
            }
            throw new ConnectError(Env::BIN . "={$explicit} is not an executable file: " . self::INSTALL_HINT);
        }
        foreach (explode(PATH_SEPARATOR, Env::get('PATH') ?? '') as $dir) {
            $candidate = ($dir === '' ? '.' : $dir) . '/gantry';
            if (is_file($candidate) && is_executable($candidate)) {
                return $candidate;
            }
        }
        throw new ConnectError(
            'no gantry engine is running and no `gantry` binary was found to start one: ' . self::INSTALL_HINT,
        );
    }

    /**
     * Starts `gantry serve --socket $path` detached and waits until it answers.
     */
    private static function startEngine(string $path, float $timeout): void
    {
        $binary = self::findBinary();
        $directory = dirname($path);
        if (!is_dir($directory) && !@mkdir($directory, 0700, true) && !is_dir($directory)) {
            throw new ConnectError("cannot create {$directory} for the gantry engine's socket");
        }
        $logPath = $directory . '/engine.log';
        $deadline = microtime(true) + $timeout;
        // One starter at a time: scripts launched together share one engine.
        $lock = @fopen($directory . '/engine.start.lock', 'c');
        if ($lock === false) {
            throw new ConnectError("cannot open the engine start lock in {$directory}", $logPath);
        }
        try {
            while (!flock($lock, LOCK_EX | LOCK_NB)) {
                if (self::answers($path)) {
                    return;
                }
                if (microtime(true) > $deadline) {
                    throw new ConnectError("another process is still starting the gantry engine on {$path}", $logPath);
                }
                usleep(50_000);
            }
            if (self::answers($path)) {
                return;
            }
            self::spawnAndWait($binary, $path, $logPath, $deadline, $timeout);
        } finally {
            // Unlock explicitly: the engine may have inherited this descriptor.
            flock($lock, LOCK_UN);
            fclose($lock);
        }
    }

    private static function spawnAndWait(
        string $binary,
        string $path,
        string $logPath,
        float $deadline,
        float $timeout,
    ): void {
        // setsid: the engine outlives this script and gets no terminal signals from it.
        $command = [$binary, 'serve', '--socket', $path];
        if (is_executable('/usr/bin/setsid')) {
            array_unshift($command, '/usr/bin/setsid');
        }
        $environment = getenv();
        if (Env::get(Env::IDLE_TIMEOUT) === null) {
            $environment[Env::IDLE_TIMEOUT] = self::DEFAULT_IDLE_TIMEOUT;
        }
        $process = @proc_open(
            $command,
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', $logPath, 'a'], 2 => ['file', $logPath, 'a']],
            $pipes,
            null,
            $environment,
        );
        if ($process === false) {
            throw new ConnectError("could not start {$binary} serve", $logPath);
        }
        // proc_get_status() reports the exit code only once, on the first call
        // after the exit: every call goes through here.
        $status = proc_get_status($process);
        $pid = $status['pid'];
        while (true) {
            if (self::answers($path)) {
                fwrite(STDERR, "gantry: started engine (pid {$pid}) on {$path}; log: {$logPath}\n");
                return;
            }
            if ($status['running']) {
                $status = proc_get_status($process);
            }
            if (!$status['running']) {
                if (self::answers($path)) { // another engine won the race
                    return;
                }
                throw new ConnectError(
                    "the gantry engine started from {$binary} exited with status {$status['exitcode']} before "
                    . "answering on {$path}; its log ({$logPath}) ends with:\n" . self::tail($logPath),
                    $logPath,
                );
            }
            if (microtime(true) > $deadline) {
                throw new ConnectError(
                    "the gantry engine started from {$binary} (pid {$pid}) did not answer on {$path} within "
                    . "{$timeout} s; see its log: {$logPath}",
                    $logPath,
                );
            }
            usleep(50_000);
        }
    }

    private static function tail(string $path, int $lines = 20): string
    {
        $text = @file_get_contents($path, false, null, max(0, ((int) @filesize($path)) - 8192));
        if (!is_string($text)) {
            return '';
        }
        return implode("\n", array_slice(explode("\n", rtrim($text)), -$lines));
    }
}
