// Host directory (include/exclude), a cache volume shared by two containers, and a
// secret read from the environment (its value is never printed).
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"slices"
	"strings"
	"time"

	"dagger.io/dagger"
)

const busybox = "127.0.0.1:5000/gantry-fixtures/busybox:latest"

func main() {
	ctx := context.Background()
	client, err := dagger.Connect(ctx, dagger.WithLogOutput(os.Stderr))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	nonce := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	src := client.Host().Directory("../fixtures/hostdir", dagger.HostDirectoryOpts{
		Exclude: []string{"*.log"},
	})
	entries, err := src.Entries(ctx)
	if err != nil {
		log.Fatal(err)
	}
	slices.Sort(entries)
	if !slices.Equal(entries, []string{"a.txt", "sub/"}) {
		log.Fatalf("unexpected entries %q", entries)
	}

	cache := client.CacheVolume("gantry-dagger-sdk-go")
	base := client.Container().From(busybox).WithMountedCache("/cache", cache)
	_, err = base.
		WithDirectory("/src", src).
		WithExec([]string{"sh", "-c", "cat /src/a.txt /src/sub/b.txt > /cache/" + nonce}).
		Sync(ctx)
	if err != nil {
		log.Fatal(err)
	}
	seen, err := base.
		WithEnvVariable("NONCE", nonce).
		WithExec([]string{"sh", "-c", "cat /cache/$NONCE"}).
		Stdout(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if seen != "alpha\nbeta\n" {
		log.Fatalf("unexpected cache contents %q", seen)
	}

	secret := client.Secret("env://GANTRY_DAGGER_SECRET")
	out, err := client.Container().
		From(busybox).
		WithSecretVariable("TOKEN", secret).
		WithExec([]string{"sh", "-c", `echo "token=$TOKEN"; test "${#TOKEN}" -gt 8`}).
		Stdout(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if out != "token=***\n" || strings.Contains(out, os.Getenv("GANTRY_DAGGER_SECRET")) {
		log.Fatal("secret was not scrubbed from stdout")
	}
	fmt.Println("host_cache_secret: ok")
}
