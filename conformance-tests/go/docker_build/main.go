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

	contents := func(file *gantry.File) string {
		text, err := file.Contents(ctx)
		conf.Check(err)
		return strings.TrimSpace(text)
	}
	dir := client.Host().Directory(buildContext)
	final := dir.DockerBuild(gantry.DirectoryDockerBuildOpts{
		BuildArgs: []gantry.BuildArg{
			{Name: "BASE", Value: conf.Busybox},
			{Name: "GREETING", Value: "hi"},
			{Name: "MARKER", Value: conf.Marker},
		},
		Target: "final",
	})
	fmt.Println("final greeting:", contents(final.File("greeting.txt")))
	fmt.Println("final message:", contents(final.File("/app/message.txt")))
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
	fmt.Println("build stage greeting:", contents(build.File("/out/greeting.txt")))
	hasApp, err := build.Exists(ctx, "/app")
	conf.Check(err)
	fmt.Println("build stage has /app:", hasApp)

	last := dir.DockerBuild(gantry.DirectoryDockerBuildOpts{BuildArgs: base})
	fmt.Println("no target:", contents(last.File("/last.txt")))
}
