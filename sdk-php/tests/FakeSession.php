<?php

declare(strict_types=1);

namespace Gantry\Tests;

use Gantry\Runtime\Session;

/**
 * Records documents and answers from a queue of canned `data` values.
 */
final class FakeSession implements Session
{
    /** @var list<string> */
    public array $documents = [];

    /** @param list<array<string, mixed>> $answers */
    public function __construct(public array $answers = [])
    {
    }

    public function query(string $document): array
    {
        $this->documents[] = $document;
        $answer = array_shift($this->answers);
        if ($answer === null) {
            throw new \LogicException("unexpected query: {$document}");
        }
        return $answer;
    }
}
