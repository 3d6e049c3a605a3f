package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry/conformance-tests/go/internal/conf"
)

func main() {
	ctx := context.Background()
	client := conf.Connect(ctx)
	defer client.Close()

	ctr := client.Container().From(conf.Busybox).WithEnvVariable("MARKER", conf.Marker).
		WithExec([]string{"echo", "hello from gantry"})
	out, err := ctr.Stdout(ctx)
	conf.Check(err)
	fmt.Println("stdout:", strings.TrimSpace(out))
	code, err := ctr.ExitCode(ctx)
	conf.Check(err)
	fmt.Println("exit code:", code)
}
