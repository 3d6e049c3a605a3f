// The seed pipeline as a module: `gantry call test --src=.` and
// `gantry call publish --src=. --registry=REG/app --tag=SHA --registry-user=USER --registry-token=env:REGISTRY_TOKEN`.
// Written against Dagger's official Go SDK; only the image names point at the
// local test registry.
package main

import (
	"context"
	"fmt"

	"dagger.io/dagger"
)

const (
	golangImage  = "127.0.0.1:5000/gantry-fixtures/golang:latest"
	runtimeImage = "127.0.0.1:5000/gantry-fixtures/static:nonroot"
)

// Pipeline tests, builds and publishes a Go web service.
type Pipeline struct{}

func goBase(client *dagger.Client, src *dagger.Directory) *dagger.Container {
	return client.Container().
		From(golangImage).
		WithDirectory("/src", src).
		WithWorkdir("/src").
		WithMountedCache("/root/go/pkg/mod", client.CacheVolume("go-mod")).
		WithMountedCache("/root/.cache/go-build", client.CacheVolume("go-build"))
}

// Test runs the unit tests and returns their output.
func (p *Pipeline) Test(ctx context.Context, src *dagger.Directory) (string, error) {
	client, err := dagger.Connect(ctx)
	if err != nil {
		return "", err
	}
	defer client.Close()
	return goBase(client, src).
		WithExec([]string{"go", "test", "./..."}).
		Stdout(ctx)
}

// Build compiles the server into a minimal non-root image.
func (p *Pipeline) Build(ctx context.Context, src *dagger.Directory) (*dagger.Container, error) {
	client, err := dagger.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	binary := goBase(client, src).
		WithEnvVariable("CGO_ENABLED", "0").
		WithEnvVariable("GOOS", "linux").
		WithExec([]string{"go", "build", "-ldflags=-s -w", "-o", "/out/server", "./cmd/server"}).
		File("/out/server")
	return client.Container().
		From(runtimeImage).
		WithFile("/server", binary).
		WithEntrypoint([]string{"/server"}), nil
}

// Publish tests, builds and publishes the image to registry:tag and returns
// the published reference with its digest.
func (p *Pipeline) Publish(ctx context.Context, src *dagger.Directory, registry string, tag string, registryUser string, registryToken *dagger.Secret) (string, error) {
	client, err := dagger.Connect(ctx)
	if err != nil {
		return "", err
	}
	defer client.Close()
	if _, err := p.Test(ctx, src); err != nil {
		return "", fmt.Errorf("tests failed: %w", err)
	}
	image, err := p.Build(ctx, src)
	if err != nil {
		return "", err
	}
	return image.
		WithRegistryAuth(registry, registryUser, registryToken).
		Publish(ctx, fmt.Sprintf("%s:%s", registry, tag))
}
