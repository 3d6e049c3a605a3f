package gantry_test

// The SDK against a real engine: leaves, errors, host paths, secrets,
// object arguments.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/sdk-go"
)

func connect(t *testing.T, opts ...gantry.ConnectOption) *gantry.Client {
	t.Helper()
	needEngine(t)
	client, err := gantry.Connect(testContext(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func TestStdoutAndChaining(t *testing.T) {
	client := connect(t)
	ctx := testContext(t)
	ctr := client.Container().From(busybox).WithEnvVariable("GREETING", "hi").WithWorkdir("/tmp")
	out, err := ctr.WithExec([]string{"sh", "-c", `echo "$GREETING from $(pwd)"`}).Stdout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if out != "hi from /tmp\n" {
		t.Fatalf("stdout = %q", out)
	}
	version, err := client.Version(ctx)
	if err != nil || version == "" {
		t.Fatalf("version %q, %v", version, err)
	}
	vars, err := ctr.EnvVariables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range vars {
		name, err := v.Name(ctx)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if !contains(names, "GREETING") {
		t.Fatalf("env variables %v", names)
	}
}

func contains(list []string, want string) bool {
	for _, item := range list {
		if item == want {
			return true
		}
	}
	return false
}

func TestExecErrorHasExitCodeOutputAndCommand(t *testing.T) {
	client := connect(t)
	cmd := []string{"sh", "-c", "echo to-out; echo to-err >&2; exit 3"}
	_, err := client.Container().From(busybox).WithExec(cmd).Sync(testContext(t))
	var execErr *gantry.ExecError
	if !errors.As(err, &execErr) {
		t.Fatalf("want an *ExecError, got %T: %v", err, err)
	}
	if execErr.ExitCode != 3 || execErr.Stdout != "to-out\n" || execErr.Stderr != "to-err\n" {
		t.Fatalf("exit %d stdout %q stderr %q", execErr.ExitCode, execErr.Stdout, execErr.Stderr)
	}
	if !reflect.DeepEqual(execErr.Cmd, cmd) {
		t.Fatalf("cmd %q", execErr.Cmd)
	}
	if !strings.Contains(err.Error(), "to-err") {
		t.Fatalf("message %q", err)
	}
	var queryErr *gantry.QueryError
	if !errors.As(err, &queryErr) {
		t.Fatal("an ExecError is also a QueryError")
	}
}

func TestExpectedFailureIsNotAnError(t *testing.T) {
	client := connect(t)
	code, err := client.Container().From(busybox).
		WithExec([]string{"sh", "-c", "exit 5"}, gantry.ContainerWithExecOpts{Expect: gantry.ReturnTypeFailure}).
		ExitCode(testContext(t))
	if err != nil || code != 5 {
		t.Fatalf("exit code %d, %v", code, err)
	}
}

func TestOtherErrorsAreQueryErrors(t *testing.T) {
	client := connect(t)
	_, err := client.LoadContainerFromID(gantry.ContainerID("Container:" + strings.Repeat("0", 64))).Stdout(testContext(t))
	var queryErr *gantry.QueryError
	if !errors.As(err, &queryErr) {
		t.Fatalf("want a *QueryError, got %T: %v", err, err)
	}
	var execErr *gantry.ExecError
	if errors.As(err, &execErr) {
		t.Fatal("not an ExecError")
	}
	if queryErr.Code == "" {
		t.Fatal("the engine sets extensions.code")
	}
}

func TestObjectArgumentsGoByID(t *testing.T) {
	client := connect(t)
	ctx := testContext(t)
	dir := client.Directory().WithNewFile("greeting.txt", "hello from a directory\n")
	id, err := dir.ID(ctx)
	if err != nil || !strings.HasPrefix(id, "Directory:") {
		t.Fatalf("id %q, %v", id, err)
	}
	ctr := client.Container().From(busybox).WithDirectory("/data", dir)
	synced, err := ctr.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := synced.WithExec([]string{"cat", "/data/greeting.txt"}).Stdout(ctx)
	if err != nil || out != "hello from a directory\n" {
		t.Fatalf("stdout %q, %v", out, err)
	}
	// An object loaded by ID reads the same.
	loaded := client.LoadDirectoryFromID(gantry.DirectoryID(id))
	contents, err := loaded.File("greeting.txt").Contents(ctx)
	if err != nil || contents != "hello from a directory\n" {
		t.Fatalf("contents %q, %v", contents, err)
	}
}

func TestRelativeHostPathsResolveAgainstTheWorkdir(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "a.txt"), []byte("alpha\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	client := connect(t, gantry.WithWorkdir(dir))
	ctx := testContext(t)
	contents, err := client.Host().File("data/a.txt").Contents(ctx)
	if err != nil || contents != "alpha\n" {
		t.Fatalf("contents %q, %v", contents, err)
	}
	entries, err := client.Host().Directory("data").Entries(ctx)
	if err != nil || !reflect.DeepEqual(entries, []string{"a.txt"}) {
		t.Fatalf("entries %q, %v", entries, err)
	}
}

func TestSecretValuesNeverAppearInOutput(t *testing.T) {
	client := connect(t)
	ctx := testContext(t)
	buf := make([]byte, 8)
	_, _ = rand.Read(buf)
	value := "gantry-go-sdk-secret-" + hex.EncodeToString(buf)
	secret := client.SetSecret("api-token", value)
	ctr := client.Container().From(busybox).WithSecretVariable("TOKEN", secret)
	out := ctr.WithExec([]string{"sh", "-c", "echo out=$TOKEN; echo err=$TOKEN >&2"})
	stdout, err := out.Stdout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := out.Stderr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, failure := ctr.WithExec([]string{"sh", "-c", "echo $TOKEN; echo $TOKEN >&2; exit 1"}).Sync(ctx)
	var execErr *gantry.ExecError
	if !errors.As(failure, &execErr) {
		t.Fatalf("want an ExecError, got %v", failure)
	}
	id, err := secret.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{stdout, stderr, id, failure.Error(), execErr.Stdout, execErr.Stderr} {
		if strings.Contains(text, value) {
			t.Fatalf("the secret leaked into %q", text)
		}
	}
	if !strings.HasPrefix(stdout, "out=") || !strings.HasPrefix(stderr, "err=") {
		t.Fatalf("stdout %q stderr %q", stdout, stderr)
	}
	if log, _ := os.ReadFile(engine.log); strings.Contains(string(log), value) {
		t.Fatal("the secret leaked into the engine log")
	}
}
