// More of the core API as Dagger scripts use it: env/workdir/user/entrypoint, lists of
// objects, IDs handed back to the engine, files exported to the host, parallel branches
// and publishing with registry auth.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"dagger.io/dagger"
	"golang.org/x/sync/errgroup"
)

const busybox = "127.0.0.1:5000/gantry-fixtures/busybox:latest"

func getenv(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func expect[T comparable](what string, got, want T) {
	if got != want {
		log.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func main() {
	ctx := context.Background()
	client, err := dagger.Connect(ctx, dagger.WithLogOutput(os.Stderr))
	check(err)
	defer client.Close()

	ctr := client.Container().
		From(busybox).
		WithEnvVariable("GREETING", "hi").
		WithWorkdir("/work").
		WithUser("1000:1000").
		WithEntrypoint([]string{"sh", "-c"}).
		WithDefaultArgs([]string{`echo "$GREETING from $(pwd) as $(id -u)"`}).
		WithLabel("org.example.scenario", "more-api")
	out, err := ctr.WithExec(nil, dagger.ContainerWithExecOpts{UseEntrypoint: true}).Stdout(ctx)
	check(err)
	expect("stdout", out, "hi from /work as 1000\n")
	workdir, err := ctr.Workdir(ctx)
	check(err)
	expect("workdir", workdir, "/work")
	user, err := ctr.User(ctx)
	check(err)
	expect("user", user, "1000:1000")
	entrypoint, err := ctr.Entrypoint(ctx)
	check(err)
	expect("entrypoint", strings.Join(entrypoint, " "), "sh -c")
	greeting, err := ctr.EnvVariable(ctx, "GREETING")
	check(err)
	expect("envVariable", greeting, "hi")
	label, err := ctr.Label(ctx, "org.example.scenario")
	check(err)
	expect("label", label, "more-api")
	vars, err := ctr.EnvVariables(ctx)
	check(err)
	found := map[string]string{}
	for _, v := range vars {
		name, err := v.Name(ctx)
		check(err)
		value, err := v.Value(ctx)
		check(err)
		found[name] = value
	}
	expect("GREETING in envVariables", found["GREETING"], "hi")

	// An ID handed back to the engine: Sync, ID, Load*FromID.
	built, err := client.Container().
		From(busybox).
		WithNewFile("/data/msg.txt", "from a file\n").
		WithExec([]string{"sh", "-c", "cp /data/msg.txt /data/copy.txt"}).
		Sync(ctx)
	check(err)
	id, err := built.ID(ctx)
	check(err)
	again := client.LoadContainerFromID(dagger.ContainerID(id))
	contents, err := again.File("/data/copy.txt").Contents(ctx)
	check(err)
	expect("contents", contents, "from a file\n")
	entries, err := again.Directory("/data").Entries(ctx)
	check(err)
	slices.Sort(entries)
	expect("entries", strings.Join(entries, ","), "copy.txt,msg.txt")
	f, err := again.File("/data/msg.txt").Sync(ctx)
	check(err)
	fid, err := f.ID(ctx)
	check(err)
	size, err := client.LoadFileFromID(dagger.FileID(fid)).Size(ctx)
	check(err)
	expect("size", size, 12)

	// Exports to the host.
	tmp, err := os.MkdirTemp("", "dagger-go-")
	check(err)
	defer os.RemoveAll(tmp)
	path, err := again.File("/data/msg.txt").Export(ctx, filepath.Join(tmp, "out/msg.txt"))
	check(err)
	data, err := os.ReadFile(path)
	check(err)
	expect("exported file", string(data), "from a file\n")
	_, err = again.Directory("/data").Export(ctx, filepath.Join(tmp, "dir"))
	check(err)
	dirEntries, err := os.ReadDir(filepath.Join(tmp, "dir"))
	check(err)
	expect("exported entries", len(dirEntries), 2)

	// Parallel branches.
	results := make([]string, 3)
	var g errgroup.Group
	for i := range results {
		g.Go(func() error {
			out, err := client.Container().From(busybox).
				WithExec([]string{"echo", fmt.Sprintf("branch %d", i)}).Stdout(ctx)
			results[i] = out
			return err
		})
	}
	check(g.Wait())
	expect("branches", strings.Join(results, ""), "branch 0\nbranch 1\nbranch 2\n")

	// Publish with registry auth (the password comes from the environment).
	registry := getenv("GANTRY_TEST_AUTH_REGISTRY", "127.0.0.1:5001")
	password := client.SetSecret("registry-password", os.Getenv("GANTRY_TEST_AUTH_REGISTRY_PASSWORD"))
	ref, err := client.Container().
		From(busybox).
		WithNewFile("/hello.txt", "published\n").
		WithRegistryAuth(registry, getenv("GANTRY_TEST_AUTH_REGISTRY_USER", "gantry"), password).
		Publish(ctx, registry+"/gantry-dagger-sdk/go-auth:latest")
	check(err)
	if !strings.Contains(ref, "@sha256:") {
		log.Fatalf("unexpected reference %q", ref)
	}
	fmt.Println("more_api: ok")
}
