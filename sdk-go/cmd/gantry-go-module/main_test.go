package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = `package main

import (
	"context"

	"dagger.io/dagger"
	gantry "github.com/gantry-dev/gantry/sdk-go"
)

// Ci builds things.
type Ci struct{}

// Build compiles src.
func (c *Ci) Build(
	ctx context.Context,
	// The sources.
	src *dagger.Directory,
	// +optional
	// +default="linux"
	goos string,
	tags []string,
	token *gantry.Secret,
) (*dagger.Container, error) {
	return nil, nil
}

// Count has no context and no error.
func (c Ci) Count(n int) int { return n }

func (c *Ci) hidden() {}

func helper() {}
`

func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDescribeReadsSignaturesDocsAndPragmas(t *testing.T) {
	dir := write(t, map[string]string{"main.go": module})
	desc, hasMain, err := read(dir, "Ci")
	if err != nil {
		t.Fatal(err)
	}
	if hasMain || desc.Description != "Ci builds things." || len(desc.Functions) != 2 {
		t.Fatalf("unexpected description: %+v (main %v)", desc, hasMain)
	}
	build := desc.Functions[0]
	if build.Name != "Build" || build.Returns != "Container" || !build.context || !build.err {
		t.Fatalf("Build: %+v", build)
	}
	want := []struct{ name, typ string }{{"src", "Directory"}, {"goos", "String"}, {"tags", "[String]"}, {"token", "Secret"}}
	for i, arg := range build.Args {
		if arg.Name != want[i].name || arg.Type != want[i].typ {
			t.Fatalf("arg %d: %+v, want %v", i, arg, want[i])
		}
	}
	if build.Args[0].Description != "The sources." || !build.Args[1].Optional || build.Args[1].Default != "linux" {
		t.Fatalf("pragmas: %+v", build.Args[:2])
	}
	if count := desc.Functions[1]; count.Returns != "Int" || count.context || count.err {
		t.Fatalf("Count: %+v", count)
	}
	code, err := generate(desc)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`gantryDagger(ctx).LoadDirectoryFromID(gantrydagger.DirectoryID(id))`,
		`gantrySDK(ctx).LoadSecretFromID(gantrysdk.SecretID(id))`,
		`(&Ci{}).Build(ctx, a0, a1, a2, a3)`,
		`(&Ci{}).Count(a0)`,
	} {
		if !strings.Contains(string(code), line) {
			t.Errorf("generated code lacks %q", line)
		}
	}
}

func TestErrorsNameTheProblem(t *testing.T) {
	cases := map[string]string{
		"package lib\n":  "a gantry Go module is package main",
		"package main\n": "no type Ci struct",
		"package main\ntype Ci struct{}\nfunc (Ci) F(m map[string]int) {}\n": "unsupported type map[string]int",
	}
	for source, want := range cases {
		_, _, err := read(write(t, map[string]string{"main.go": source}), "Ci")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", source, err, want)
		}
	}
	dir := write(t, map[string]string{"main.go": "package main\ntype Ci struct{}\nfunc main() {}\n"})
	if err := run([]string{"generate", dir, "Ci", filepath.Join(dir, "out.go")}); err == nil || !strings.Contains(err.Error(), "already has a main function") {
		t.Errorf("generate with main: %v", err)
	}
}
