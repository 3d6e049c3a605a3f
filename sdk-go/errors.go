package gantry

// The errors the SDK returns, always wrapped with %w so errors.As finds them:
//
//   - *ConnectError: no engine could be reached or started. The message says
//     what to do: install or point GANTRY_BIN at the binary, read the engine
//     log, fix the session variables.
//   - *TransportError: the engine answered, but not with a GraphQL response
//     (an HTTP error status such as 401, a malformed body, a dropped
//     connection).
//   - *QueryError: the engine ran the query and reported GraphQL errors.
//   - *ExecError: a command that failed in a container, with its exit code,
//     stdout, stderr and command. errors.As also finds its *QueryError.
//
// Messages never include the query text: it may carry SetSecret plaintext.

import (
	"fmt"
	"strings"
)

// ConnectError means no engine could be reached or started.
type ConnectError struct {
	Message string
	// LogPath is the engine log to read, when the SDK started the engine.
	LogPath string
	// Err is the underlying cause, if any.
	Err error
}

func (e *ConnectError) Error() string { return e.Message }

// Unwrap returns the underlying cause.
func (e *ConnectError) Unwrap() error { return e.Err }

// TransportError means the engine's answer was not a GraphQL response.
type TransportError struct {
	Message string
	// Status is the HTTP status, if a response arrived (401: wrong session token).
	Status int
	// Err is the underlying cause, if any.
	Err error
}

func (e *TransportError) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the underlying cause.
func (e *TransportError) Unwrap() error { return e.Err }

// GraphQLError is one entry of a GraphQL response's `errors` list.
type GraphQLError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

// QueryError means the engine reported GraphQL errors for a query.
type QueryError struct {
	// Message is the first error's message.
	Message string
	// Code is the first error's extensions.code (e.g. "INVALID_ARGUMENT"), if any.
	Code string
	// Path is the first error's path in the query, if any.
	Path []any
	// Errors holds every error as the engine sent it.
	Errors []GraphQLError
}

func newQueryError(errs []GraphQLError) QueryError {
	e := QueryError{Message: "unknown error", Errors: errs}
	if len(errs) > 0 {
		first := errs[0]
		if first.Message != "" {
			e.Message = first.Message
		}
		if code, ok := first.Extensions["code"].(string); ok {
			e.Code = code
		}
		e.Path = first.Path
	}
	return e
}

func (e *QueryError) Error() string {
	if more := len(e.Errors) - 1; more > 0 {
		return fmt.Sprintf("%s (and %d more errors)", e.Message, more)
	}
	return e.Message
}

// ExecError means a command run by WithExec exited with an unexpected code.
// errors.As(err, &queryErr) with a *QueryError also matches it.
type ExecError struct {
	QueryError
	// ExitCode is the command's exit code.
	ExitCode int
	// Stdout is what the command wrote to standard output.
	Stdout string
	// Stderr is what the command wrote to standard error.
	Stderr string
	// Cmd is the command and its arguments.
	Cmd []string
}

func newExecError(errs []GraphQLError) *ExecError {
	e := &ExecError{QueryError: newQueryError(errs), ExitCode: -1}
	ext := errs[0].Extensions
	if code, ok := ext["exitCode"].(float64); ok {
		e.ExitCode = int(code)
	}
	e.Stdout, _ = ext["stdout"].(string)
	e.Stderr, _ = ext["stderr"].(string)
	if cmd, ok := ext["cmd"].([]any); ok {
		for _, part := range cmd {
			e.Cmd = append(e.Cmd, fmt.Sprint(part))
		}
	}
	return e
}

func (e *ExecError) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	if !strings.Contains(e.Message, fmt.Sprintf("exit code: %d", e.ExitCode)) {
		fmt.Fprintf(&b, "\nexit code: %d", e.ExitCode)
	}
	if e.Stdout != "" {
		b.WriteString("\nstdout:\n" + strings.TrimRight(e.Stdout, " \t\r\n"))
	}
	if e.Stderr != "" {
		b.WriteString("\nstderr:\n" + strings.TrimRight(e.Stderr, " \t\r\n"))
	}
	return b.String()
}

// Unwrap exposes the embedded *QueryError to errors.As.
func (e *ExecError) Unwrap() error { return &e.QueryError }

// errorFor returns the error a GraphQL error list carries.
func errorFor(errs []GraphQLError) error {
	if len(errs) > 0 {
		if kind, _ := errs[0].Extensions["_type"].(string); kind == "EXEC_ERROR" {
			return newExecError(errs)
		}
	}
	e := newQueryError(errs)
	return &e
}
