<?php

declare(strict_types=1);

namespace Gantry;

/**
 * Base class of every exception the gantry SDK throws.
 *
 * Messages never include the query text: it may carry `setSecret` plaintext.
 */
class GantryError extends \RuntimeException
{
}
