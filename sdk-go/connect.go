package gantry

// Finding the engine and talking to it over HTTP (net/http: a Unix socket
// through a custom dialer, or loopback TCP for a `gantry run` session).
//
// Every request names the SDK (X-Gantry-Client: go/VERSION) and every
// response the engine's version (X-Gantry-Version). When they do not match
// (from 1.0 on: major and minor; before 1.0: the whole version), the first
// response says so, once per process, on stderr.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The names shared with the engine (EnvSocket, DefaultSocket, ...) are
// generated into env.gen.go.

const installHint = "build it with `cargo build --release -p gantry` in the gantry repository and " +
	"put target/release/gantry on PATH, or set " + EnvBin + " to the binary's path"

// versionChecked compares the engine's version with the SDK's once per process.
var versionChecked sync.Once

// checkVersion warns, the first time a response names the engine's version,
// when it does not match the SDK's.
func checkVersion(engine string) {
	if engine == "" {
		return
	}
	versionChecked.Do(func() {
		if warning := versionWarning(sdkVersion(), engine); warning != "" {
			fmt.Fprintln(os.Stderr, warning)
		}
	})
}

// session sends GraphQL documents to one engine endpoint.
type session struct {
	url      string
	describe string
	headers  map[string]string
	client   *http.Client
}

func dial(ctx context.Context, config connectConfig) (*session, error) {
	if port := os.Getenv(EnvSessionPort); port != "" && config.socket == "" {
		token := os.Getenv(EnvSessionToken)
		if token == "" {
			return nil, &ConnectError{Message: EnvSessionPort + " is set but " + EnvSessionToken +
				" is not: run the program with `gantry run -- ...`, or unset both to use the engine's socket"}
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return nil, &ConnectError{Message: fmt.Sprintf("%s=%q is not a port number", EnvSessionPort, port), Err: err}
		}
		auth := base64.StdEncoding.EncodeToString([]byte(token + ":"))
		return &session{
			url:      "http://127.0.0.1:" + port + "/query",
			describe: "http://127.0.0.1:" + port,
			headers:  map[string]string{"Authorization": "Basic " + auth, clientHeaderName: "go/" + sdkVersion()},
			client:   &http.Client{Transport: &http.Transport{Proxy: nil}},
		}, nil
	}
	path := config.socket
	if path == "" {
		path = socketPath()
	}
	headers := map[string]string{clientHeaderName: "go/" + sdkVersion()}
	if dir := workdirHeader(config.workdir); dir != "" {
		headers[workdirHeaderName] = dir
	}
	sess := &session{
		url:      "http://gantry/query",
		describe: "unix://" + path,
		headers:  headers,
		client: &http.Client{Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
		}},
	}
	if answers(path) {
		return sess, nil
	}
	if !config.startEngine {
		return nil, &ConnectError{Message: "no gantry engine answers on " + path + ": start one with `gantry serve`"}
	}
	if err := startEngine(ctx, path, config.startTimeout); err != nil {
		return nil, err
	}
	return sess, nil
}

func (s *session) close() {
	s.client.CloseIdleConnections()
}

// query sends one document and returns the response's data.
func (s *session) query(ctx context.Context, document string) (any, error) {
	body, err := json.Marshal(map[string]string{"query": document})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	for name, value := range s.headers {
		req.Header.Set(name, value)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, &TransportError{Message: "cannot reach the gantry engine at " + s.describe, Err: unwrapURLError(err)}
	}
	defer resp.Body.Close()
	checkVersion(resp.Header.Get(versionHeaderName))
	payload, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &TransportError{Message: "the connection to the gantry engine at " + s.describe + " failed mid-request", Status: resp.StatusCode, Err: err}
	}
	var response struct {
		Data   any            `json:"data"`
		Errors []GraphQLError `json:"errors"`
	}
	decodeErr := json.Unmarshal(payload, &response)
	if resp.StatusCode != http.StatusOK {
		message := ""
		if decodeErr == nil && len(response.Errors) > 0 {
			message = response.Errors[0].Message
		} else {
			message = strings.TrimSpace(string(payload[:min(len(payload), 200)]))
		}
		return nil, &TransportError{
			Message: fmt.Sprintf("the gantry engine at %s answered HTTP %d: %s", s.describe, resp.StatusCode, message),
			Status:  resp.StatusCode,
		}
	}
	if decodeErr != nil {
		return nil, &TransportError{Message: "the gantry engine's response is not a JSON object", Status: resp.StatusCode, Err: decodeErr}
	}
	if len(response.Errors) > 0 {
		return nil, errorFor(response.Errors)
	}
	if _, ok := response.Data.(map[string]any); !ok {
		return nil, &TransportError{Message: "the gantry engine's response has no data", Status: resp.StatusCode}
	}
	return response.Data, nil
}

