<?php

declare(strict_types=1);

namespace Gantry\Tests;

use PHPUnit\Framework\Assert;

/**
 * A private engine for the whole test run: `gantry serve` on its own temporary
 * socket, started on first use and stopped when PHP exits. Its state
 * directory persists between runs (see stateDir()). The binary is GANTRY_BIN, else
 * target/debug/gantry (`make php-test` builds it first).
 *
 * start() runs on the default runtime (auto: native where it can run);
 * startOnDocker() pins a second engine to the Docker runtime for the services
 * tests (services run there only). Each points GANTRY_SOCKET at its engine.
 */
final class TestEngine
{
    public const UNSERVED_SOCKET = '/nonexistent/gantry-php-tests-without-engine.sock';

    /** @var array<string, self> engines by runtime ('' for the default) */
    private static array $engines = [];
    private static ?string $binary = null;

    /** @param resource $process */
    private function __construct(
        public readonly string $socket,
        public readonly string $stateDir,
        public readonly string $log,
        public readonly int $pid,
        private readonly mixed $process,
        private readonly string $base,
    ) {
    }

    public static function isolate(): void
    {
        $bin = getenv('GANTRY_BIN');
        self::$binary = is_string($bin) && $bin !== '' ? $bin : dirname(__DIR__, 2) . '/target/debug/gantry';
        foreach (['GANTRY_SESSION_PORT', 'GANTRY_SESSION_TOKEN', 'GANTRY_BIN'] as $name) {
            putenv($name);
        }
        putenv('GANTRY_SOCKET=' . self::UNSERVED_SOCKET);
    }

    public static function binary(): string
    {
        $binary = self::$binary ?? '';
        if (!is_executable($binary)) {
            Assert::fail("no gantry binary at {$binary}: run `cargo build -p gantry` first");
        }
        return $binary;
    }

    public static function start(): self
    {
        return self::startOn('');
    }

    /** The engine pinned to the Docker runtime (`GANTRY_RUNTIME=docker`): services run there only. */
    public static function startOnDocker(): self
    {
        return self::startOn('docker');
    }

    private static function startOn(string $runtime): self
    {
        $running = self::$engines[$runtime] ?? null;
        if ($running !== null) {
            putenv('GANTRY_SOCKET=' . $running->socket);
            return $running;
        }
        $base = self::tempDir('gantry-php-engine');
        $socket = "{$base}/engine.sock";
        $state = self::stateDir($runtime === '' ? 'engine' : "engine-{$runtime}");
        $log = "{$base}/engine.log";
        $env = getenv();
        if ($runtime !== '') {
            $env['GANTRY_RUNTIME'] = $runtime;
        }
        $process = proc_open(
            [self::binary(), 'serve', '--socket', $socket, '--state-dir', $state],
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', $log, 'a'], 2 => ['file', $log, 'a']],
            $pipes,
            null,
            $env,
        );
        if ($process === false) {
            Assert::fail('could not start gantry serve');
        }
        $deadline = microtime(true) + 60;
        while (!self::answers($socket)) {
            $status = proc_get_status($process);
            if (!$status['running']) {
                Assert::fail("gantry serve exited with {$status['exitcode']}:\n" . self::tail($log));
            }
            if (microtime(true) > $deadline) {
                Assert::fail("gantry serve did not answer within 60 s:\n" . self::tail($log));
            }
            usleep(50_000);
        }
        $engine = new self($socket, $state, $log, proc_get_status($process)['pid'], $process, $base);
        self::$engines[$runtime] = $engine;
        register_shutdown_function([$engine, 'stop']);
        putenv("GANTRY_SOCKET={$socket}");
        return $engine;
    }

    public function stop(): void
    {
        proc_terminate($this->process, 15);
        $deadline = microtime(true) + 20;
        while (proc_get_status($this->process)['running'] && microtime(true) < $deadline) {
            usleep(50_000);
        }
        if (proc_get_status($this->process)['running']) {
            proc_terminate($this->process, 9);
        }
        proc_close($this->process);
        self::removeTree($this->base);
    }

    /**
     * A state directory kept between runs (under target/, or
     * GANTRY_PHP_TEST_STATE): the Go build cache volume and cached steps make a
     * warm `make php-test` take seconds instead of minutes of compiling.
     * `gantry prune --state-dir DIR` (or deleting it) starts cold again.
     */
    public static function stateDir(string $name): string
    {
        $root = getenv('GANTRY_PHP_TEST_STATE');
        if (!is_string($root) || $root === '') {
            $root = dirname(__DIR__, 2) . '/target/php-test-state';
        }
        @mkdir("{$root}/{$name}", 0700, true);
        return "{$root}/{$name}";
    }

