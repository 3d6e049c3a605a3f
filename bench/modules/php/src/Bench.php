<?php

declare(strict_types=1);

use Gantry\Client;

/**
 * One step.
 */
final class Bench
{
    /**
     * Runs `echo cached step`.
     */
    public function step(): string
    {
        $image = (string) getenv('BENCH_IMAGE');
        return Client::connect()->container()->from($image)->withExec(['echo', 'cached step'])->stdout();
    }
}
