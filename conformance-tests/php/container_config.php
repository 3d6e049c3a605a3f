<?php

declare(strict_types=1);

require __DIR__ . '/common.php';

$client = \Gantry\Client::connect();
$ctr = $client->container()
    ->from(BUSYBOX)
    ->withEnvVariable('MARKER', MARKER)
    ->withEnvVariable('GREETING', 'hi')
    ->withWorkdir('/work')
    ->withUser('nobody')
    ->withEntrypoint(['sh', '-c']);
echo 'envVariable GREETING: ', $ctr->envVariable('GREETING'), "\n";
echo 'workdir: ', $ctr->workdir(), "\n";
echo 'user: ', $ctr->user(), "\n";
echo 'entrypoint: ', implode(' ', $ctr->entrypoint()), "\n";
$out = $ctr->withExec(['echo "$GREETING from $(pwd) as uid $(id -u)"'], useEntrypoint: true)->stdout();
echo 'exec: ', trim($out), "\n";
