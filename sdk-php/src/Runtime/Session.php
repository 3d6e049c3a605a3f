<?php

declare(strict_types=1);

namespace Gantry\Runtime;

/**
 * @internal What a Context sends documents through (see HttpSession).
 */
interface Session
{
    /**
     * Sends one GraphQL document and returns its `data`, throwing on errors.
     *
     * @return array<string, mixed>
     */
    public function query(string $document): array;
}
