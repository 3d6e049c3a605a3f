<?php

declare(strict_types=1);

namespace Gantry\Tests;

use Gantry\Client;
use Gantry\Container;
use Gantry\ExecError;
use Gantry\QueryError;
use Gantry\ReturnType;
use PHPUnit\Framework\TestCase;

/**
 * The SDK against a real engine (TestEngine): results, errors, secrets.
 */
final class EngineTest extends TestCase
{
    public const BUSYBOX = '127.0.0.1:5000/gantry-fixtures/busybox:latest';

    private static TestEngine $engine;

    public static function setUpBeforeClass(): void
    {
        self::$engine = TestEngine::start();
    }

    private static function busybox(Client $client): Container
    {
        return $client->container()->from(self::BUSYBOX);
    }

    public function testStdoutAndChaining(): void
    {
        $client = Client::connect();
        $out = self::busybox($client)
            ->withNewFile('/greeting', 'hi')
            ->withWorkdir('/tmp')
            ->withExec(['sh', '-c', 'echo $(cat /greeting) from $(pwd)'])
            ->stdout();
        self::assertSame("hi from /tmp\n", $out);
        self::assertNotSame('', $client->version());
        $names = array_map(
            static fn ($var): string => $var->name(),
            self::busybox($client)->withEnvVariable('GREETING', 'hello')->envVariables(),
        );
        self::assertContains('GREETING', $names);
    }

    public function testExecErrorHasExitCodeOutputAndCommand(): void
    {
        $cmd = ['sh', '-c', 'echo to-out; echo to-err >&2; exit 3'];
        try {
            self::busybox(Client::connect())->withExec($cmd)->sync();
            self::fail('the command should fail');
        } catch (ExecError $error) {
            self::assertSame(3, $error->getExitCode());
            self::assertSame("to-out\n", $error->getStdout());
            self::assertSame("to-err\n", $error->getStderr());
            self::assertSame($cmd, $error->getCmd());
            self::assertStringContainsString('to-err', $error->getMessage());
        }
    }

    public function testExpectedFailureIsNotAnError(): void
    {
        $code = self::busybox(Client::connect())
            ->withExec(['sh', '-c', 'exit 5'], expect: ReturnType::FAILURE)
            ->exitCode();
        self::assertSame(5, $code);
    }

    public function testOtherErrorsAreQueryErrors(): void
    {
        try {
            Client::connect()->loadContainerFromID('Container:' . str_repeat('0', 64))->stdout();
            self::fail('an unknown ID should fail');
        } catch (QueryError $error) {
            self::assertNotInstanceOf(ExecError::class, $error);
            self::assertNotNull($error->getErrorCode(), 'the engine sets extensions.code');
        }
    }

    public function testRelativeHostPathsResolveAgainstTheWorkdir(): void
    {
        $dir = TestEngine::tempDir('gantry-php-host');
        mkdir("{$dir}/data");
        file_put_contents("{$dir}/data/a.txt", "alpha\n");
        try {
            $client = Client::connect(workdir: $dir);
            self::assertSame("alpha\n", $client->host()->file('data/a.txt')->contents());
            self::assertSame(['a.txt'], $client->host()->directory('data')->entries());
        } finally {
            TestEngine::removeTree($dir);
        }
    }

    public function testSecretValuesNeverAppearInOutput(): void
    {
        $value = 'gantry-php-secret-' . bin2hex(random_bytes(8));
        $client = Client::connect();
        $secret = $client->setSecret('api-token', $value);
        $ctr = self::busybox($client)->withSecretVariable('TOKEN', $secret);
        $out = $ctr->withExec(['sh', '-c', 'echo out=$TOKEN; echo err=$TOKEN >&2']);
        $stdout = $out->stdout();
        $stderr = $out->stderr();
        try {
            $ctr->withExec(['sh', '-c', 'echo $TOKEN; echo $TOKEN >&2; exit 1'])->sync();
            self::fail('the command should fail');
        } catch (ExecError $failure) {
        }
        foreach ([$stdout, $stderr, $secret->id(), $failure->getMessage(), $failure->getStdout(),
            $failure->getStderr(), json_encode($failure->getErrors())] as $text) {
            self::assertStringNotContainsString($value, (string) $text);
        }
        self::assertStringStartsWith('out=', $stdout);
        self::assertStringStartsWith('err=', $stderr);
        self::assertStringNotContainsString($value, (string) file_get_contents(self::$engine->log));
    }

