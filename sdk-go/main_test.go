package gantry_test

// Shared set-up: a private engine for the whole test binary.
//
// Tests never use a developer's engine: TestMain starts `gantry serve` on its
// own temporary socket, points GANTRY_SOCKET at it and clears the
// `gantry run` session variables. The binary is GANTRY_BIN, else
// ../target/debug/gantry (`make go-test` builds it first). Its state
// directory is GANTRY_GO_TEST_STATE_DIR, else ../target/go-test-engine/state:
// kept between runs so the go-mod and go-build cache volumes stay warm (the
// seed pipeline tests give their source a fresh marker, so every run still
// does real container work once). Without a binary the engine tests skip,
// unless GANTRY_TEST_REQUIRE_DOCKER=1 (as in `make test`).
//
// The engine runs on the default runtime (auto: native where it can run).
// The services tests use a second engine pinned to the Docker runtime
// (useDockerEngine), started the first time one asks (services run on both
// runtimes; these tests have not been unpinned yet).

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	// repo is the repository root; sdkDir is sdk-go.
	repo, sdkDir string
	// engine is the shared engine, nil when skipped.
	engine *testEngine
	// gantryBin is the binary, "" when there is none.
	gantryBin string
	// skipReason says why engine tests skip.
	skipReason string

	// The engine pinned to the Docker runtime (useDockerEngine), its start's
	// error, and how to stop it (runTests does, at the end).
	dockerEngine     *testEngine
	dockerEngineErr  error
	dockerEngineOnce sync.Once
	stopDockerEngine = func() {}

	registry     = envOr("GANTRY_TEST_REGISTRY", "127.0.0.1:5000")
	authRegistry = envOr("GANTRY_TEST_AUTH_REGISTRY", "127.0.0.1:5001")
	authUser     = envOr("GANTRY_TEST_AUTH_REGISTRY_USER", "gantry")
	authPassword = envOr("GANTRY_TEST_AUTH_REGISTRY_PASSWORD", "gantry-test-password")
	fixtures     = envOr("GANTRY_TEST_FIXTURES", registry+"/gantry-fixtures")
	busybox      = fixtures + "/busybox:latest"
)

type testEngine struct {
	socket   string
	stateDir string
	log      string
	pid      int
	cmd      *exec.Cmd
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

func TestMain(m *testing.M) {
	// The test binary doubles as a helper program for the `gantry run` test.
	if helper := os.Getenv(helperEnv); helper != "" {
		os.Exit(runHelper(helper))
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	sdkDir = filepath.Dir(file)
	repo = filepath.Dir(sdkDir)
	gantryBin = os.Getenv("GANTRY_BIN")
	if gantryBin == "" {
		gantryBin = filepath.Join(repo, "target", "debug", "gantry")
	}
	for _, name := range []string{"GANTRY_SESSION_PORT", "GANTRY_SESSION_TOKEN", "GANTRY_BIN"} {
		os.Unsetenv(name)
	}
	// A socket nobody serves until the engine below is up.
	os.Setenv("GANTRY_SOCKET", "/nonexistent/gantry-go-tests-without-engine.sock")
	if info, err := os.Stat(gantryBin); err != nil || info.Mode()&0o111 == 0 {
		skipReason = fmt.Sprintf("no gantry binary at %s: run `cargo build -p gantry` first", gantryBin)
		gantryBin = ""
		return m.Run()
	}
	state := os.Getenv("GANTRY_GO_TEST_STATE_DIR")
	if state == "" {
		state = filepath.Join(repo, "target", "go-test-engine", "state")
	}
	started, stop, err := startEngine(state, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gantry engine for the tests:", err)
		return 1
	}
	engine = started
	defer stop()
	defer func() { stopDockerEngine() }()
	os.Setenv("GANTRY_SOCKET", engine.socket)
	return m.Run()
}

// useDockerEngine points GANTRY_SOCKET at an engine pinned to the Docker
// runtime for the rest of test t (services run there only). The engine starts
// the first time a test asks, with a state directory beside the shared one's.
func useDockerEngine(t *testing.T) {
	t.Helper()
	shared := needEngine(t)
	dockerEngineOnce.Do(func() {
		state := filepath.Join(filepath.Dir(shared.stateDir), "docker-state")
		dockerEngine, stopDockerEngine, dockerEngineErr = startEngine(state, []string{"GANTRY_RUNTIME=docker"})
	})
	if dockerEngineErr != nil {
		t.Fatal("gantry engine on the Docker runtime:", dockerEngineErr)
	}
	t.Setenv("GANTRY_SOCKET", dockerEngine.socket)
}

// startEngine starts `gantry serve` on state directory state, with env added
// to the environment, and returns it once it answers, with how to stop it.
func startEngine(state string, env []string) (*testEngine, func(), error) {
	base, err := os.MkdirTemp("", "gantry-go-test-")
	if err != nil {
		return nil, nil, err
	}
	e := &testEngine{
		socket:   filepath.Join(base, "engine.sock"),
		stateDir: state,
		log:      filepath.Join(base, "engine.log"),
	}
	logFile, err := os.Create(e.log)
	if err != nil {
		return nil, nil, err
	}
	e.cmd = exec.Command(gantryBin, "serve", "--socket", e.socket, "--state-dir", e.stateDir)
	e.cmd.Env = append(os.Environ(), env...)
	e.cmd.Stdout = logFile
	e.cmd.Stderr = logFile
	if err := e.cmd.Start(); err != nil {
		return nil, nil, err
	}
	logFile.Close()
	e.pid = e.cmd.Process.Pid
	exited := make(chan struct{})
	go func() { _ = e.cmd.Wait(); close(exited) }()
	stop := func() {
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = e.cmd.Process.Kill()
			<-exited
		}
		// Keep the state (warm caches) but not more than 2 GB of results.
		prune := exec.Command(gantryBin, "prune", "--keep-storage", "2GB", "--state-dir", e.stateDir)
		prune.Env = append(os.Environ(), env...)
		_ = prune.Run()
		os.RemoveAll(base)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !socketAnswers(e.socket) {
		select {
		case <-exited:
			return nil, nil, fmt.Errorf("gantry serve exited early:\n%s", tailFile(e.log))
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("gantry serve did not answer within 60 s:\n%s", tailFile(e.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return e, stop, nil
}

// needEngine skips (or, under GANTRY_TEST_REQUIRE_DOCKER=1, fails) a test
// that needs the engine when there is none.
func needEngine(t *testing.T) *testEngine {
	t.Helper()
	if engine == nil {
		if os.Getenv("GANTRY_TEST_REQUIRE_DOCKER") == "1" {
			t.Fatal(skipReason)
		}
		t.Skip(skipReason)
	}
	return engine
}

func socketAnswers(path string) bool {
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

func tailFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// command runs a program and returns its stdout, failing the test with its
// stderr on a non-zero exit.
func command(t *testing.T, dir string, env []string, name string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr strings.Builder
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// withEnv is the current environment with some variables replaced.
func withEnv(extra ...string) []string {
	env := os.Environ()
	return append(env, extra...)
}
