<?php

// The same work as the module's step, as a script for `gantry run`.

declare(strict_types=1);

require __DIR__ . '/vendor/autoload.php';

$image = (string) getenv('BENCH_IMAGE');
echo Gantry\Client::connect()->container()->from($image)->withExec(['echo', 'cached step'])->stdout();
