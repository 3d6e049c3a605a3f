<?php

declare(strict_types=1);

namespace Gantry;

/**
 * A command run by `withExec` exited with an unexpected code.
 *
 * The message holds the engine's message, the exit code, and the command's
 * stdout and stderr (secret values are already scrubbed by the engine).
 */
final class ExecError extends QueryError
{
    private readonly int $exitCode;
    private readonly string $stdout;
    private readonly string $stderr;

    /** @var list<string> */
    private readonly array $cmd;

    /**
     * @param list<array<string, mixed>> $errors
     */
    public function __construct(array $errors)
    {
        $extensions = self::extensionsOf($errors);
        $exitCode = $extensions['exitCode'] ?? -1;
        $this->exitCode = is_numeric($exitCode) ? (int) $exitCode : -1;
        $this->stdout = self::text($extensions['stdout'] ?? '');
        $this->stderr = self::text($extensions['stderr'] ?? '');
        $cmd = $extensions['cmd'] ?? [];
        $this->cmd = is_array($cmd) ? array_values(array_map(self::text(...), $cmd)) : [];
        parent::__construct($errors);
        $message = $this->getErrorMessage();
        if (!str_contains($message, "exit code: {$this->exitCode}")) {
            $message .= "\nexit code: {$this->exitCode}";
        }
        if ($this->stdout !== '') {
            $message .= "\nstdout:\n" . rtrim($this->stdout);
        }
        if ($this->stderr !== '') {
            $message .= "\nstderr:\n" . rtrim($this->stderr);
        }
        $this->message = $message;
    }

    /**
     * The command's exit code.
     */
    public function getExitCode(): int
    {
        return $this->exitCode;
    }

    /**
     * What the command wrote to standard output.
     */
    public function getStdout(): string
    {
        return $this->stdout;
    }

    /**
     * What the command wrote to standard error.
     */
    public function getStderr(): string
    {
        return $this->stderr;
    }

    /**
     * The command and its arguments.
     *
     * @return list<string>
     */
    public function getCmd(): array
    {
        return $this->cmd;
    }

    private static function text(mixed $value): string
    {
        return is_scalar($value) ? (string) $value : '';
    }
}
