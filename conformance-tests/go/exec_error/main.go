package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry/conformance-tests/go/internal/conf"
	"github.com/gantry-dev/gantry/sdk-go"
)

const script = "echo out; echo err >&2; exit 3"

func main() {
	ctx := context.Background()
	client := conf.Connect(ctx)
	defer client.Close()

	base := client.Container().From(conf.Busybox).WithEnvVariable("MARKER", conf.Marker)
	_, err := base.WithExec([]string{"sh", "-c", script}).Sync(ctx)
	var execErr *gantry.ExecError
	switch {
	case err == nil:
		fmt.Println("no error")
	case errors.As(err, &execErr):
		fmt.Println("caught ExecError")
		fmt.Println("exit code:", execErr.ExitCode)
		fmt.Println("stdout:", strings.TrimSpace(execErr.Stdout))
		fmt.Println("stderr:", strings.TrimSpace(execErr.Stderr))
		fmt.Println("cmd:", strings.Join(execErr.Cmd, " "))
	default:
		conf.Check(err)
	}
	code, err := base.WithExec([]string{"sh", "-c", script},
		gantry.ContainerWithExecOpts{Expect: gantry.ReturnTypeAny}).ExitCode(ctx)
	conf.Check(err)
	fmt.Println("expect ANY, exit code:", code)
}
