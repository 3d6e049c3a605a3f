// The seed pipeline as a gantry module, with gantry's Go SDK:
// `gantry call test --src=../../seed-app`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	gantry "github.com/gantry-dev/gantry/sdk-go"
)

func image(name string) string {
	fixtures := os.Getenv("GANTRY_TEST_FIXTURES")
	if fixtures == "" {
		fixtures = "127.0.0.1:5000/gantry-fixtures"
	}
	return fixtures + "/" + name
}

func goBase(client *gantry.Client, src *gantry.Directory) *gantry.Container {
	return client.Container().
		From(image("golang:latest")).
		WithDirectory("/src", src).
		WithWorkdir("/src").
		WithMountedCache("/root/go/pkg/mod", client.CacheVolume("go-mod")).
		WithMountedCache("/root/.cache/go-build", client.CacheVolume("go-build"))
}

// Pipeline tests, builds and publishes the seed Go service.
type Pipeline struct{}

// Test runs `go test ./...` and returns its output.
func (p *Pipeline) Test(
	ctx context.Context,
	// The Go module to test.
	src *gantry.Directory,
) (string, error) {
	client, err := gantry.Connect(ctx)
	if err != nil {
		return "", err
	}
	return goBase(client, src).WithExec([]string{"go", "test", "./..."}).Stdout(ctx)
}

// Build builds the server into a minimal non-root image.
func (p *Pipeline) Build(
	ctx context.Context,
	// The Go module to build.
	src *gantry.Directory,
) (*gantry.Container, error) {
	client, err := gantry.Connect(ctx)
	if err != nil {
		return nil, err
	}
	binary := goBase(client, src).
		WithEnvVariable("CGO_ENABLED", "0").
		WithEnvVariable("GOOS", "linux").
		WithExec([]string{"go", "build", "-ldflags=-s -w", "-o", "/out/server", "./cmd/server"}).
		File("/out/server")
	return client.Container().
		From(image("static:nonroot")).
		WithFile("/server", binary).
		WithEntrypoint([]string{"/server"}), nil
}

// Publish tests, builds and publishes REGISTRY:TAG; returns the reference with its digest.
func (p *Pipeline) Publish(
	ctx context.Context,
	// The Go module.
	src *gantry.Directory,
	// The repository to publish to, e.g. 127.0.0.1:5001/app.
	registry string,
	// The image tag.
	tag string,
	// The registry user name.
	registryUser string,
	// The registry password or token.
	registryToken *gantry.Secret,
) (string, error) {
	if _, err := p.Test(ctx, src); err != nil {
		var exec *gantry.ExecError
		if errors.As(err, &exec) {
			return "", fmt.Errorf("tests failed: %w", err)
		}
		return "", err
	}
	image, err := p.Build(ctx, src)
	if err != nil {
		return "", err
	}
	host := strings.SplitN(registry, "/", 2)[0]
	return image.WithRegistryAuth(host, registryUser, registryToken).Publish(ctx, registry+":"+tag)
}
