<?php

// The seed pipeline (shared/reference/seed-pipeline.md): test, build, publish.

declare(strict_types=1);

require __DIR__ . '/common.php';

use Gantry\Client;
use Gantry\Container;
use Gantry\Directory;
use Gantry\Secret;

function goBase(Client $client, Directory $src): Container
{
    return $client->container()
        ->from(GOLANG)
        ->withDirectory('/src', $src)
        ->withWorkdir('/src')
        ->withMountedCache('/root/go/pkg/mod', $client->cacheVolume('go-mod'))
        ->withMountedCache('/root/.cache/go-build', $client->cacheVolume('go-build'))
        ->withEnvVariable('GOMODCACHE', '/root/go/pkg/mod')
        ->withEnvVariable('GOCACHE', '/root/.cache/go-build')
        // A new value each run, so test and build really run (on warm Go caches).
        ->withEnvVariable('CONFORMANCE_MARKER', MARKER);
}

function test(Client $client, Directory $src): string
{
    return goBase($client, $src)->withExec(['go', 'test', '-count=1', './...'])->stdout();
}

function build(Client $client, Directory $src): Container
{
    $binary = goBase($client, $src)
        ->withEnvVariable('CGO_ENABLED', '0')
        ->withEnvVariable('GOOS', 'linux')
        ->withExec(['go', 'build', '-ldflags=-s -w', '-o', '/out/server', './cmd/server'])
        ->file('/out/server');
    return $client->container()
        ->from(STATIC_IMAGE)
        ->withFile('/server', $binary)
        ->withEntrypoint(['/server']);
}

function publish(Client $client, Directory $src, string $repo, string $tag, Secret $token): string
{
    try {
        test($client, $src);
    } catch (\Gantry\ExecError $error) {
        throw new RuntimeException('tests failed: ' . $error->getStdout() . $error->getStderr(), 0, $error);
    }
    return build($client, $src)
        ->withRegistryAuth(AUTH_REGISTRY, AUTH_USER, $token)
        ->publish("$repo:$tag");
}

$client = Client::connect();
$src = $client->host()->directory('../../examples/seed-app');
foreach (explode("\n", trim(test($client, $src))) as $line) {
    echo 'test: ', implode(' ', array_slice(preg_split('/\s+/', $line), 0, 2)), "\n";
}
$token = $client->setSecret('registry-token', AUTH_PASSWORD);
$ref = publish($client, $src, AUTH_REGISTRY . '/gantry-conformance/seed-app', MARKER, $token);
echo 'published: ', $ref, "\n";
$greeting = $client->container()
    ->withRegistryAuth(AUTH_REGISTRY, AUTH_USER, $token)
    ->from($ref)
    ->withExec([], useEntrypoint: true)
    ->stdout();
echo 'run: ', trim($greeting), "\n";