    /** Removes the images an engine cached, then its state (cache volumes). */
    public static function prune(string $stateDir): void
    {
        $process = proc_open(
            [self::binary(), 'prune', '--state-dir', $stateDir],
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']],
            $pipes,
        );
        if ($process !== false) {
            proc_close($process);
        }
        self::removeTree($stateDir);
    }

    public static function answers(string $socket): bool
    {
        $client = @stream_socket_client("unix://{$socket}", $errno, $errstr, 1.0);
        if ($client === false) {
            return false;
        }
        fclose($client);
        return true;
    }

    public static function tail(string $path, int $lines = 30): string
    {
        $text = @file_get_contents($path);
        return is_string($text) ? implode("\n", array_slice(explode("\n", $text), -$lines)) : '(no log)';
    }

    public static function tempDir(string $prefix): string
    {
        $dir = sys_get_temp_dir() . "/{$prefix}-" . bin2hex(random_bytes(6));
        mkdir($dir, 0700, true);
        return $dir;
    }

    public static function removeTree(string $path): void
    {
        if (is_link($path) || is_file($path)) {
            @unlink($path);
            return;
        }
        if (!is_dir($path)) {
            return;
        }
        foreach (scandir($path) ?: [] as $entry) {
            if ($entry !== '.' && $entry !== '..') {
                self::removeTree("{$path}/{$entry}");
            }
        }
        @rmdir($path);
    }

    public static function copyTree(string $from, string $to): void
    {
        if (is_dir($from)) {
            @mkdir($to, 0755, true);
            foreach (scandir($from) ?: [] as $entry) {
                if ($entry !== '.' && $entry !== '..') {
                    self::copyTree("{$from}/{$entry}", "{$to}/{$entry}");
                }
            }
            return;
        }
        copy($from, $to);
    }

    /**
     * Runs a command to completion with its output in files (not pipes: an
     * engine it starts must not hold our end open).
     *
     * @param list<string> $command
     * @param array<string, string> $env Variables to set (added to ours).
     * @return array{int, string, string} exit code, stdout, stderr
     */
    public static function run(array $command, string $cwd, array $env = [], int $timeout = 180): array
    {
        $out = tempnam(sys_get_temp_dir(), 'gantry-out');
        $err = tempnam(sys_get_temp_dir(), 'gantry-err');
        $environment = array_merge(getenv(), $env);
        $process = proc_open(
            $command,
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', $out, 'w'], 2 => ['file', $err, 'w']],
            $pipes,
            $cwd,
            $environment,
        );
        if ($process === false) {
            Assert::fail('could not run ' . implode(' ', $command));
        }
        $deadline = microtime(true) + $timeout;
        while (($status = proc_get_status($process))['running']) {
            if (microtime(true) > $deadline) {
                proc_terminate($process, 9);
                Assert::fail(sprintf(
                    "timed out after %d s: %s\nits stdout so far:\n%s\nits stderr so far:\n%s",
                    $timeout,
                    implode(' ', $command),
                    substr((string) file_get_contents($out), -4000),
                    substr((string) file_get_contents($err), -4000),
                ));
            }
            usleep(20_000);
        }
        proc_close($process);
        $result = [(int) $status['exitcode'], (string) file_get_contents($out), (string) file_get_contents($err)];
        unlink($out);
        unlink($err);
        return $result;
    }

    /** The pid of the `gantry serve --socket $socket` some script started, if any. */
    public static function serverOn(string $socket): ?int
    {
        foreach (glob('/proc/[0-9]*') ?: [] as $dir) {
            $cmdline = @file_get_contents("{$dir}/cmdline");
            if (!is_string($cmdline)) {
                continue;
            }
            $args = explode("\0", $cmdline);
            if (array_slice($args, 1, 3) === ['serve', '--socket', $socket]) {
                return (int) basename($dir);
            }
        }
        return null;
    }

    public static function stopServerOn(string $socket): void
    {
        $pid = self::serverOn($socket);
        if ($pid === null) {
            return;
        }
        posix_kill($pid, 15);
        $deadline = microtime(true) + 20;
        while (file_exists("/proc/{$pid}") && microtime(true) < $deadline) {
            $stat = @file_get_contents("/proc/{$pid}/stat");
            if (is_string($stat) && preg_match('/^\d+ \(.*\) Z/', $stat) === 1) {
                break;
            }
            usleep(50_000);
        }
    }
}
