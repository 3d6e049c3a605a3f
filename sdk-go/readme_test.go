package gantry_test

// The README examples run as written: the Go block under "## Example" in
// sdk-go/README.md, and every Go block in the repository's README.md that
// imports this SDK, each as `go run .` in a fresh module next to three files.

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var goBlock = regexp.MustCompile("(?s)```go\n(.*?)```")

func readmeExamples(t *testing.T) map[string]string {
	t.Helper()
	examples := map[string]string{}
	sdkReadme, err := os.ReadFile(filepath.Join(sdkDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(sdkReadme), "## Example\n")
	match := goBlock.FindStringSubmatch(section)
	if !ok || match == nil {
		t.Fatal("sdk-go/README.md has a go block under '## Example'")
	}
	examples["sdk-go/README.md"] = match[1]
	rootReadme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for i, block := range goBlock.FindAllStringSubmatch(string(rootReadme), -1) {
		if strings.Contains(block[1], `"github.com/gantry-dev/gantry/sdk-go"`) {
			examples["README.md#"+string(rune('1'+i))] = block[1]
		}
	}
	return examples
}

func TestReadmeExamplesRun(t *testing.T) {
	needEngine(t)
	for name, source := range readmeExamples(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			goMod := "module example.com/ci\n\ngo 1.22\n\nrequire github.com/gantry-dev/gantry/sdk-go v0.0.0\n\n" +
				"replace github.com/gantry-dev/gantry/sdk-go => " + sdkDir + "\n"
			files := map[string]string{"go.mod": goMod, "main.go": source, "a": "a", "b": "b", "c": "c"}
			for file, text := range files {
				if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			env := withEnv("GOFLAGS=-mod=mod")
			if out, _, _ := command(t, dir, env, "gofmt", "-l", "."); out != "" {
				t.Fatalf("the example is not gofmt-formatted: %s", out)
			}
			if _, stderr, err := command(t, dir, env, "go", "vet", "."); err != nil {
				t.Fatalf("go vet: %v\n%s", err, stderr)
			}
			stdout, stderr, err := command(t, dir, env, "go", "run", ".")
			if err != nil {
				t.Fatalf("go run: %v\n%s", err, stderr)
			}
			// a, b, c, go.mod and main.go
			if stdout != "5 entries\n" {
				t.Fatalf("stdout %q", stdout)
			}
		})
	}
}
