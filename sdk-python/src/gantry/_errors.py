"""The exceptions the SDK raises. All derive from `GantryError`.

- `ConnectError`: no engine could be reached or started (also a builtin
  `ConnectionError`). The message says what to do: install or point
  `GANTRY_BIN` at the binary, read the engine log, fix the session variables.
- `TransportError`: the engine answered, but not with a GraphQL response
  (an HTTP error status such as 401, a malformed body, a dropped connection).
- `QueryError`: the engine ran the query and reported GraphQL errors.
- `ExecError`: a `QueryError` for a command that failed in a container, with
  its `exit_code`, `stdout`, `stderr` and `cmd`.

Messages never include the query text: it may carry `set_secret` plaintext.
"""

from __future__ import annotations

from typing import Any


class GantryError(Exception):
    """Base class of every error the gantry SDK raises."""


class ConnectError(GantryError, ConnectionError):
    """No engine could be reached or started.

    Attributes:
        log_path: The engine log to read, when the SDK started the engine itself.
    """

    def __init__(self, message: str, *, log_path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.log_path = log_path

    def __str__(self) -> str:
        return self.message


class TransportError(GantryError):
    """The engine's answer was not a GraphQL response.

    Attributes:
        status: The HTTP status, if a response arrived.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return self.message


class QueryError(GantryError):
    """The engine reported GraphQL errors for a query.

    Attributes:
        message: The first error's message.
        code: The first error's `extensions.code` (e.g. `"INVALID_ARGUMENT"`), if any.
        path: The first error's path in the query, if any.
        errors: Every error as the engine sent it (`message`, `path`, `extensions`).
    """

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        first = errors[0] if errors else {}
        self.message: str = str(first.get("message", "unknown error"))
        extensions = first.get("extensions") or {}
        code = extensions.get("code") if isinstance(extensions, dict) else None
        self.code: str | None = code if isinstance(code, str) else None
        path = first.get("path")
        self.path: list[str | int] | None = path if isinstance(path, list) else None
        self.errors = errors
        super().__init__(self.message)

    def __str__(self) -> str:
        more = len(self.errors) - 1
        return self.message + (f" (and {more} more errors)" if more > 0 else "")


class ExecError(QueryError):
    """A command run by `with_exec` exited with an unexpected code.

    Attributes:
        exit_code: The command's exit code.
        stdout: What the command wrote to standard output.
        stderr: What the command wrote to standard error.
        cmd: The command and its arguments.
    """

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        extensions: dict[str, Any] = errors[0].get("extensions") or {}
        self.exit_code: int = int(extensions.get("exitCode", -1))
        self.stdout: str = str(extensions.get("stdout", ""))
        self.stderr: str = str(extensions.get("stderr", ""))
        cmd = extensions.get("cmd", [])
        self.cmd: list[str] = (
            [str(part) for part in cmd] if isinstance(cmd, list) else []
        )

    def __str__(self) -> str:
        text = self.message
        if f"exit code: {self.exit_code}" not in text:
            text += f"\nexit code: {self.exit_code}"
        if self.stdout:
            text += f"\nstdout:\n{self.stdout.rstrip()}"
        if self.stderr:
            text += f"\nstderr:\n{self.stderr.rstrip()}"
        return text


def raise_for_errors(response: dict[str, Any]) -> None:
    """Raises the error a GraphQL response carries, if any."""
    errors = response.get("errors")
    if not errors:
        return
    if not isinstance(errors, list) or not all(isinstance(e, dict) for e in errors):
        raise TransportError("the engine sent a malformed GraphQL error list")
    extensions = errors[0].get("extensions")
    if isinstance(extensions, dict) and extensions.get("_type") == "EXEC_ERROR":
        raise ExecError(errors)
    raise QueryError(errors)
