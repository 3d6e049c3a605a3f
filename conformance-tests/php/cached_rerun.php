<?php

declare(strict_types=1);

require __DIR__ . '/common.php';

$client = \Gantry\Client::connect();
$out = $client->container()->from(BUSYBOX)->withExec(['echo', 'step ' . MARKER])->stdout();
echo 'run ', RUN, ': ', trim($out), "\n";
