<?php

declare(strict_types=1);

namespace Gantry\Runtime;

use Gantry\ExecError;
use Gantry\QueryError;
use Gantry\TransportError;

/**
 * @internal Sends GraphQL documents to one engine endpoint with the curl
 * extension: over a Unix socket (CURLOPT_UNIX_SOCKET_PATH) or loopback TCP.
 *
 * One curl handle is kept and reused, so consecutive requests share a
 * connection when the engine keeps it alive.
 *
 * Every request names the SDK (`X-Gantry-Client: php/VERSION`) and every
 * response the engine's version (`X-Gantry-Version`). When they do not match
 * (from 1.0 on: major and minor; before 1.0: the whole version), the first
 * response says so, once per process, on stderr.
 */
final class HttpSession implements Session
{
    private ?\CurlHandle $curl = null;

    /** Whether this process has compared the engine's version with its own yet. */
    private static bool $versionChecked = false;

    /**
     * @param string|null $socket Unix socket path, or null for TCP.
     * @param list<string> $headers Extra request headers (`Name: value`).
     * @param string|null $userpwd Basic-auth credentials (`user:password`).
     */
    public function __construct(
        private readonly ?string $socket,
        private readonly ?int $port = null,
        private readonly array $headers = [],
        private readonly ?string $userpwd = null,
    ) {
    }

    public function describe(): string
    {
        return $this->socket !== null ? "unix://{$this->socket}" : "http://127.0.0.1:{$this->port}";
    }

    public function query(string $document): array
    {
        $body = json_encode(
            ['query' => $document],
            JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR,
        );
        [$status, $payload, $engineVersion] = $this->post('/query', $body);
        self::checkVersion($engineVersion);
        try {
            $response = json_decode($payload, true, 512, JSON_THROW_ON_ERROR);
        } catch (\JsonException) {
            $response = null;
        }
        if ($status !== 200) {
            $message = self::firstMessage($response) ?? substr($payload, 0, 200);
            throw new TransportError(
                "the gantry engine at {$this->describe()} answered HTTP {$status}: {$message}",
                $status,
            );
        }
        if (!is_array($response)) {
            throw new TransportError("the gantry engine's response is not a JSON object");
        }
        self::throwForErrors($response);
        $data = $response['data'] ?? null;
        if (!is_array($data)) {
            throw new TransportError("the gantry engine's response has no data");
        }
        /** @var array<string, mixed> $data */
        return $data;
    }

    /**
     * Throws the error a GraphQL response carries, if any.
     *
     * @param array<mixed> $response
     */
    public static function throwForErrors(array $response): void
    {
        $errors = $response['errors'] ?? null;
        if ($errors === null || $errors === []) {
            return;
        }
        if (!is_array($errors) || !array_is_list($errors)) {
            throw new TransportError('the engine sent a malformed GraphQL error list');
        }
        foreach ($errors as $error) {
            if (!is_array($error)) {
                throw new TransportError('the engine sent a malformed GraphQL error list');
            }
        }
        /** @var list<array<string, mixed>> $errors */
        $extensions = $errors[0]['extensions'] ?? null;
        if (is_array($extensions) && ($extensions['_type'] ?? null) === 'EXEC_ERROR') {
            throw new ExecError($errors);
        }
        throw new QueryError($errors);
    }

    /** Warns once per process when the engine's version does not match the SDK's. */
    private static function checkVersion(?string $engineVersion): void
    {
        if (self::$versionChecked || $engineVersion === null) {
            return;
        }
        self::$versionChecked = true;
        $warning = Env::versionWarning(Env::sdkVersion(), $engineVersion);
        if ($warning !== null) {
            fwrite(STDERR, $warning . "\n");
        }
    }

    /**
     * @return array{int, string, ?string} The status, the response body and the
     *     engine's version header (if any).
     */
    private function post(string $path, string $body): array
    {
        $engineVersion = null;
        $curl = $this->curl ??= curl_init();
        if ($curl === false) {
            throw new TransportError('could not initialise curl');
        }
        curl_reset($curl);
        $options = [
            CURLOPT_URL => ($this->socket !== null ? 'http://gantry' : "http://127.0.0.1:{$this->port}") . $path,
            CURLOPT_POST => true,
            CURLOPT_POSTFIELDS => $body,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_HTTPHEADER => [
                'Content-Type: application/json',
                'Accept: application/json',
                // curl would otherwise wait for 100-continue on large bodies.
                'Expect:',
                Env::CLIENT_HEADER . ': php/' . Env::sdkVersion(),
                ...$this->headers,
            ],
            CURLOPT_HEADERFUNCTION => static function (\CurlHandle $_, string $line) use (&$engineVersion): int {
                [$name, $value] = array_pad(explode(':', $line, 2), 2, null);
                if ($value !== null && strcasecmp(trim($name), Env::VERSION_HEADER) === 0) {
                    $engineVersion = trim($value);
                }
                return strlen($line);
            },
            CURLOPT_CONNECTTIMEOUT => 30,
            // No overall timeout: a leaf may run a long build.
            CURLOPT_PROXY => '',
            CURLOPT_NOPROXY => '*',
        ];
        if ($this->socket !== null) {
            $options[CURLOPT_UNIX_SOCKET_PATH] = $this->socket;
        }
        if ($this->userpwd !== null) {
            $options[CURLOPT_HTTPAUTH] = CURLAUTH_BASIC;
            $options[CURLOPT_USERPWD] = $this->userpwd;
        }
        curl_setopt_array($curl, $options);
        $payload = curl_exec($curl);
        if (!is_string($payload)) {
            $error = curl_error($curl);
            throw new TransportError("cannot reach the gantry engine at {$this->describe()}: {$error}");
        }
        $status = curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
        return [is_int($status) ? $status : 0, $payload, $engineVersion];
    }

    private static function firstMessage(mixed $response): ?string
    {
        if (!is_array($response)) {
            return null;
        }
        $errors = $response['errors'] ?? null;
        if (!is_array($errors) || !isset($errors[0]) || !is_array($errors[0])) {
            return null;
        }
        $message = $errors[0]['message'] ?? null;
        return is_scalar($message) ? (string) $message : null;
    }
}
