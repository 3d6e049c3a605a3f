<?php

// A registry that runs as a service: an image published to it and pulled back from it,
// both named by the service's hostname (`registryService`).

declare(strict_types=1);

require __DIR__ . '/common.php';

// Debian's build of the distribution registry (`make setup` installs it) and the C
// library it loads, in the busybox image.
const FILES = [
    '/usr/bin/registry' => '/usr/bin/docker-registry',
    '/lib/x86_64-linux-gnu/libc.so.6' => '/lib/x86_64-linux-gnu/libc.so.6',
    '/lib64/ld-linux-x86-64.so.2' => '/lib64/ld-linux-x86-64.so.2',
];
const CONFIG = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n"
    . "http:\n  addr: :5000\n";

$client = \Gantry\Client::connect();
$registry = $client->container()->from(BUSYBOX);
foreach (FILES as $target => $source) {
    $registry = $registry->withFile($target, $client->host()->file(realpath($source)));
}
// Started, so that its storage (the container's own) outlives the push.
$service = $registry->withNewFile('/etc/registry.yml', CONFIG)
    ->withExposedPort(5000)
    ->asService(args: ['/usr/bin/registry', 'serve', '/etc/registry.yml'])
    ->start();
$address = $service->hostname() . ':5000/conformance/app:' . MARKER;
$published = $client->container()->from(BUSYBOX)
    ->withNewFile('/marker', MARKER)
    ->publish($address, registryService: $service);
echo 'published as HOSTNAME:5000/conformance/app:MARKER@sha256:…: ',
    str_starts_with($published, "{$address}@sha256:") ? 'true' : 'false', "\n";
$pulled = $client->container()->from($address, registryService: $service)->file('/marker')->contents();
echo 'pulled back what was published: ', $pulled === MARKER ? 'true' : 'false', "\n";
$service->stop();
