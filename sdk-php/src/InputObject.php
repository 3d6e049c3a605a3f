<?php

declare(strict_types=1);

namespace Gantry;

/**
 * Implemented by every generated input object (`BuildArg`, `PortForward`): a
 * value written inline as a GraphQL object literal, `{name:"A",value:"B"}`.
 */
interface InputObject
{
    /**
     * The fields under their GraphQL names, in schema order; `null` values are
     * left out (the engine's default applies).
     *
     * @return array<string, mixed>
     */
    public function inputFields(): array;
}
