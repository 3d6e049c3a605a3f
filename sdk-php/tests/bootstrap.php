<?php

declare(strict_types=1);

// `composer dump-autoload` (make php-test runs it) writes vendor/autoload.php,
// which maps Gantry\ and Gantry\Tests\ for the tests.
require __DIR__ . '/../vendor/autoload.php';
require __DIR__ . '/../examples/pipeline.php';
require __DIR__ . '/../examples/services.php';

// No test reaches a developer's engine or a `gantry run` session by accident:
// GANTRY_SOCKET names a socket nobody serves until TestEngine::start() points
// it at the tests' own engine.
Gantry\Tests\TestEngine::isolate();