    /**
     * The real engine's version against the SDK's: GANTRY_TEST_SDK_VERSION
     * makes the SDK claim another one (a test-only override).
     */
    public function testVersionMismatchWarnsOnceAndAMatchSaysNothing(): void
    {
        $dir = TestEngine::tempDir('gantry-php-versions');
        $autoload = dirname(__DIR__) . '/vendor/autoload.php';
        file_put_contents("{$dir}/two_connections.php", <<<PHP
            <?php

            declare(strict_types=1);

            require '{$autoload}';

            \Gantry\Client::connect()->version();
            \Gantry\Client::connect()->version();
            PHP);
        [$code, , $err] = TestEngine::run(['php', "{$dir}/two_connections.php"], $dir);
        self::assertSame(0, $code, $err);
        self::assertSame('', $err, 'a matching engine says nothing');
        [$code, , $err] = TestEngine::run(
            ['php', "{$dir}/two_connections.php"],
            $dir,
            ['GANTRY_TEST_SDK_VERSION' => '0.0.4-test'],
        );
        TestEngine::removeTree($dir);
        self::assertSame(0, $code, $err);
        $version = \Gantry\Version::VERSION;
        $warnings = array_values(array_filter(
            explode("\n", $err),
            static fn (string $line): bool => str_contains($line, 'warning'),
        ));
        self::assertSame([
            "gantry: warning: this SDK is version 0.0.4-test but the engine is version {$version}; "
            . "upgrade the SDK to {$version}, or use a 0.0.4-test engine: stop this one "
            . '(`gantry engine stop`) and set GANTRY_BIN to a gantry 0.0.4-test binary',
        ], $warnings, $err);
        // The engine logged the odd client once, though it connected twice.
        $log = (string) file_get_contents(self::$engine->log);
        self::assertSame(1, substr_count($log, 'client=php/0.0.4-test'), TestEngine::tail(self::$engine->log));
    }

    public function testGantryRunSession(): void
    {
        $dir = TestEngine::tempDir('gantry-php-run');
        file_put_contents("{$dir}/hello.txt", "from the run directory\n");
        $autoload = dirname(__DIR__) . '/vendor/autoload.php';
        $busybox = self::BUSYBOX;
        file_put_contents("{$dir}/in_session.php", <<<PHP
            <?php

            declare(strict_types=1);

            require '{$autoload}';

            if (getenv('GANTRY_SESSION_PORT') === false) {
                exit(3);
            }
            \$client = \\Gantry\\Client::connect();
            echo \$client->container()
                ->from('{$busybox}')
                ->withFile('/hello.txt', \$client->host()->file('hello.txt'))
                ->withExec(['cat', '/hello.txt'])
                ->stdout();
            putenv('GANTRY_SESSION_TOKEN=wrong-token');
            try {
                \\Gantry\\Client::connect()->version();
            } catch (\\Gantry\\TransportError \$error) {
                echo 'wrong token: ', \$error->getStatus(), "\\n";
            }
            PHP);
        $state = "{$dir}/state";
        try {
            [$code, $out, $err] = TestEngine::run(
                [TestEngine::binary(), 'run', '--state-dir', $state, '--', 'php', "{$dir}/in_session.php"],
                $dir,
                ['GANTRY_SOCKET' => "{$dir}/unused.sock"],
            );
        } finally {
            TestEngine::prune($state);
        }
        self::assertSame(0, $code, $err);
        self::assertSame("from the run directory\nwrong token: 401\n", $out);
        TestEngine::removeTree($dir);
    }
}
