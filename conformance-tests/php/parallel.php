<?php

// The PHP SDK has no concurrency: each leaf is one blocking request, so four
// `stdout()` calls would run one after another. Instead the four branches go
// into ONE leaf: a directory holding each branch's output file. Fetching a
// branch's file ID runs nothing (IDs describe a pipeline); the final
// `entries()` asks the engine for the whole graph, and the engine runs the
// independent branches in parallel on its own.

declare(strict_types=1);

require __DIR__ . '/common.php';

$client = \Gantry\Client::connect();
$base = $client->container()->from(BUSYBOX)->withEnvVariable('MARKER', MARKER);
$start = microtime(true);
$results = $client->directory();
foreach ([1, 2, 3, 4] as $n) {
    $branch = $base->withExec(['sh', '-c', "sleep 2; echo branch $n: done > /result"]);
    $results = $results->withFile("branch-$n", $branch->file('/result'));
}
$results->entries();
$elapsed = microtime(true) - $start;
foreach ([1, 2, 3, 4] as $n) {
    echo trim($results->file("branch-$n")->contents()), "\n";
}
fprintf(STDERR, "elapsed: %.2f s\n", $elapsed);
echo '4 x sleep 2 finished in under 8 s: ', $elapsed < 8 ? 'true' : 'false', "\n";
