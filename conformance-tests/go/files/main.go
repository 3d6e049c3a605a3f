package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/gantry-dev/gantry/conformance-tests/go/internal/conf"
	"github.com/gantry-dev/gantry/sdk-go"
)

const hostdir = "../fixtures/hostdir"

// tree maps the relative path of every file under root to its contents.
func tree(root, skipSuffix string) map[string]string {
	files := map[string]string{}
	conf.Check(filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (skipSuffix != "" && strings.HasSuffix(path, skipSuffix)) {
			return err
		}
		data, err := os.ReadFile(path)
		rel, _ := filepath.Rel(root, path)
		files[rel] = string(data)
		return err
	}))
	return files
}

func sorted(list []string, err error) string {
	conf.Check(err)
	sort.Strings(list)
	return strings.Join(list, " ")
}

func main() {
	ctx := context.Background()
	client := conf.Connect(ctx)
	defer client.Close()

	src := client.Host().Directory(hostdir, gantry.HostDirectoryOpts{Exclude: []string{"**/*.log"}})
	fmt.Println("exclude **/*.log:", sorted(src.Glob(ctx, "**")))
	txt := client.Host().Directory(hostdir, gantry.HostDirectoryOpts{Include: []string{"**/*.txt"}})
	fmt.Println("include **/*.txt:", sorted(txt.Glob(ctx, "**")))

	ctr := client.Container().From(conf.Busybox).
		WithEnvVariable("MARKER", conf.Marker).
		WithDirectory("/src", src).
		WithExec([]string{"sh", "-c",
			"mkdir -p /out && cat /src/a.txt /src/sub/c.txt > /out/combined.txt" +
				" && ls -R /src > /out/listing.txt"})
	combined, err := ctr.File("/out/combined.txt").Contents(ctx)
	conf.Check(err)
	fmt.Println("combined.txt:", strings.Join(strings.Fields(combined), " "))

	_, err = ctr.Directory("/out").Export(ctx, conf.Out+"/out")
	conf.Check(err)
	entries, err := os.ReadDir(conf.Out + "/out")
	conf.Check(err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	fmt.Println("exported /out:", sorted(names, nil))
	_, err = ctr.File("/out/combined.txt").Export(ctx, conf.Out+"/combined.txt")
	conf.Check(err)
	exported, err := os.ReadFile(conf.Out + "/combined.txt")
	conf.Check(err)
	a, err := os.ReadFile(hostdir + "/a.txt")
	conf.Check(err)
	c, err := os.ReadFile(hostdir + "/sub/c.txt")
	conf.Check(err)
	fmt.Println("exported combined.txt equals the host files:", bytes.Equal(exported, append(a, c...)))

	_, err = src.Export(ctx, conf.Out+"/src")
	conf.Check(err)
	same := reflect.DeepEqual(tree(conf.Out+"/src", ""), tree(hostdir, ".log"))
	fmt.Println("exported source equals the host directory without *.log:", same)
}
