<?php

declare(strict_types=1);

namespace Gantry\Tests;

use Gantry\BuildArg;
use Gantry\Client;
use Gantry\ConnectError;
use Gantry\Container;
use Gantry\ExecError;
use Gantry\GantryError;
use Gantry\NetworkProtocol;
use Gantry\PortForward;
use Gantry\QueryError;
use Gantry\ReturnType;
use Gantry\Runtime\Context;
use Gantry\Runtime\HttpSession;
use Gantry\TransportError;
use PHPUnit\Framework\TestCase;

/**
 * The runtime without an engine: query building, laziness, IDs, errors.
 */
final class RuntimeTest extends TestCase
{
    private const BUSYBOX = '127.0.0.1:5000/gantry-fixtures/busybox:latest';

    private static function client(FakeSession $session): Client
    {
        return new Client(new Context($session));
    }

    public function testChainedCallsSendNothing(): void
    {
        $session = new FakeSession();
        $container = self::client($session)->container()->from(self::BUSYBOX)->withExec(['echo', 'hi']);
        self::assertInstanceOf(Container::class, $container);
        self::assertSame([], $session->documents);
    }

    public function testObjectParametersTakeTheirOwnType(): void
    {
        $client = self::client(new FakeSession());
        $container = $client->container();
        $cache = $client->cacheVolume('c');
        self::assertInstanceOf(Container::class, $container->withMountedCache('/cache', $cache));
        $this->expectException(\TypeError::class);
        // A CacheVolume where a Secret is expected: PHP refuses it.
        $container->withMountedSecret('/secret', $cache);
    }

    public function testALeafSendsExactlyOneQuery(): void
    {
        $session = new FakeSession([
            ['container' => ['from' => ['withExec' => ['stdout' => "hi\n"]]]],
        ]);
        $out = self::client($session)->container()->from(self::BUSYBOX)->withExec(['echo', 'hi'])->stdout();
        self::assertSame("hi\n", $out);
        self::assertSame(
            ['query{container{from(address:"' . self::BUSYBOX . '"){withExec(args:["echo","hi"]){stdout}}}}'],
            $session->documents,
        );
    }

    public function testOptionalArgumentsAreNamedAndOmittedWhenNull(): void
    {
        $session = new FakeSession([['container' => ['withExec' => ['exitCode' => 5]]]]);
        $code = self::client($session)->container()
            ->withExec(['false'], expect: ReturnType::FAILURE, stdin: null)
            ->exitCode();
        self::assertSame(5, $code);
        self::assertSame(
            ['query{container{withExec(args:["false"],expect:FAILURE){exitCode}}}'],
            $session->documents,
        );
    }

    public function testStringsAreEscaped(): void
    {
        self::assertSame('"a\"b\\\\c\nd é"', Context::literal("a\"b\\c\nd é"));
        self::assertSame('[1,2.5,true,null]', Context::literal([1, 2.5, true, null]));
        self::assertSame('1.0', Context::literal(1.0));
    }

    public function testInputObjectsAreObjectLiterals(): void
    {
        $session = new FakeSession([['directory' => ['dockerBuild' => ['stdout' => 'ok']]]]);
        $out = self::client($session)->directory()
            ->dockerBuild(buildArgs: [
                new BuildArg(name: 'A', value: "quote \" and \\ é"),
                new BuildArg('B', ''),
            ])
            ->stdout();
        self::assertSame('ok', $out);
        self::assertSame(
            ['query{directory{dockerBuild(buildArgs:[{name:"A",value:"quote \\" and \\\\ é"},'
                . '{name:"B",value:""}]){stdout}}}'],
            $session->documents,
        );
    }

    public function testInputObjectOptionalFieldsAreLeftOutWhenNull(): void
    {
        $session = new FakeSession([['host' => ['service' => ['hostname' => 'h']]]]);
        $hostname = self::client($session)->host()
            ->service([
                new PortForward(backend: 80),
                new PortForward(backend: 53, frontend: 5353, protocol: NetworkProtocol::UDP),
            ])
            ->hostname();
        self::assertSame('h', $hostname);
        self::assertSame(
            ['query{host{service(ports:[{backend:80},{frontend:5353,backend:53,protocol:UDP}]){hostname}}}'],
            $session->documents,
        );
    }

