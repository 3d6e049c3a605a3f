<?php

declare(strict_types=1);

namespace Gantry\Runtime;

/**
 * @internal One field selection in a Context's chain.
 */
final class Selection
{
    /** @var array<string, mixed> Arguments without the null ones (left to the engine's defaults). */
    public readonly array $args;

    /**
     * @param array<string, mixed> $args
     * @param string|null $on Type condition for an inline fragment
     *     (`node(id:) { ... on T { ... } }`).
     */
    public function __construct(
        public readonly string $name,
        array $args = [],
        public readonly ?string $on = null,
    ) {
        $this->args = array_filter($args, static fn (mixed $value): bool => $value !== null);
    }
}
