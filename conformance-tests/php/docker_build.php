<?php

declare(strict_types=1);

require __DIR__ . '/common.php';

use Gantry\BuildArg;

const CONTEXT = '../fixtures/dockerbuild';

$client = \Gantry\Client::connect();
$context = $client->host()->directory(CONTEXT);
$final = $context->dockerBuild(
    buildArgs: [
        new BuildArg(name: 'BASE', value: BUSYBOX),
        new BuildArg(name: 'GREETING', value: 'hi'),
        new BuildArg(name: 'MARKER', value: MARKER),
    ],
    target: 'final',
);
echo 'final greeting: ', trim($final->file('greeting.txt')->contents()), "\n";
echo 'final message: ', trim($final->file('/app/message.txt')->contents()), "\n";
echo 'final workdir: ', $final->workdir(), "\n";
echo 'final STAGE: ', $final->envVariable('STAGE'), "\n";
echo 'final run: ', trim($final->withExec(['cat', 'marker.txt'])->stdout()), "\n";
echo 'final default args: ', implode(' ', $final->defaultArgs()), "\n";

$base = [new BuildArg(name: 'BASE', value: BUSYBOX)];
$stage = $context->dockerBuild(buildArgs: $base, target: 'build');
echo 'build stage greeting: ', trim($stage->file('/out/greeting.txt')->contents()), "\n";
echo 'build stage has /app: ', $stage->exists('/app') ? 'true' : 'false', "\n";

$last = $context->dockerBuild(buildArgs: $base);
echo 'no target: ', trim($last->file('/last.txt')->contents()), "\n";
