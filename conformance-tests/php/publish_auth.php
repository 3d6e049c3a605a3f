<?php

declare(strict_types=1);

require __DIR__ . '/common.php';

$client = \Gantry\Client::connect();
$password = $client->setSecret('registry-password', AUTH_PASSWORD);
$image = $client->container()->from(BUSYBOX)->withNewFile('/marker.txt', MARKER);
$address = AUTH_REGISTRY . '/gantry-conformance/publish:' . MARKER;
try {
    $image->publish($address);
    echo "without credentials: published?!\n";
} catch (\Gantry\QueryError $error) {
    echo 'without credentials: ', $error->getErrorCode(), "\n";
}
$ref = $image->withRegistryAuth(AUTH_REGISTRY, AUTH_USER, $password)->publish($address);
echo 'published: ', $ref, "\n";
$pulled = $client->container()
    ->withRegistryAuth(AUTH_REGISTRY, AUTH_USER, $password)
    ->from($ref)
    ->withExec(['cat', '/marker.txt'])
    ->stdout();
echo 'pulled back: ', $pulled, "\n";
