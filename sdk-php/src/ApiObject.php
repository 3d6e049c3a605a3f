<?php

declare(strict_types=1);

namespace Gantry;

use Gantry\Runtime\Context;

/**
 * Base of every generated object class: wraps the lazy query that produces it.
 *
 * Methods that return an object only extend the query; leaf methods
 * (`stdout()`, `sync()`, `publish()`, ...) send it, one request each.
 */
abstract class ApiObject
{
    /**
     * @internal The query chain; used by the generated methods and the runtime.
     */
    public readonly Context $ctx;

    /**
     * @internal Objects come from the client (`Client::connect()`) and its methods.
     */
    final public function __construct(Context $ctx)
    {
        $this->ctx = $ctx;
    }
}
