<?php

declare(strict_types=1);

require __DIR__ . '/common.php';

$client = \Gantry\Client::connect();
$out = $client->container()
    ->from(BUSYBOX)
    ->withMountedCache('/cache', $client->cacheVolume('conformance-cache'))
    ->withEnvVariable('MARKER', MARKER)
    ->withEnvVariable('RUN', RUN)
    ->withExec(['sh', '-c', 'echo "run $RUN" >> "/cache/$MARKER"; cat "/cache/$MARKER"'])
    ->stdout();
echo 'run ', RUN, ' sees: ', implode(', ', explode("\n", trim($out))), "\n";