func unwrapURLError(err error) error {
	var urlErr interface{ Unwrap() error }
	if errors.As(err, &urlErr) {
		if inner := urlErr.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// answers reports whether an engine accepts connections on the socket.
func answers(path string) bool {
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

func findBinary() (string, error) {
	if explicit := os.Getenv(EnvBin); explicit != "" {
		info, err := os.Stat(explicit)
		if err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
			return "", &ConnectError{Message: EnvBin + "=" + explicit + " is not an executable file: " + installHint, Err: err}
		}
		return explicit, nil
	}
	found, err := exec.LookPath("gantry")
	if err != nil {
		return "", &ConnectError{
			Message: "no gantry engine is running and no `gantry` binary was found to start one: " + installHint,
			Err:     err,
		}
	}
	return found, nil
}

// DefaultIdleTimeout is how long an engine the SDK starts waits with no client
// before it stops, unless GANTRY_IDLE_TIMEOUT says otherwise (the same in
// every gantry SDK).
const DefaultIdleTimeout = "30m"

// startEngine starts `gantry serve --socket path` detached and waits until
// it answers. One starter at a time (a lock file beside the socket), so
// programs launched together share one engine.
func startEngine(ctx context.Context, path string, timeout time.Duration) error {
	binary, err := findBinary()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return &ConnectError{Message: "cannot create the engine's socket directory " + dir, Err: err}
	}
	logPath := filepath.Join(dir, "engine.log")
	deadline := time.Now().Add(timeout)

	lock, err := os.OpenFile(filepath.Join(dir, "engine.start.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return &ConnectError{Message: "cannot open the engine start lock in " + dir, Err: err}
	}
	defer lock.Close()
	for {
		err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return &ConnectError{Message: "cannot lock the engine start lock in " + dir, Err: err}
		}
		if time.Now().After(deadline) {
			return &ConnectError{Message: "another process is still starting the gantry engine on " + path, LogPath: logPath}
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	// Closing the file releases the lock.
	if answers(path) {
		return nil
	}

	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return &ConnectError{Message: "cannot open the engine log " + logPath, Err: err}
	}
	defer logFile.Close()
	// Not exec.CommandContext: the engine outlives this program and ctx.
	cmd := exec.Command(binary, "serve", "--socket", path)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = os.Environ()
	if os.Getenv(EnvIdleTimeout) == "" {
		cmd.Env = append(cmd.Env, EnvIdleTimeout+"="+DefaultIdleTimeout)
	}
	// Setsid: the engine gets no terminal signals meant for this program.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return &ConnectError{Message: "could not start " + binary + " serve", LogPath: logPath, Err: err}
	}
	exited := make(chan error, 1)
	// Reaps the engine if it exits while this program still runs.
	go func() { exited <- cmd.Wait() }()
	for {
		if answers(path) {
			fmt.Fprintf(os.Stderr, "gantry: started engine (pid %d) on %s; log: %s\n", cmd.Process.Pid, path, logPath)
			return nil
		}
		select {
		case waitErr := <-exited:
			if answers(path) { // another engine won the race
				return nil
			}
			return &ConnectError{
				Message: fmt.Sprintf("the gantry engine started from %s %s before answering on %s; its log (%s) ends with:\n%s",
					binary, describeExit(waitErr), path, logPath, tail(logPath, 20)),
				LogPath: logPath,
				Err:     waitErr,
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return &ConnectError{
				Message: fmt.Sprintf("the gantry engine started from %s (pid %d) did not answer on %s within %s; see its log: %s",
					binary, cmd.Process.Pid, path, timeout, logPath),
				LogPath: logPath,
			}
		}
	}
}

func describeExit(err error) string {
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return fmt.Sprintf("exited with status %d", exitErr.ExitCode())
	}
	if err == nil {
		return "exited with status 0"
	}
	return "failed: " + err.Error()
}

func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// tail returns the last lines of a log file (at most its last 8 KiB).
func tail(path string, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Size() > 8192 {
		_, _ = f.Seek(-8192, io.SeekEnd)
	}
	data, _ := io.ReadAll(f)
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
