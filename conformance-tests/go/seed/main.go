// The seed pipeline (shared/reference/seed-pipeline.md): test, build, publish.
package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry/conformance-tests/go/internal/conf"
	"github.com/gantry-dev/gantry/sdk-go"
)

func goBase(client *gantry.Client, src *gantry.Directory) *gantry.Container {
	return client.Container().From(conf.Golang).
		WithDirectory("/src", src).
		WithWorkdir("/src").
		WithMountedCache("/root/go/pkg/mod", client.CacheVolume("go-mod")).
		WithMountedCache("/root/.cache/go-build", client.CacheVolume("go-build")).
		WithEnvVariable("GOMODCACHE", "/root/go/pkg/mod").
		WithEnvVariable("GOCACHE", "/root/.cache/go-build").
		// A new value each run, so test and build really run (on warm Go caches).
		WithEnvVariable("CONFORMANCE_MARKER", conf.Marker)
}

func test(ctx context.Context, client *gantry.Client, src *gantry.Directory) (string, error) {
	return goBase(client, src).WithExec([]string{"go", "test", "-count=1", "./..."}).Stdout(ctx)
}

func build(client *gantry.Client, src *gantry.Directory) *gantry.Container {
	binary := goBase(client, src).
		WithEnvVariable("CGO_ENABLED", "0").
		WithEnvVariable("GOOS", "linux").
		WithExec([]string{"go", "build", "-ldflags=-s -w", "-o", "/out/server", "./cmd/server"}).
		File("/out/server")
	return client.Container().From(conf.Static).
		WithFile("/server", binary).
		WithEntrypoint([]string{"/server"})
}

func publish(ctx context.Context, client *gantry.Client, src *gantry.Directory, repo, tag string, token *gantry.Secret) (string, error) {
	if _, err := test(ctx, client, src); err != nil {
		var execErr *gantry.ExecError
		if errors.As(err, &execErr) {
			return "", fmt.Errorf("tests failed: %s%s", execErr.Stdout, execErr.Stderr)
		}
		return "", err
	}
	return build(client, src).
		WithRegistryAuth(conf.AuthRegistry, conf.AuthUser, token).
		Publish(ctx, repo+":"+tag)
}

func main() {
	ctx := context.Background()
	client := conf.Connect(ctx)
	defer client.Close()

	src := client.Host().Directory("../../examples/seed-app")
	out, err := test(ctx, client, src)
	conf.Check(err)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		fields := strings.Fields(line)
		fmt.Println("test:", strings.Join(fields[:min(2, len(fields))], " "))
	}
	token := client.SetSecret("registry-token", conf.AuthPassword)
	ref, err := publish(ctx, client, src, conf.AuthRegistry+"/gantry-conformance/seed-app", conf.Marker, token)
	conf.Check(err)
	fmt.Println("published:", ref)
	greeting, err := client.Container().
		WithRegistryAuth(conf.AuthRegistry, conf.AuthUser, token).
		From(ref).
		WithExec([]string{}, gantry.ContainerWithExecOpts{UseEntrypoint: true}).
		Stdout(ctx)
	conf.Check(err)
	fmt.Println("run:", strings.TrimSpace(greeting))
}
