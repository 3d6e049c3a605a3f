<?php

declare(strict_types=1);

namespace Gantry\Tests;

use PHPUnit\Framework\TestCase;

/**
 * The README's example as a newcomer runs it: a fresh Composer project that
 * requires sdk-php by path with Packagist disabled, `composer install`, then
 * `php pipeline.php` with no engine running, so the SDK starts one from
 * GANTRY_BIN on a fresh socket and leaves it running for the next script.
 */
final class FreshProjectTest extends TestCase
{
    public static function readmeExample(): string
    {
        $readme = (string) file_get_contents(dirname(__DIR__) . '/README.md');
        self::assertSame(1, preg_match("/## Example\n.*?```php\n(.*?)```/s", $readme, $match));
        return $match[1];
    }

    public function testReadmeExampleRunsInAFreshProject(): void
    {
        $project = TestEngine::tempDir('gantry-php-project');
        $socket = "{$project}/.engine/engine.sock";
        try {
            TestEngine::copyTree(dirname(__DIR__, 2) . '/sdk-python/tests/fixtures/goapp', $project);
            file_put_contents("{$project}/composer.json", json_encode([
                'name' => 'example/pipeline',
                'repositories' => [
                    ['packagist.org' => false],
                    ['type' => 'path', 'url' => dirname(__DIR__), 'options' => ['symlink' => false]],
                ],
                'require' => ['gantry/sdk' => '*@dev'],
            ], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));
            file_put_contents("{$project}/pipeline.php", self::readmeExample());

            [$code, $out, $err] = TestEngine::run(
                ['composer', 'install', '--no-interaction', '--no-progress'],
                $project,
                ['COMPOSER_HOME' => "{$project}/.composer", 'COMPOSER_DISABLE_NETWORK' => '1'],
            );
            self::assertSame(0, $code, $out . $err);
            self::assertFileExists("{$project}/vendor/autoload.php");

            $token = 'gantry-php-readme-' . bin2hex(random_bytes(8));
            $env = [
                'GANTRY_SOCKET' => $socket,
                'GANTRY_BIN' => TestEngine::binary(),
                'GANTRY_STATE_DIR' => TestEngine::stateDir('fresh-project'),
                'REGISTRY_TOKEN' => $token,
                'GANTRY_IDLE_TIMEOUT' => '',
            ];
            self::assertFalse(TestEngine::answers($socket));
            // The timeout only stops a hung script, it is no speed check: the example builds
            // and tests a Go program in containers from a cold cache, which took over five
            // minutes on a loaded two-core CI machine.
            [$code, $out, $err] = TestEngine::run(['php', 'pipeline.php'], $project, $env, 900);
            $log = TestEngine::tail("{$project}/.engine/engine.log");
            self::assertSame(0, $code, $out . $err . $log);
            self::assertStringContainsString("ok  \texample.com/seedapp/greet", $out);
            self::assertMatchesRegularExpression(
                '~^127\.0\.0\.1:5000/gantry-php-example/app:latest@sha256:[0-9a-f]{64}$~m',
                $out,
            );
            self::assertTrue(TestEngine::answers($socket), 'the engine keeps running after the script');
            // Starting the engine is said once, on stderr.
            self::assertSame(1, substr_count($err, 'started engine'), $err);
            self::assertMatchesRegularExpression(
                '~^gantry: started engine \(pid \d+\) on ' . preg_quote($socket, '~') . '; log: '
                . preg_quote("{$project}/.engine/engine.log", '~') . '$~m',
                $err,
            );
            self::assertStringNotContainsString($token, $out . $err);
            self::assertStringNotContainsString($token, (string) file_get_contents("{$project}/.engine/engine.log"));

            // A second script reuses the running engine (and its cache).
            [$code, $again, $err] = TestEngine::run(['php', 'pipeline.php'], $project, $env, 300);
            self::assertSame(0, $code, $again . $err);
            self::assertSame($out, $again);
            $log = (string) file_get_contents("{$project}/.engine/engine.log");
            self::assertSame(1, substr_count($log, 'serving on unix://'), 'the second script reused it');
            self::assertStringNotContainsString('started engine', $err, 'a reused engine says nothing');
            self::assertStringContainsString('idle_timeout=30m', $log, "the SDKs' idle timeout");
        } finally {
            TestEngine::stopServerOn($socket);
            TestEngine::removeTree($project);
        }
    }
}
