<?php

declare(strict_types=1);

namespace Gantry;

/**
 * The engine ran the query and reported GraphQL errors (a bad argument, an
 * unknown ID, a failed pull, ...).
 */
class QueryError extends GantryError
{
    private readonly ?string $errorCode;

    /** @var list<string|int>|null */
    private readonly ?array $path;

    /**
     * @param list<array<string, mixed>> $errors Every error as the engine sent it.
     */
    public function __construct(private readonly array $errors)
    {
        $first = $errors[0] ?? [];
        $message = isset($first['message']) && is_scalar($first['message'])
            ? (string) $first['message']
            : 'unknown error';
        $extensions = self::extensionsOf($errors);
        $code = $extensions['code'] ?? null;
        $this->errorCode = is_string($code) ? $code : null;
        $path = $first['path'] ?? null;
        $this->path = is_array($path) ? array_values(array_filter(
            $path,
            static fn (mixed $part): bool => is_string($part) || is_int($part),
        )) : null;
        $more = count($errors) - 1;
        parent::__construct($message . ($more > 0 ? " (and {$more} more errors)" : ''));
    }

    /**
     * The first error's message.
     */
    public function getErrorMessage(): string
    {
        $first = $this->errors[0] ?? [];
        return isset($first['message']) && is_scalar($first['message'])
            ? (string) $first['message']
            : 'unknown error';
    }

    /**
     * The first error's `extensions.code` (for example `INVALID_ARGUMENT`).
     *
     * Named so because `Exception::getCode()` is PHP's integer code.
     */
    public function getErrorCode(): ?string
    {
        return $this->errorCode;
    }

    /**
     * The first error's path in the query, if any.
     *
     * @return list<string|int>|null
     */
    public function getPath(): ?array
    {
        return $this->path;
    }

    /**
     * Every error as the engine sent it (`message`, `path`, `extensions`).
     *
     * @return list<array<string, mixed>>
     */
    public function getErrors(): array
    {
        return $this->errors;
    }

    /**
     * @param list<array<string, mixed>> $errors
     * @return array<string, mixed>
     */
    protected static function extensionsOf(array $errors): array
    {
        $extensions = $errors[0]['extensions'] ?? null;
        return is_array($extensions) ? $extensions : [];
    }
}
