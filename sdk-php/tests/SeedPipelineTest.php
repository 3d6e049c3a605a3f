<?php

declare(strict_types=1);

namespace Gantry\Tests;

use Gantry\Client;
use Gantry\Examples\PipelineError;
use Gantry\Examples\SeedPipeline;
use Gantry\QueryError;
use PHPUnit\Framework\TestCase;

/**
 * The seed pipeline (examples/pipeline.php) against the engine and the local
 * registries: Go tests with cache volumes, a static build in a minimal image,
 * and a publish authenticated with a secret.
 */
final class SeedPipelineTest extends TestCase
{
    private static TestEngine $engine;
    private static string $src;
    private static string $tag;
    private static string $testOutput;
    private static string $plainRef;
    private static string $authRef;

    public static function setUpBeforeClass(): void
    {
        self::$engine = TestEngine::start();
        self::$src = TestEngine::tempDir('gantry-php-src') . '/goapp';
        TestEngine::copyTree(dirname(__DIR__, 2) . '/sdk-python/tests/fixtures/goapp', self::$src);
        self::$tag = 't' . bin2hex(random_bytes(6));
        $client = Client::connect();
        $pipeline = new SeedPipeline($client);
        $src = $client->host()->directory(self::$src);
        self::$testOutput = $pipeline->test($src);
        $token = $client->setSecret('registry-token', self::authPassword());
        self::$authRef = $pipeline->publish($src, self::authRepo(), self::$tag, self::authUser(), $token);
        $unused = $client->setSecret('unused-token', 'unused');
        self::$plainRef = $pipeline->publish($src, self::plainRepo(), self::$tag, 'nobody', $unused);
    }

    public static function tearDownAfterClass(): void
    {
        TestEngine::removeTree(dirname(self::$src));
    }

    private static function env(string $name, string $default): string
    {
        $value = getenv($name);
        return is_string($value) && $value !== '' ? $value : $default;
    }

    private static function plainRepo(): string
    {
        return self::env('GANTRY_TEST_REGISTRY', '127.0.0.1:5000') . '/gantry-sdk-php/seed';
    }

    private static function authRepo(): string
    {
        return self::env('GANTRY_TEST_AUTH_REGISTRY', '127.0.0.1:5001') . '/gantry-sdk-php/seed';
    }

    private static function authUser(): string
    {
        return self::env('GANTRY_TEST_AUTH_REGISTRY_USER', 'gantry');
    }

    private static function authPassword(): string
    {
        return self::env('GANTRY_TEST_AUTH_REGISTRY_PASSWORD', 'gantry-test-password');
    }

    public function testGoTestsRun(): void
    {
        self::assertStringContainsString("ok  \texample.com/seedapp/greet", self::$testOutput);
    }

    public function testPublishedImageRuns(): void
    {
        $ref = self::$plainRef;
        self::assertStringStartsWith(self::plainRepo() . ':' . self::$tag . '@sha256:', $ref);
        [$code, $out, $err] = TestEngine::run(['docker', 'run', '--rm', $ref], sys_get_temp_dir());
        self::assertSame(0, $code, $err);
        self::assertSame("hello, world, from the gantry seed app\n", $out);
        [, $config] = TestEngine::run(
            ['docker', 'image', 'inspect', '-f', '{{.Config.User}} {{json .Config.Entrypoint}}', $ref],
            sys_get_temp_dir(),
        );
        self::assertSame('65532 ["/server"]', trim($config));
        TestEngine::run(['docker', 'image', 'rm', $ref], sys_get_temp_dir());
    }

    public function testPublishAuthenticatesWithTheSecret(): void
    {
        $ref = self::$authRef;
        self::assertStringStartsWith(self::authRepo() . ':' . self::$tag . '@sha256:', $ref);
        [$host, $repo] = explode('/', self::authRepo(), 2);
        $curl = curl_init("http://{$host}/v2/{$repo}/manifests/" . self::$tag);
        self::assertNotFalse($curl);
        curl_setopt_array($curl, [
            CURLOPT_NOBODY => true,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_HEADER => true,
            CURLOPT_USERPWD => self::authUser() . ':' . self::authPassword(),
            CURLOPT_HTTPHEADER => [
                'Accept: application/vnd.oci.image.manifest.v1+json, '
                . 'application/vnd.docker.distribution.manifest.v2+json',
            ],
        ]);
        $head = (string) curl_exec($curl);
        self::assertMatchesRegularExpression('/^docker-content-digest: (\S+)/mi', $head);
        preg_match('/^docker-content-digest: (\S+)/mi', $head, $match);
        self::assertSame(substr($ref, (int) strrpos($ref, '@') + 1), $match[1]);
    }

    public function testPublishWithAWrongTokenFailsWithoutLeakingIt(): void
    {
        $wrong = 'wrong-' . bin2hex(random_bytes(8));
        $client = Client::connect();
        $src = $client->host()->directory(self::$src);
        try {
            (new SeedPipeline($client))->publish(
                $src,
                self::authRepo(),
                self::$tag . '-x',
                self::authUser(),
                $client->setSecret('registry-token', $wrong),
            );
            self::fail('a wrong token should fail the publish');
        } catch (QueryError $error) {
            self::assertStringNotContainsString($wrong, $error->getMessage());
            self::assertStringNotContainsString($wrong, (string) json_encode($error->getErrors()));
        }
        self::assertStringNotContainsString($wrong, (string) file_get_contents(self::$engine->log));
    }

    public function testFailingGoTestsStopThePublish(): void
    {
        $client = Client::connect();
        $src = $client->host()->directory(self::$src)->withNewFile(
            'greet/fail_test.go',
            "package greet\n\nimport \"testing\"\n\nfunc TestFails(t *testing.T) { t.Fatal(\"deliberate failure\") }\n",
        );
        try {
            (new SeedPipeline($client))->publish(
                $src,
                self::plainRepo(),
                self::$tag . '-fail',
                'x',
                $client->setSecret('registry-token', 'unused'),
            );
            self::fail('failing tests should stop the publish');
        } catch (PipelineError $error) {
            self::assertStringStartsWith('tests failed: ', $error->getMessage());
            self::assertStringContainsString('deliberate failure', $error->getMessage());
        }
    }

    public function testSecretsNeverReachTheEngineLog(): void
    {
        self::assertStringNotContainsString(self::authPassword(), (string) file_get_contents(self::$engine->log));
    }
}