    public function testInputObjectsAreReadonly(): void
    {
        $arg = new BuildArg(name: 'A', value: '1');
        $this->expectException(\Error::class);
        /** @phpstan-ignore-next-line the point of the test */
        $arg->name = 'B';
    }

    public function testObjectArgumentsArePassedByIdFetchedOnce(): void
    {
        $session = new FakeSession([
            ['directory' => ['withNewFile' => ['id' => 'Directory:abc']]],
            ['container' => ['withDirectory' => ['stdout' => 'one']]],
            ['container' => ['withDirectory' => ['stdout' => 'two']]],
        ]);
        $client = self::client($session);
        $dir = $client->directory()->withNewFile('a', 'b');
        $client->container()->withDirectory('/src', $dir)->stdout();
        $client->container()->withDirectory('/src', $dir)->stdout();
        self::assertCount(3, $session->documents);
        self::assertSame('query{directory{withNewFile(path:"a",contents:"b"){id}}}', $session->documents[0]);
        self::assertStringContainsString('withDirectory(path:"/src",source:"Directory:abc")', $session->documents[2]);
    }

    public function testSyncContinuesFromTheReturnedId(): void
    {
        $session = new FakeSession([
            ['container' => ['sync' => 'Container:123']],
            ['node' => ['stdout' => 'out']],
        ]);
        $synced = self::client($session)->container()->sync();
        self::assertSame('out', $synced->stdout());
        self::assertSame('query{node(id:"Container:123"){... on Container{stdout}}}', $session->documents[1]);
        self::assertSame('Container:123', $synced->id(), 'the ID is known without a request');
        self::assertCount(2, $session->documents);
    }

    public function testObjectListsAreLoadedById(): void
    {
        $session = new FakeSession([
            ['container' => ['envVariables' => [['id' => 'EnvVariable:1'], ['id' => 'EnvVariable:2']]]],
            ['node' => ['name' => 'PATH']],
        ]);
        $vars = self::client($session)->container()->envVariables();
        self::assertCount(2, $vars);
        self::assertSame('query{container{envVariables{id}}}', $session->documents[0]);
        self::assertSame('PATH', $vars[0]->name());
        self::assertSame('query{node(id:"EnvVariable:1"){... on EnvVariable{name}}}', $session->documents[1]);
    }

    public function testExecErrorsCarryTheProcessFields(): void
    {
        try {
            HttpSession::throwForErrors(['errors' => [[
                'message' => 'process "sh -c exit 3" did not complete successfully: exit code: 3',
                'path' => ['container', 'withExec', 'sync'],
                'extensions' => [
                    '_type' => 'EXEC_ERROR', 'code' => 'EXEC_FAILED', 'exitCode' => 3,
                    'stdout' => "out\n", 'stderr' => "err\n", 'cmd' => ['sh', '-c', 'exit 3'],
                ],
            ]]]);
            self::fail('no exception');
        } catch (ExecError $error) {
            self::assertSame(3, $error->getExitCode());
            self::assertSame("out\n", $error->getStdout());
            self::assertSame("err\n", $error->getStderr());
            self::assertSame(['sh', '-c', 'exit 3'], $error->getCmd());
            self::assertSame('EXEC_FAILED', $error->getErrorCode());
            self::assertSame(['container', 'withExec', 'sync'], $error->getPath());
            self::assertStringContainsString("stderr:\nerr", $error->getMessage());
            self::assertSame(1, substr_count($error->getMessage(), 'exit code: 3'));
        }
    }

    public function testOtherGraphqlErrorsAreQueryErrorsWithACode(): void
    {
        try {
            HttpSession::throwForErrors(['errors' => [
                ['message' => 'no such object', 'extensions' => ['code' => 'NOT_FOUND']],
                ['message' => 'second'],
            ]]);
            self::fail('no exception');
        } catch (QueryError $error) {
            self::assertNotInstanceOf(ExecError::class, $error);
            self::assertSame('NOT_FOUND', $error->getErrorCode());
            self::assertSame('no such object (and 1 more errors)', $error->getMessage());
            self::assertCount(2, $error->getErrors());
        }
    }

