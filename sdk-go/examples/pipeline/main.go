// Command pipeline is the seed pipeline in Go: test, build and publish a Go
// web service.
//
//	go run ./examples/pipeline test --src=../examples/seed-app
//	go run ./examples/pipeline publish --src=. --registry=127.0.0.1:5000/app --tag=v1 \
//		--registry-user=USER --registry-token=env:REGISTRY_TOKEN
//
// Without a command it runs `test` on the repository's examples/seed-app. It
// runs the same way from a terminal, in CI, or under
// `gantry run -- go run ./examples/pipeline ...`. Secrets are named by source
// (env:NAME or file:PATH); their values go to the engine as secrets and never
// appear in output.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/gantry-dev/gantry/sdk-go"
)

// Local stand-ins for golang:1.22-alpine and distroless/static:nonroot.
var (
	goImage      = envOr("SEED_GO_IMAGE", "127.0.0.1:5000/gantry-fixtures/golang:latest")
	runtimeImage = envOr("SEED_RUNTIME_IMAGE", "127.0.0.1:5000/gantry-fixtures/static:nonroot")
)

const (
	goModCache   = "/root/go/pkg/mod"
	goBuildCache = "/root/.cache/go-build"
)

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

// goBase is the Go toolchain with the source at /src and the shared Go caches.
func goBase(client *gantry.Client, src *gantry.Directory) *gantry.Container {
	return client.Container().
		From(goImage).
		WithDirectory("/src", src).
		WithWorkdir("/src").
		WithMountedCache(goModCache, client.CacheVolume("go-mod")).
		WithMountedCache(goBuildCache, client.CacheVolume("go-build")).
		WithEnvVariable("GOMODCACHE", goModCache).
		WithEnvVariable("GOCACHE", goBuildCache)
}

// Test runs `go test ./...` and returns its output.
func Test(ctx context.Context, client *gantry.Client, src *gantry.Directory) (string, error) {
	return goBase(client, src).
		WithExec([]string{"go", "test", "-count=1", "./..."}).
		Stdout(ctx)
}

// Build is a minimal runtime image holding the static server binary at /server.
func Build(client *gantry.Client, src *gantry.Directory) *gantry.Container {
	binary := goBase(client, src).
		WithEnvVariable("CGO_ENABLED", "0").
		WithEnvVariable("GOOS", "linux").
		WithExec([]string{"go", "build", "-ldflags=-s -w", "-o", "/out/server", "./cmd/server"}).
		File("/out/server")
	return client.Container().
		From(runtimeImage).
		WithFile("/server", binary).
		WithEntrypoint([]string{"/server"})
}

// Publish tests, builds and publishes registry:tag; it returns the reference
// with its digest.
func Publish(ctx context.Context, client *gantry.Client, src *gantry.Directory,
	registry, tag, registryUser string, registryToken *gantry.Secret,
) (string, error) {
	if _, err := Test(ctx, client, src); err != nil {
		var execErr *gantry.ExecError
		if errors.As(err, &execErr) {
			return "", fmt.Errorf("tests failed: %s%s: %w", execErr.Stdout, execErr.Stderr, err)
		}
		return "", err
	}
	return Build(client, src).
		WithRegistryAuth(registry, registryUser, registryToken).
		Publish(ctx, registry+":"+tag)
}

// secretFrom makes a secret from env:NAME or file:PATH.
func secretFrom(client *gantry.Client, name, source string) (*gantry.Secret, error) {
	kind, where, _ := strings.Cut(source, ":")
	var value string
	switch kind {
	case "env":
		v, ok := os.LookupEnv(where)
		if !ok {
			return nil, fmt.Errorf("environment variable %s is not set", where)
		}
		value = v
	case "file":
		data, err := os.ReadFile(where)
		if err != nil {
			return nil, err
		}
		value = strings.TrimRight(string(data), "\n")
	default:
		return nil, fmt.Errorf("secret source %q: use env:NAME or file:PATH", source)
	}
	return client.SetSecret(name, value), nil
}

func run(ctx context.Context, args []string) error {
	command := "test"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		command, args = args[0], args[1:]
	}
	flags := flag.NewFlagSet(command, flag.ContinueOnError)
	srcPath := flags.String("src", "../examples/seed-app", "the Go service's source directory")
	registry := flags.String("registry", "", "the repository to publish to, e.g. 127.0.0.1:5000/app")
	tag := flags.String("tag", "", "the tag to publish")
	user := flags.String("registry-user", "", "the registry user")
	token := flags.String("registry-token", "", "the registry token: env:NAME or file:PATH")
	if err := flags.Parse(args); err != nil {
		return err
	}

	client, err := gantry.Connect(ctx)
	if err != nil {
		return err
	}
	defer client.Close()
	src := client.Host().Directory(*srcPath)

	switch command {
	case "test":
		out, err := Test(ctx, client, src)
		if err != nil {
			return err
		}
		fmt.Print(out)
	case "publish":
		if *registry == "" || *tag == "" || *user == "" || *token == "" {
			return errors.New("publish needs --registry, --tag, --registry-user and --registry-token")
		}
		secret, err := secretFrom(client, "registry-token", *token)
		if err != nil {
			return err
		}
		ref, err := Publish(ctx, client, src, *registry, *tag, *user, secret)
		if err != nil {
			return err
		}
		fmt.Println(ref)
	default:
		return fmt.Errorf("unknown command %q: use test or publish", command)
	}
	return nil
}

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
}
