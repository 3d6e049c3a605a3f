package gantry_test

// Connection rules: session variables, socket, auto-start, clear errors, and
// the seed pipeline example under `gantry run` and against an auto-started
// engine.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/sdk-go"
)

const helperEnv = "GANTRY_GO_TEST_HELPER"

func connectError(t *testing.T, opts ...gantry.ConnectOption) *gantry.ConnectError {
	t.Helper()
	client, err := gantry.Connect(context.Background(), opts...)
	if err == nil {
		client.Close()
		t.Fatal("Connect succeeded")
	}
	var connectErr *gantry.ConnectError
	if !errors.As(err, &connectErr) {
		t.Fatalf("want a *ConnectError, got %T: %v", err, err)
	}
	return connectErr
}

func TestSessionPortNeedsAToken(t *testing.T) {
	t.Setenv("GANTRY_SESSION_PORT", "41234")
	err := connectError(t)
	if !strings.Contains(err.Error(), "GANTRY_SESSION_TOKEN is not") {
		t.Fatal(err)
	}
}

func TestMissingBinarySaysHowToInstall(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("GANTRY_SOCKET", filepath.Join(dir, "run", "engine.sock"))
	t.Setenv("PATH", dir)
	message := connectError(t).Error()
	for _, want := range []string{"no `gantry` binary was found", "cargo build --release -p gantry", "GANTRY_BIN"} {
		if !strings.Contains(message, want) {
			t.Fatalf("%q lacks %q", message, want)
		}
	}
}

func TestGantryBinMustBeAnExecutable(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("GANTRY_SOCKET", filepath.Join(dir, "run", "engine.sock"))
	t.Setenv("GANTRY_BIN", filepath.Join(dir, "nope"))
	if message := connectError(t).Error(); !strings.Contains(message, "is not an executable file") {
		t.Fatal(message)
	}
}

func TestNoAutoStartWhenDisabled(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "engine.sock")
	err := connectError(t, gantry.WithSocket(sock), gantry.WithStartEngine(false))
	if !strings.Contains(err.Error(), "no gantry engine answers") {
		t.Fatal(err)
	}
}

func TestEngineThatFailsToStartPointsAtItsLog(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "gantry")
	script := "#!/bin/sh\necho 'cannot start: docker is gone' >&2\nexit 7\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GANTRY_BIN", fake)
	sock := filepath.Join(dir, "run", "engine.sock")
	err := connectError(t, gantry.WithSocket(sock))
	if err.LogPath != filepath.Join(dir, "run", "engine.log") {
		t.Fatalf("log path %q", err.LogPath)
	}
	for _, want := range []string{"exited with status 7", "cannot start: docker is gone"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("%q lacks %q", err, want)
		}
	}
}

