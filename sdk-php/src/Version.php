<?php

declare(strict_types=1);

namespace Gantry;

/**
 * The version of gantry this SDK belongs to: the engine's and every SDK's, generated from the
 * engine's Cargo.toml by `cargo xtask codegen`.
 */
final class Version
{
    public const VERSION = Runtime\Env::VERSION;
}
