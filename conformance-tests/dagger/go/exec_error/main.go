// A failing exec returns *dagger.ExecError with the command, exit code, stdout, stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"slices"
	"strings"

	"dagger.io/dagger"
)

const busybox = "127.0.0.1:5000/gantry-fixtures/busybox:latest"

func main() {
	ctx := context.Background()
	client, err := dagger.Connect(ctx, dagger.WithLogOutput(os.Stderr))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	cmd := []string{"sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"}
	_, err = client.Container().From(busybox).WithExec(cmd).Sync(ctx)
	var execErr *dagger.ExecError
	if !errors.As(err, &execErr) {
		log.Fatalf("expected *dagger.ExecError, got %v", err)
	}
	if execErr.ExitCode != 3 {
		log.Fatalf("exit code %d", execErr.ExitCode)
	}
	if strings.TrimSpace(execErr.Stdout) != "to-stdout" || strings.TrimSpace(execErr.Stderr) != "to-stderr" {
		log.Fatalf("stdout %q stderr %q", execErr.Stdout, execErr.Stderr)
	}
	if !slices.Equal(execErr.Cmd, cmd) {
		log.Fatalf("cmd %q", execErr.Cmd)
	}

	code, err := client.Container().
		From(busybox).
		WithExec(cmd, dagger.ContainerWithExecOpts{Expect: dagger.ReturnTypeAny}).
		ExitCode(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if code != 3 {
		log.Fatalf("exit code %d", code)
	}
	fmt.Println("exec_error: ok")
}
