<?php

declare(strict_types=1);

namespace Gantry\Runtime;

use Gantry\ApiObject;
use Gantry\InputObject;
use Gantry\TransportError;

/**
 * @internal Lazy query building: the runtime under the generated classes.
 *
 * An object (`Container`, `Directory`, ...) holds a Context: the chain of field
 * selections from the root that produces it. Methods returning an object only
 * extend the chain; nothing is sent. A leaf (`stdout()`, `sync()`, ...)
 * renders the whole chain as one GraphQL document, sends it, and walks the
 * response back down the chain.
 *
 * Object arguments are passed by ID: before sending, each object argument's
 * `id` is fetched (one request per object, remembered on it).
 */
final class Context
{
    /**
     * @param list<Selection> $chain
     */
    public function __construct(
        private readonly Session $session,
        private readonly array $chain = [],
        private ?string $id = null,
    ) {
    }

    /**
     * A new context with one more field selected; sends nothing.
     *
     * @param array<string, mixed> $args
     */
    public function select(string $name, array $args = []): self
    {
        return new self($this->session, [...$this->chain, new Selection($name, $args)]);
    }

    /**
     * A context addressing an object of `$type` by ID, from the root.
     */
    public function load(string $type, mixed $id): self
    {
        if (!is_string($id)) {
            throw new TransportError('the engine returned a non-string ID');
        }
        return new self($this->session, [new Selection('node', ['id' => $id], $type)], $id);
    }

    /**
     * The ID of the object this chain produces (fetched once, remembered).
     */
    public function id(): string
    {
        if ($this->id === null) {
            $value = $this->select('id')->execute();
            if (!is_string($value)) {
                throw new TransportError('the engine returned a non-string ID');
            }
            $this->id = $value;
        }
        return $this->id;
    }

    /**
     * The ID if it is already known, without a request.
     */
    public function knownId(): ?string
    {
        return $this->id;
    }

    /**
     * The GraphQL document for this chain. Object arguments must be resolved.
     */
    public function document(): string
    {
        $out = 'query';
        $depth = 0;
        foreach ($this->chain as $selection) {
            $out .= '{' . $selection->name;
            $depth++;
            if ($selection->args !== []) {
                $rendered = [];
                foreach ($selection->args as $name => $value) {
                    $rendered[] = $name . ':' . self::literal($value);
                }
                $out .= '(' . implode(',', $rendered) . ')';
            }
            if ($selection->on !== null) {
                $out .= '{... on ' . $selection->on;
                $depth++;
            }
        }
        return $out . str_repeat('}', $depth);
    }

    /**
     * Sends the chain as one query and returns the value at its end.
     */
    public function execute(): mixed
    {
        $this->resolveObjectArguments();
        $data = $this->session->query($this->document());
        return self::walk($data, $this->chain);
    }

    /**
     * Like execute(), for fields returning a list (null reads as an empty list).
     *
     * @return list<mixed>
     */
    public function executeList(): array
    {
        $value = $this->execute();
        if ($value === null) {
            return [];
        }
        if (!is_array($value) || !array_is_list($value)) {
            throw new TransportError('the engine returned a non-list value for a list field');
        }
        return $value;
    }

    private function resolveObjectArguments(): void
    {
        foreach ($this->chain as $selection) {
            foreach ($selection->args as $value) {
                self::resolveIds($value);
            }
        }
    }

    private static function resolveIds(mixed $value): void
    {
        if ($value instanceof ApiObject) {
            $value->ctx->id();
        } elseif ($value instanceof InputObject) {
            self::resolveIds($value->inputFields());
        } elseif (is_array($value)) {
            foreach ($value as $item) {
                self::resolveIds($item);
            }
        }
    }

    /**
     * A GraphQL literal for an argument value (arguments are inlined).
     */
    public static function literal(mixed $value): string
    {
        if (is_bool($value)) {
            return $value ? 'true' : 'false';
        }
        if (is_string($value)) {
            return self::json($value);
        }
        if (is_int($value)) {
            return (string) $value;
        }
        if (is_float($value)) {
            if (!is_finite($value)) {
                throw new \InvalidArgumentException("{$value} cannot be sent to the engine");
            }
            return self::json($value);
        }
        if ($value === null) {
            return 'null';
        }
        if ($value instanceof \BackedEnum) {
            return (string) $value->value;
        }
        if ($value instanceof ApiObject) {
            $id = $value->ctx->knownId();
            if ($id === null) {
                throw new \LogicException('an object argument was not resolved to its ID');
            }
            return self::json($id);
        }
        if ($value instanceof InputObject) {
            return self::objectLiteral($value->inputFields());
        }
        if (is_array($value)) {
            if (array_is_list($value)) {
                return '[' . implode(',', array_map(self::literal(...), $value)) . ']';
            }
            return self::objectLiteral($value);
        }
        throw new \InvalidArgumentException(
            'cannot send a ' . get_debug_type($value) . ' as a GraphQL argument',
        );
    }

    /**
     * `{name:value,…}` for the non-null entries of `$fields`.
     *
     * @param array<array-key, mixed> $fields
     */
    private static function objectLiteral(array $fields): string
    {
        $written = [];
        foreach ($fields as $name => $item) {
            if ($item !== null) {
                $written[] = $name . ':' . self::literal($item);
            }
        }
        return '{' . implode(',', $written) . '}';
    }

    private static function json(string|float $value): string
    {
        return json_encode(
            $value,
            JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION
                | JSON_THROW_ON_ERROR,
        );
    }

    /**
     * Follows the chain's field names down the response data.
     *
     * @param list<Selection> $chain
     */
    private static function walk(mixed $data, array $chain): mixed
    {
        foreach ($chain as $index => $selection) {
            if ($data === null) {
                return null;
            }
            if (is_array($data) && array_is_list($data)) {
                $rest = array_slice($chain, $index);
                return array_map(static fn (mixed $item): mixed => self::walk($item, $rest), $data);
            }
            if (!is_array($data) || !array_key_exists($selection->name, $data)) {
                throw new TransportError("the engine's response lacks the field {$selection->name}");
            }
            $data = $data[$selection->name];
        }
        return $data;
    }
}