    public function testErrorTypesAreDistinct(): void
    {
        foreach ([ConnectError::class, TransportError::class, QueryError::class, ExecError::class] as $class) {
            self::assertTrue(is_subclass_of($class, GantryError::class), $class);
        }
        self::assertTrue(is_subclass_of(ExecError::class, QueryError::class));
        self::assertFalse(is_subclass_of(TransportError::class, QueryError::class));
        self::assertFalse(is_subclass_of(ConnectError::class, TransportError::class));
    }

    public function testSessionPortNeedsAToken(): void
    {
        putenv('GANTRY_SESSION_PORT=1234');
        try {
            $this->expectException(ConnectError::class);
            $this->expectExceptionMessage('GANTRY_SESSION_TOKEN is not');
            Client::connect();
        } finally {
            putenv('GANTRY_SESSION_PORT');
        }
    }

    public function testMissingBinarySaysHowToInstall(): void
    {
        $dir = TestEngine::tempDir('gantry-php-nobin');
        $path = getenv('PATH');
        putenv("PATH={$dir}");
        try {
            Client::connect(socket: "{$dir}/engine.sock");
            self::fail('no exception');
        } catch (ConnectError $error) {
            self::assertStringContainsString('no `gantry` binary was found', $error->getMessage());
            self::assertStringContainsString('GANTRY_BIN', $error->getMessage());
        } finally {
            putenv("PATH={$path}");
            TestEngine::removeTree($dir);
        }
    }

    public function testGantryBinMustBeAnExecutable(): void
    {
        putenv('GANTRY_BIN=/nonexistent/gantry');
        try {
            $this->expectException(ConnectError::class);
            $this->expectExceptionMessage('GANTRY_BIN=/nonexistent/gantry is not an executable file');
            Client::connect(socket: TestEngine::UNSERVED_SOCKET);
        } finally {
            putenv('GANTRY_BIN');
        }
    }

    public function testNoAutoStartWhenDisabled(): void
    {
        $this->expectException(ConnectError::class);
        $this->expectExceptionMessage('no gantry engine answers on /nonexistent/x.sock');
        Client::connect(socket: '/nonexistent/x.sock', startEngine: false);
    }

    public function testEngineThatFailsToStartPointsAtItsLog(): void
    {
        $dir = TestEngine::tempDir('gantry-php-badbin');
        file_put_contents("{$dir}/gantry", "#!/bin/sh\necho 'cannot start: docker is gone' >&2\nexit 7\n");
        chmod("{$dir}/gantry", 0755);
        putenv("GANTRY_BIN={$dir}/gantry");
        try {
            Client::connect(socket: "{$dir}/run/engine.sock");
            self::fail('no exception');
        } catch (ConnectError $error) {
            self::assertStringContainsString('exited with status 7', $error->getMessage());
            self::assertStringContainsString('cannot start: docker is gone', $error->getMessage());
            self::assertSame("{$dir}/run/engine.log", $error->getLogPath());
        } finally {
            putenv('GANTRY_BIN');
            TestEngine::removeTree($dir);
        }
    }

    public function testGeneratedSurfaceFollowsPhpNaming(): void
    {
        $method = new \ReflectionMethod(Container::class, 'withExec');
        $params = $method->getParameters();
        self::assertSame('args', $params[0]->getName());
        self::assertFalse($params[0]->isOptional());
        foreach (array_slice($params, 1) as $param) {
            self::assertTrue($param->isOptional(), $param->getName());
        }
        self::assertTrue((new \ReflectionEnum(ReturnType::class))->isBacked());
        self::assertSame('ANY', ReturnType::ANY->value);
        $generated = (string) file_get_contents(dirname(__DIR__) . '/generated/Api.php');
        self::assertStringStartsWith("<?php // Code generated by cargo xtask codegen. DO NOT EDIT.\n", $generated);
    }

    public function testEveryFileDeclaresStrictTypes(): void
    {
        $root = dirname(__DIR__);
        $files = array_merge(
            glob("{$root}/src/*.php") ?: [],
            glob("{$root}/src/*/*.php") ?: [],
            glob("{$root}/generated/*.php") ?: [],
            glob("{$root}/tests/*.php") ?: [],
            glob("{$root}/examples/*.php") ?: [],
        );
        self::assertGreaterThan(10, count($files));
        foreach ($files as $file) {
            self::assertStringContainsString("\ndeclare(strict_types=1);\n", (string) file_get_contents($file), $file);
        }
    }
}
