package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry/conformance-tests/go/internal/conf"
	gantry "github.com/gantry-dev/gantry/sdk-go"
)

func main() {
	ctx := context.Background()
	client := conf.Connect(ctx)
	defer client.Close()

	old := client.Directory().WithNewFile("a.txt", "alpha\n").WithNewFile("b/c.txt", "beta\n")
	next := old.WithNewFile("a.txt", "alpha\nalphabet\n").WithoutDirectory("b").WithSymlink("a.txt", "link")
	changes := next.Changes(old)
	added, err := changes.AddedPaths(ctx)
	conf.Check(err)
	fmt.Println("added:", strings.Join(added, " "))
	modified, err := changes.ModifiedPaths(ctx)
	conf.Check(err)
	fmt.Println("modified:", strings.Join(modified, " "))
	removed, err := changes.RemovedPaths(ctx)
	conf.Check(err)
	fmt.Println("removed:", strings.Join(removed, " "))
	link, err := next.Exists(ctx, "link", gantry.DirectoryExistsOpts{
		ExpectedType:        gantry.ExistsTypeSymlinkType,
		DoNotFollowSymlinks: true,
	})
	conf.Check(err)
	fmt.Println("link is a symlink:", link)
	stat := next.Stat("link")
	kind, err := stat.FileType(ctx)
	conf.Check(err)
	size, err := stat.Size(ctx)
	conf.Check(err)
	fmt.Println("link stat:", kind, size)
	results, err := next.Search(ctx, "alpha")
	conf.Check(err)
	var found []string
	for _, result := range results {
		path, err := result.FilePath(ctx)
		conf.Check(err)
		line, err := result.LineNumber(ctx)
		conf.Check(err)
		found = append(found, fmt.Sprintf("%s:%d", path, line))
	}
	fmt.Println("search alpha:", strings.Join(found, " "))
	patch, err := changes.AsPatch().Contents(ctx)
	conf.Check(err)
	patched, err := old.WithPatch(patch).Digest(ctx)
	conf.Check(err)
	want, err := next.Digest(ctx)
	conf.Check(err)
	fmt.Println("patch reproduces the new directory:", patched == want)

	items, err := client.JSON().WithContents(`{"k": [1, 2]}`).Field([]string{"k"}).AsArray(ctx)
	conf.Check(err)
	last, err := items[len(items)-1].AsInteger(ctx)
	conf.Check(err)
	fmt.Printf("json: %d items, last %d\n", len(items), last)
	b, err := client.EnvFile().WithVariable("A", "1").WithVariable("B", "${A}-2").Get(ctx, "B")
	conf.Check(err)
	fmt.Println("env B:", b)

	ctr := client.Container().From(conf.Busybox).WithEnvVariable("MARKER", conf.Marker).
		WithExec([]string{"sh", "-c", "echo x > /made"}).WithoutFile("/made")
	made, err := ctr.Exists(ctx, "/made")
	conf.Check(err)
	fmt.Println("removed from the image:", !made)
	out, err := ctr.WithExec([]string{"sh", "-c", "echo out; sleep 0.2; echo err >&2"}).CombinedOutput(ctx)
	conf.Check(err)
	fmt.Println("combined:", strings.Join(strings.Fields(out), " "))
	platform, err := client.DefaultPlatform(ctx)
	conf.Check(err)
	fmt.Println("default platform is linux:", strings.HasPrefix(string(platform), "linux/"))
}
