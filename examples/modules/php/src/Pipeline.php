<?php

declare(strict_types=1);

use Gantry\Client;
use Gantry\Container;
use Gantry\Directory;
use Gantry\ExecError;
use Gantry\Secret;

/**
 * Tests, builds and publishes the seed Go service.
 */
final class Pipeline
{
    private static function image(string $name): string
    {
        $fixtures = getenv('GANTRY_TEST_FIXTURES') ?: '127.0.0.1:5000/gantry-fixtures';
        return "$fixtures/$name";
    }

    private static function goBase(Client $client, Directory $src): Container
    {
        return $client->container()
            ->from(self::image('golang:latest'))
            ->withDirectory('/src', $src)
            ->withWorkdir('/src')
            ->withMountedCache('/root/go/pkg/mod', $client->cacheVolume('go-mod'))
            ->withMountedCache('/root/.cache/go-build', $client->cacheVolume('go-build'));
    }

    /**
     * Runs `go test ./...` and returns its output.
     *
     * @param Directory $src The Go module to test.
     */
    public function test(Directory $src): string
    {
        $client = Client::connect();
        return self::goBase($client, $src)->withExec(['go', 'test', './...'])->stdout();
    }

    /**
     * Builds the server into a minimal non-root image.
     *
     * @param Directory $src The Go module to build.
     */
    public function build(Directory $src): Container
    {
        $client = Client::connect();
        $binary = self::goBase($client, $src)
            ->withEnvVariable('CGO_ENABLED', '0')
            ->withEnvVariable('GOOS', 'linux')
            ->withExec(['go', 'build', '-ldflags=-s -w', '-o', '/out/server', './cmd/server'])
            ->file('/out/server');
        return $client->container()
            ->from(self::image('static:nonroot'))
            ->withFile('/server', $binary)
            ->withEntrypoint(['/server']);
    }

    /**
     * Tests, builds and publishes REGISTRY:TAG; returns the reference with its digest.
     *
     * @param Directory $src The Go module.
     * @param string $registry The repository to publish to, e.g. 127.0.0.1:5001/app.
     * @param string $tag The image tag.
     * @param string $registryUser The registry user name.
     * @param Secret $registryToken The registry password or token.
     */
    public function publish(Directory $src, string $registry, string $tag, string $registryUser, Secret $registryToken): string
    {
        try {
            $this->test($src);
        } catch (ExecError $error) {
            throw new RuntimeException('tests failed: ' . $error->getMessage(), 0, $error);
        }
        $host = explode('/', $registry)[0];
        return $this->build($src)
            ->withRegistryAuth($host, $registryUser, $registryToken)
            ->publish("$registry:$tag");
    }
}
