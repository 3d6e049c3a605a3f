<?php

// The PHP SDK has no concurrency: each leaf is one blocking request, so four
// `stdout()` calls would run one after another. Instead the four branches go
// into ONE leaf: a directory holding each branch's output file. Fetching a
// branch's file ID runs nothing (IDs describe a pipeline); the final
// `entries()` asks the engine for the whole graph, and the engine runs the
// independent branches in parallel on its own.
//
// Each branch marks itself in a shared cache volume, then waits (at most 60 s)
// until all four have: only branches that run at the same time can all see
// four. This proves parallelism from inside the containers, whatever the
// machine's load.

declare(strict_types=1);

require __DIR__ . '/common.php';

const SCRIPT = 'touch /sync/$N; i=0; while [ $(ls /sync | wc -l) -lt 4 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; echo "branch $N: $(ls /sync | wc -l) of 4 running at once"';

$client = \Gantry\Client::connect();
$base = $client->container()->from(BUSYBOX)->withEnvVariable('MARKER', MARKER)
    ->withMountedCache('/sync', $client->cacheVolume('conformance-parallel-' . MARKER));
$results = $client->directory();
foreach ([1, 2, 3, 4] as $n) {
    $branch = $base->withEnvVariable('N', (string) $n)
        ->withExec(['sh', '-c', SCRIPT . ' > /result']);
    $results = $results->withFile("branch-$n", $branch->file('/result'));
}
$results->entries();
foreach ([1, 2, 3, 4] as $n) {
    echo trim($results->file("branch-$n")->contents()), "\n";
}
