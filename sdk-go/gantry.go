// Package gantry is the Go SDK for the gantry CI/CD pipeline engine.
//
//	client, err := gantry.Connect(ctx)
//	if err != nil {
//		return err
//	}
//	defer client.Close()
//	out, err := client.Container().
//		From("127.0.0.1:5000/gantry-fixtures/busybox:latest").
//		WithExec([]string{"echo", "hello"}).
//		Stdout(ctx)
//
// Chained calls only build a query and send nothing; a method that takes a
// [context.Context] (Stdout, Sync, ID, Publish, ...) sends exactly one request.
// Objects passed as arguments go by ID. The types [Client], [Container],
// [Directory], ... are generated from the engine's schema into gantry.gen.go;
// the connection rules are on [Connect], the errors are [ConnectError],
// [TransportError], [QueryError] and [ExecError].
package gantry

//go:generate cargo xtask codegen

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// Client is the root of the API: every pipeline starts from its methods
// (Container, Host, CacheVolume, SetSecret, ...). Create one with [Connect]
// and Close it when done. A Client is safe for concurrent use.
type Client struct {
	object
	sess *session
}

// ConnectOption changes how [Connect] finds the engine.
type ConnectOption func(*connectConfig)

type connectConfig struct {
	socket       string
	workdir      string
	startEngine  bool
	startTimeout time.Duration
}

// WithSocket uses the engine's Unix socket at path instead of GANTRY_SOCKET or
// the default path. Given explicitly, it also takes precedence over a
// `gantry run` session.
func WithSocket(path string) ConnectOption {
	return func(c *connectConfig) { c.socket = path }
}

// WithWorkdir sets the directory that relative host paths resolve against
// (default: the current working directory). Unix socket only: a `gantry run`
// session resolves them against its own directory.
func WithWorkdir(dir string) ConnectOption {
	return func(c *connectConfig) { c.workdir = dir }
}

// WithStartEngine sets whether Connect starts `gantry serve` when no engine
// answers on the socket (default true).
func WithStartEngine(start bool) ConnectOption {
	return func(c *connectConfig) { c.startEngine = start }
}

// WithStartTimeout sets how long Connect waits for an engine it started to
// answer (default 20 s).
func WithStartTimeout(timeout time.Duration) ConnectOption {
	return func(c *connectConfig) { c.startTimeout = timeout }
}

// Connect finds a gantry engine and returns the root [Client]. The order,
// the same in every gantry SDK:
//
//  1. Inside `gantry run`: GANTRY_SESSION_PORT and GANTRY_SESSION_TOKEN name a
//     loopback HTTP session; the token is the basic-auth username.
//  2. The engine's Unix socket: GANTRY_SOCKET, else
//     $XDG_RUNTIME_DIR/gantry/engine.sock, else /tmp/gantry-$UID/engine.sock.
//     Requests carry X-Gantry-Workdir so relative host paths resolve against
//     the program's working directory.
//  3. Nothing answers: start `gantry serve --socket PATH` (the binary from
//     GANTRY_BIN, else gantry on PATH) detached in its own session, logging to
//     engine.log beside the socket, wait for it and leave it running. It
//     stops by itself after GANTRY_IDLE_TIMEOUT (default [DefaultIdleTimeout])
//     with no client. Starting one says so, once, on stderr: `gantry: started
//     engine (pid N) on SOCKET; log: PATH`; reusing one says nothing.
//
// Errors are a [*ConnectError].
func Connect(ctx context.Context, opts ...ConnectOption) (*Client, error) {
	config := connectConfig{startEngine: true, startTimeout: 20 * time.Second}
	for _, opt := range opts {
		opt(&config)
	}
	sess, err := dial(ctx, config)
	if err != nil {
		return nil, err
	}
	return &Client{object: newObject(&selection{sess: sess}), sess: sess}, nil
}

// Close releases the client's idle connections. The engine keeps running.
func (r *Client) Close() error {
	r.sess.close()
	return nil
}

// workdirHeader is the X-Gantry-Workdir value (percent-encoded), or "" when
// the working directory cannot be read.
func workdirHeader(dir string) string {
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return ""
		}
		dir = wd
	} else if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	// Percent-encoded: any directory name (café too) reaches the engine,
	// which refuses relative host paths from a client that sends none.
	return encodeWorkdir(dir)
}
