<?php

declare(strict_types=1);

require __DIR__ . '/common.php';

$client = \Gantry\Client::connect();
$token = $client->setSecret('conformance-token', env('CONFORMANCE_SECRET'));
echo $client->container()
    ->from(BUSYBOX)
    ->withSecretVariable('TOKEN', $token)
    ->withExec(['sh', '-c', 'echo "token=$TOKEN"; echo "length=${#TOKEN}"'])
    ->stdout();
