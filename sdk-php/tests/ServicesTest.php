<?php

declare(strict_types=1);

namespace Gantry\Tests;

use Gantry\Client;
use Gantry\ExecError;
use Gantry\Examples\ServicesExample;
use Gantry\NetworkProtocol;
use PHPUnit\Framework\TestCase;

/**
 * Services (examples/services.php) against a real engine on the Docker runtime
 * (TestEngine::startOnDocker()): services run there only, whatever the
 * machine's default runtime.
 */
final class ServicesTest extends TestCase
{
    private static TestEngine $engine;

    public static function setUpBeforeClass(): void
    {
        self::$engine = TestEngine::startOnDocker();
    }

    public function testABoundServiceAnswersItsClient(): void
    {
        $page = 'page ' . bin2hex(random_bytes(8)) . "\n";
        $example = new ServicesExample(Client::connect());
        self::assertSame($page, $example->fetchPage($page));
        $web = $example->webServer($page);
        $ports = array_map(fn ($port) => [$port->port(), $port->protocol()], $web->ports());
        self::assertSame([[8080, NetworkProtocol::TCP]], $ports);
        self::assertSame("http://{$web->hostname()}:8080", $web->endpoint(scheme: 'http'));
    }

    public function testAServiceThatExitsFailsItsClient(): void
    {
        $client = Client::connect();
        $broken = $client->container()->from(ServicesExample::image())
            ->withExposedPort(8080)
            ->asService(args: ['sh', '-c', 'echo no config; exit 4']);
        try {
            $client->container()->from(ServicesExample::image())
                ->withEnvVariable('RUN', bin2hex(random_bytes(8)))
                ->withServiceBinding('db', $broken)
                ->withExec(['true'])
                ->sync();
            self::fail('expected an ExecError');
        } catch (ExecError $error) {
            self::assertSame(4, $error->getExitCode());
            self::assertSame("no config\n", $error->getStdout());
            self::assertStringContainsString('aliased as db', $error->getMessage());
        }
    }
}
