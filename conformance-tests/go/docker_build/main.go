package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry/conformance-tests/go/internal/conf"
	"github.com/gantry-dev/gantry/sdk-go"
)

const buildContext = "../fixtures/dockerbuild"

func main() {
	ctx := context.Background()
	client := conf.Connect(ctx)
	defer client.Close()

	dir := client.Host().Directory(buildContext)
	final := dir.DockerBuild(gantry.DirectoryDockerBuildOpts{
		BuildArgs: []gantry.BuildArg{
			{Name: "BASE", Value: conf.Busybox},
			{Name: "GREETING", Value: "hi"},
			{Name: "MARKER", Value: conf.Marker},
		},
		Target: "final",
	})
	fmt.Println("final greeting:", conf.Contents(ctx, final.File("greeting.txt")))
	fmt.Println("final message:", conf.Contents(ctx, final.File("/app/message.txt")))
	workdir, err := final.Workdir(ctx)
	conf.Check(err)
	fmt.Println("final workdir:", workdir)
	stage, err := final.EnvVariable(ctx, "STAGE")
	conf.Check(err)
	fmt.Println("final STAGE:", stage)
	out, err := final.WithExec([]string{"cat", "marker.txt"}).Stdout(ctx)
	conf.Check(err)
	fmt.Println("final run:", strings.TrimSpace(out))
	args, err := final.DefaultArgs(ctx)
	conf.Check(err)
	fmt.Println("final default args:", strings.Join(args, " "))

	base := []gantry.BuildArg{{Name: "BASE", Value: conf.Busybox}}
	build := dir.DockerBuild(gantry.DirectoryDockerBuildOpts{BuildArgs: base, Target: "build"})
	fmt.Println("build stage greeting:", conf.Contents(ctx, build.File("/out/greeting.txt")))
	hasApp, err := build.Exists(ctx, "/app")
	conf.Check(err)
	fmt.Println("build stage has /app:", hasApp)

	last := dir.DockerBuild(gantry.DirectoryDockerBuildOpts{BuildArgs: base})
	fmt.Println("no target:", conf.Contents(ctx, last.File("/last.txt")))
}
