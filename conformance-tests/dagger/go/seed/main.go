// The seed pipeline: go test, go build into a minimal non-root image, publish, then
// run the published image.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"dagger.io/dagger"
)

const (
	golang  = "127.0.0.1:5000/gantry-fixtures/golang:latest"
	runtime = "127.0.0.1:5000/gantry-fixtures/static:nonroot"
)

func goBase(client *dagger.Client, src *dagger.Directory) *dagger.Container {
	return client.Container().
		From(golang).
		WithDirectory("/src", src).
		WithWorkdir("/src").
		WithMountedCache("/root/go/pkg/mod", client.CacheVolume("go-mod")).
		WithMountedCache("/root/.cache/go-build", client.CacheVolume("go-build"))
}

func test(ctx context.Context, client *dagger.Client, src *dagger.Directory) (string, error) {
	return goBase(client, src).WithExec([]string{"go", "test", "./..."}).Stdout(ctx)
}

func build(client *dagger.Client, src *dagger.Directory) *dagger.Container {
	binary := goBase(client, src).
		WithEnvVariable("CGO_ENABLED", "0").
		WithEnvVariable("GOOS", "linux").
		WithExec([]string{"go", "build", "-ldflags=-s -w", "-o", "/out/server", "./cmd/server"}).
		File("/out/server")
	return client.Container().
		From(runtime).
		WithFile("/server", binary).
		WithEntrypoint([]string{"/server"})
}

func main() {
	ctx := context.Background()
	client, err := dagger.Connect(ctx, dagger.WithLogOutput(os.Stderr))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	registry := os.Getenv("GANTRY_TEST_REGISTRY")
	if registry == "" {
		registry = "127.0.0.1:5000"
	}
	src := client.Host().Directory("../../../examples/seed-app")
	out, err := test(ctx, client, src)
	if err != nil {
		log.Fatalf("tests failed: %v", err)
	}
	if !strings.Contains(out, "ok") {
		log.Fatalf("unexpected test output %q", out)
	}
	ref, err := build(client, src).Publish(ctx, registry+"/gantry-dagger-sdk/go-seed:latest")
	if err != nil {
		log.Fatal(err)
	}
	if !strings.Contains(ref, "@sha256:") {
		log.Fatalf("unexpected reference %q", ref)
	}
	greeting, err := client.Container().
		From(ref).
		WithExec(nil, dagger.ContainerWithExecOpts{UseEntrypoint: true}).
		Stdout(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if !strings.HasPrefix(greeting, "hello from seed-app (uid ") || strings.Contains(greeting, "(uid 0)") {
		log.Fatalf("unexpected greeting %q", greeting)
	}
	fmt.Printf("seed: ok (%s)\n", ref)
}
