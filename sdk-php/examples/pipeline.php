<?php

/**
 * The seed pipeline in PHP: test, build and publish a Go web service.
 *
 *     php pipeline.php test --src=path/to/app
 *     php pipeline.php publish --src=. --registry=127.0.0.1:5000/app --tag=v1 \
 *         --registry-user=USER --registry-token=env:REGISTRY_TOKEN
 *
 * Runs the same way from a terminal, in CI, or under `gantry run -- php ...`.
 * Secrets are named by source (`env:NAME` or `file:PATH`); their values go to
 * the engine as secrets and never appear in output.
 */

declare(strict_types=1);

namespace Gantry\Examples;

use Gantry\Client;
use Gantry\Container;
use Gantry\Directory;
use Gantry\ExecError;
use Gantry\Secret;

/**
 * A pipeline step failed; the message says which and why.
 */
final class PipelineError extends \RuntimeException
{
}

final class SeedPipeline
{
    private const GO_MOD_CACHE = '/root/go/pkg/mod';
    private const GO_BUILD_CACHE = '/root/.cache/go-build';

    public function __construct(private readonly Client $client)
    {
    }

    /**
     * The Go toolchain with the source at /src and the shared Go caches.
     */
    public function goBase(Directory $src): Container
    {
        return $this->client->container()
            ->from(self::goImage())
            ->withDirectory('/src', $src)
            ->withWorkdir('/src')
            ->withMountedCache(self::GO_MOD_CACHE, $this->client->cacheVolume('go-mod'))
            ->withMountedCache(self::GO_BUILD_CACHE, $this->client->cacheVolume('go-build'))
            ->withEnvVariable('GOMODCACHE', self::GO_MOD_CACHE)
            ->withEnvVariable('GOCACHE', self::GO_BUILD_CACHE);
    }

    /**
     * Runs `go test ./...` and returns its output.
     */
    public function test(Directory $src): string
    {
        return $this->goBase($src)->withExec(['go', 'test', '-count=1', './...'])->stdout();
    }

    /**
     * A minimal runtime image holding the static server binary at /server.
     */
    public function build(Directory $src): Container
    {
        $binary = $this->goBase($src)
            ->withEnvVariable('CGO_ENABLED', '0')
            ->withEnvVariable('GOOS', 'linux')
            ->withExec(['go', 'build', '-ldflags=-s -w', '-o', '/out/server', './cmd/server'])
            ->file('/out/server');
        return $this->client->container()
            ->from(self::runtimeImage())
            ->withFile('/server', $binary)
            ->withEntrypoint(['/server']);
    }

    /**
     * Tests, builds and publishes `$registry:$tag`; returns the reference with digest.
     */
    public function publish(
        Directory $src,
        string $registry,
        string $tag,
        string $registryUser,
        Secret $registryToken,
    ): string {
        try {
            $this->test($src);
        } catch (ExecError $error) {
            throw new PipelineError('tests failed: ' . $error->getStdout() . $error->getStderr(), 0, $error);
        }
        return $this->build($src)
            ->withRegistryAuth($registry, $registryUser, $registryToken)
            ->publish("{$registry}:{$tag}");
    }

    /**
     * A secret from `env:NAME` or `file:PATH`.
     */
    public function secretFrom(string $name, string $source): Secret
    {
        [$kind, $where] = array_pad(explode(':', $source, 2), 2, '');
        if ($kind === 'env') {
            $value = getenv($where);
            if (!is_string($value)) {
                throw new PipelineError("environment variable {$where} is not set");
            }
        } elseif ($kind === 'file') {
            $value = @file_get_contents($where);
            if (!is_string($value)) {
                throw new PipelineError("cannot read the secret file {$where}");
            }
            $value = rtrim($value, "\n");
        } else {
            throw new PipelineError("secret source {$source}: use env:NAME or file:PATH");
        }
        return $this->client->setSecret($name, $value);
    }

    /** Local stand-in for golang:1.22-alpine. */
    public static function goImage(): string
    {
        return getenv('SEED_GO_IMAGE') ?: '127.0.0.1:5000/gantry-fixtures/golang:latest';
    }

    /** Local stand-in for gcr.io/distroless/static-debian12:nonroot. */
    public static function runtimeImage(): string
    {
        return getenv('SEED_RUNTIME_IMAGE') ?: '127.0.0.1:5000/gantry-fixtures/static:nonroot';
    }

    /**
     * The command line: `test` or `publish` with `--name=value` options.
     *
     * @param list<string> $argv
     */
    public static function main(array $argv): int
    {
        $command = $argv[1] ?? '';
        $options = ['src' => '.'];
        foreach (array_slice($argv, 2) as $arg) {
            if (preg_match('/^--([a-z-]+)=(.*)$/s', $arg, $match) !== 1) {
                fwrite(STDERR, "pipeline: unexpected argument {$arg}\n");
                return 2;
            }
            $options[$match[1]] = $match[2];
        }
        $required = $command === 'publish' ? ['registry', 'tag', 'registry-user', 'registry-token'] : [];
        if (!in_array($command, ['test', 'publish'], true)) {
            fwrite(STDERR, "usage: php pipeline.php test|publish [--src=DIR] [--registry=... --tag=... "
                . "--registry-user=... --registry-token=env:NAME]\n");
            return 2;
        }
        foreach ($required as $name) {
            if (!isset($options[$name])) {
                fwrite(STDERR, "pipeline: publish needs --{$name}\n");
                return 2;
            }
        }
        $client = Client::connect();
        $pipeline = new self($client);
        $src = $client->host()->directory($options['src']);
        try {
            if ($command === 'test') {
                echo $pipeline->test($src);
            } else {
                $token = $pipeline->secretFrom('registry-token', $options['registry-token']);
                echo $pipeline->publish(
                    $src,
                    $options['registry'],
                    $options['tag'],
                    $options['registry-user'],
                    $token,
                ), "\n";
            }
        } catch (PipelineError $error) {
            fwrite(STDERR, "pipeline: {$error->getMessage()}\n");
            return 1;
        }
        return 0;
    }
}

if (PHP_SAPI === 'cli' && realpath((string) ($_SERVER['SCRIPT_FILENAME'] ?? '')) === __FILE__) {
    $autoload = __DIR__ . '/../vendor/autoload.php';
    require is_file($autoload) ? $autoload : __DIR__ . '/../../vendor/autoload.php';
    exit(SeedPipeline::main(array_values($_SERVER['argv'])));
}
