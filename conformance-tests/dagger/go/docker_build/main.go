// Dockerfile builds as Dagger scripts write them: DockerBuild with dagger.BuildArg
// build arguments and a target stage, on the fixture busybox.
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"dagger.io/dagger"
)

const busybox = "127.0.0.1:5000/gantry-fixtures/busybox:latest"

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func main() {
	ctx := context.Background()
	client, err := dagger.Connect(ctx, dagger.WithLogOutput(os.Stderr))
	check(err)
	defer client.Close()

	dir := client.Host().Directory("../../fixtures/dockerbuild")
	final := dir.DockerBuild(dagger.DirectoryDockerBuildOpts{
		BuildArgs: []dagger.BuildArg{
			{Name: "BASE", Value: busybox},
			{Name: "GREETING", Value: "hi"},
			{Name: "MARKER", Value: "dagger-go"},
		},
		Target: "final",
	})
	greeting, err := final.File("greeting.txt").Contents(ctx)
	check(err)
	workdir, err := final.Workdir(ctx)
	check(err)
	stage, err := final.EnvVariable(ctx, "STAGE")
	check(err)
	marker, err := final.WithExec([]string{"cat", "marker.txt"}).Stdout(ctx)
	check(err)
	if greeting != "hi from the build stage\n" || workdir != "/app" || stage != "final" ||
		marker != "marker: dagger-go\n" {
		log.Fatalf("final: %q %q %q %q", greeting, workdir, stage, marker)
	}
	build := dir.DockerBuild(dagger.DirectoryDockerBuildOpts{
		BuildArgs: []dagger.BuildArg{{Name: "BASE", Value: busybox}},
		Target:    "build",
	})
	greeting, err = build.File("/out/greeting.txt").Contents(ctx)
	check(err)
	if greeting != "hello from the build stage\n" {
		log.Fatalf("build stage: %q", greeting)
	}
	fmt.Println("docker_build: ok")
}
