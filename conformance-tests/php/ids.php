<?php

declare(strict_types=1);

require __DIR__ . '/common.php';

$client = \Gantry\Client::connect();
$ctr = $client->container()->from(BUSYBOX)->withNewFile('/marker.txt', MARKER);
$ctrId = $ctr->id();
echo 'container id: ', $ctrId !== '' ? 'non-empty string' : 'empty', "\n";
$loaded = $client->loadContainerFromID($ctrId);
echo 'loaded container: ', $loaded->withExec(['cat', '/marker.txt'])->stdout(), "\n";
$dirId = $client->directory()->withNewFile('m.txt', MARKER)->id();

$second = \Gantry\Client::connect();
$loadedDir = $second->loadDirectoryFromID($dirId);
echo 'loaded directory in a second connection: ', $loadedDir->file('m.txt')->contents(), "\n";
$out = $second->container()
    ->from(BUSYBOX)
    ->withDirectory('/d', $loadedDir)
    ->withExec(['cat', '/d/m.txt'])
    ->stdout();
echo 'loaded directory as an argument: ', $out, "\n";
