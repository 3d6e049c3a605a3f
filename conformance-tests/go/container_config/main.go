package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry/conformance-tests/go/internal/conf"
	"github.com/gantry-dev/gantry/sdk-go"
)

func main() {
	ctx := context.Background()
	client := conf.Connect(ctx)
	defer client.Close()

	ctr := client.Container().From(conf.Busybox).
		WithEnvVariable("MARKER", conf.Marker).
		WithEnvVariable("GREETING", "hi").
		WithWorkdir("/work").
		WithUser("nobody").
		WithEntrypoint([]string{"sh", "-c"})
	greeting, err := ctr.EnvVariable(ctx, "GREETING")
	conf.Check(err)
	fmt.Println("envVariable GREETING:", greeting)
	workdir, err := ctr.Workdir(ctx)
	conf.Check(err)
	fmt.Println("workdir:", workdir)
	user, err := ctr.User(ctx)
	conf.Check(err)
	fmt.Println("user:", user)
	entrypoint, err := ctr.Entrypoint(ctx)
	conf.Check(err)
	fmt.Println("entrypoint:", strings.Join(entrypoint, " "))
	out, err := ctr.WithExec([]string{`echo "$GREETING from $(pwd) as uid $(id -u)"`},
		gantry.ContainerWithExecOpts{UseEntrypoint: true}).Stdout(ctx)
	conf.Check(err)
	fmt.Println("exec:", strings.TrimSpace(out))
}
