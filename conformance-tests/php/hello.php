<?php

declare(strict_types=1);

require __DIR__ . '/common.php';

$client = \Gantry\Client::connect();
$ctr = $client->container()->from(BUSYBOX)->withEnvVariable('MARKER', MARKER)->withExec(['echo', 'hello from gantry']);
echo 'stdout: ', trim($ctr->stdout()), "\n";
echo 'exit code: ', $ctr->exitCode(), "\n";