// runHelper is the program the `gantry run` test runs (the test binary
// itself, re-executed with GANTRY_GO_TEST_HELPER set).
func runHelper(name string) int {
	if name == "versions" {
		return twoConnections()
	}
	if name != "session" {
		fmt.Fprintln(os.Stderr, "unknown helper", name)
		return 2
	}
	ctx := context.Background()
	if os.Getenv("GANTRY_SESSION_PORT") == "" {
		fmt.Fprintln(os.Stderr, "not in a gantry run session")
		return 1
	}
	client, err := gantry.Connect(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out, err := client.Container().
		From(busybox).
		WithFile("/hello.txt", client.Host().File("hello.txt")).
		WithExec([]string{"cat", "/hello.txt"}).
		Stdout(ctx)
	client.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Print(out)
	os.Setenv("GANTRY_SESSION_TOKEN", "wrong-token")
	client, err = gantry.Connect(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_, err = client.Version(ctx)
	var transportErr *gantry.TransportError
	if errors.As(err, &transportErr) {
		fmt.Println("wrong token:", transportErr.Status)
	} else {
		fmt.Println("wrong token: no TransportError:", err)
	}
	return 0
}

// twoConnections asks the engine for its version over two connections.
func twoConnections() int {
	ctx := context.Background()
	for range 2 {
		client, err := gantry.Connect(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		_, err = client.Version(ctx)
		client.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// TestVersionMismatchWarnsOnce checks the real engine's version against the
// SDK's: GANTRY_TEST_SDK_VERSION makes the SDK claim another one (a test-only
// override).
func TestVersionMismatchWarnsOnce(t *testing.T) {
	e := needEngine(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func(extra ...string) string {
		_, stderr, err := command(t, t.TempDir(), withEnv(append([]string{helperEnv + "=versions"}, extra...)...), self)
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		return stderr
	}
	if stderr := run(); stderr != "" {
		t.Fatalf("a matching engine says nothing, got %q", stderr)
	}
	stderr := run("GANTRY_TEST_SDK_VERSION=0.0.3-test")
	var warnings []string
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "warning") {
			warnings = append(warnings, line)
		}
	}
	want := "gantry: warning: this SDK is version 0.0.3-test but the engine is version " + gantry.Version +
		"; upgrade the SDK to " + gantry.Version + ", or use a 0.0.3-test engine: stop this one " +
		"(`gantry engine stop`) and set GANTRY_BIN to a gantry 0.0.3-test binary"
	if len(warnings) != 1 || warnings[0] != want {
		t.Fatalf("want one warning %q, got %q", want, stderr)
	}
	// The engine logged the odd client once, though it connected twice.
	log, err := os.ReadFile(e.log)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "client=go/0.0.3-test"); n != 1 {
		t.Fatalf("the engine logged the client %d times:\n%s", n, log)
	}
}

// autoState is the state directory of the engines the `gantry run` and
// auto-start tests create (one at a time), kept between runs like the shared
// engine's.
func autoState() string {
	if dir := os.Getenv("GANTRY_GO_TEST_AUTO_STATE_DIR"); dir != "" {
		return dir
	}
	return filepath.Join(repo, "target", "go-test-engine", "auto-state")
}

func TestGantryRunSession(t *testing.T) {
	needEngine(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("from the run directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A socket nobody serves: the helper must not fall back to it.
	env := withEnv(helperEnv+"=session", "GANTRY_SOCKET="+filepath.Join(dir, "unused.sock"))
	stdout, stderr, err := command(t, dir, env, gantryBin, "run", "--state-dir", autoState(), "--", self)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if want := "from the run directory\nwrong token: 401\n"; stdout != want {
		t.Fatalf("stdout %q, want %q\nstderr: %s", stdout, want, stderr)
	}
}

// seedApp copies examples/seed-app into a temporary directory.
func seedApp(t *testing.T) string {
	t.Helper()
	target := filepath.Join(t.TempDir(), "seed-app")
	src := filepath.Join(repo, "examples", "seed-app")
	err := filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(target, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(target, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return target
}

const seedTestOK = "ok  \texample.com/seed-app/cmd/server"

func TestSeedPipelineUnderGantryRun(t *testing.T) {
	needEngine(t)
	src := seedApp(t)
	env := withEnv("GANTRY_SOCKET=" + filepath.Join(t.TempDir(), "unused.sock"))
	stdout, stderr, err := command(t, sdkDir, env, gantryBin, "run", "--state-dir", autoState(), "--",
		"go", "run", "./examples/pipeline", "test", "--src="+src)
	if err != nil || !strings.Contains(stdout, seedTestOK) {
		t.Fatalf("%v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
}

func TestAutoStartRunsTheSeedPipelineAndLeavesTheEngine(t *testing.T) {
	needEngine(t)
	src := seedApp(t)
	sock := filepath.Join(t.TempDir(), "auto", "engine.sock")
	logPath := filepath.Join(filepath.Dir(sock), "engine.log")
	env := withEnv("GANTRY_SOCKET="+sock, "GANTRY_BIN="+gantryBin, "GANTRY_STATE_DIR="+autoState(), "GANTRY_IDLE_TIMEOUT=")
	t.Cleanup(func() { stopEngineOn(t, sock) })
	for i := 0; i < 2; i++ {
		stdout, stderr, err := command(t, sdkDir, env, "go", "run", "./examples/pipeline", "test", "--src="+src)
		if err != nil || !strings.Contains(stdout, seedTestOK) {
			t.Fatalf("run %d: %v\nstdout: %s\nstderr: %s\nengine log:\n%s", i+1, err, stdout, stderr,
				tailFile(filepath.Join(filepath.Dir(sock), "engine.log")))
		}
		if !socketAnswers(sock) {
			t.Fatal("the engine keeps running after the program")
		}
		// The first program says it started the engine, once; the second says nothing.
		started := regexp.MustCompile(`(?m)^gantry: started engine \(pid \d+\) on ` +
			regexp.QuoteMeta(sock) + `; log: ` + regexp.QuoteMeta(logPath) + `$`)
		if want, got := 1-i, len(started.FindAllString(stderr, -1)); got != want ||
			strings.Count(stderr, "started engine") != want {
			t.Fatalf("run %d: %d start messages, want %d:\n%s", i+1, got, want, stderr)
		}
	}
	log, _ := os.ReadFile(logPath)
	if n := strings.Count(string(log), "serving on unix://"); n != 1 {
		t.Fatalf("the second program must reuse the engine; it started %d times", n)
	}
	if !strings.Contains(string(log), "idle_timeout=30m") {
		t.Fatalf("the engine was not started with the SDKs' idle timeout:\n%s", log)
	}
}

// stopEngineOn stops the `gantry serve --socket sock` a test's program started.
func stopEngineOn(t *testing.T, sock string) {
	entries, _ := os.ReadDir("/proc")
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", entry.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) < 4 || args[1] != "serve" || args[2] != "--socket" || args[3] != sock {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(filepath.Join("/proc", entry.Name())); err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("stopped the auto-started engine (pid %d)", pid)
	}
}
