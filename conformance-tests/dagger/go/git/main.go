// Git as Dagger scripts use it: a local repository (made here, `file://`) read at a
// branch, an annotated tag and a commit, and a tree mounted into a container.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"

	"dagger.io/dagger"
)

const busybox = "127.0.0.1:5000/gantry-fixtures/busybox:latest"

func makeRepository(root string) string {
	git := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(),
			"GIT_AUTHOR_NAME=Dagger SDK test", "GIT_AUTHOR_EMAIL=sdk@example.invalid",
			"GIT_COMMITTER_NAME=Dagger SDK test", "GIT_COMMITTER_EMAIL=sdk@example.invalid",
			"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			log.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	write := func(text string) {
		if err := os.WriteFile(filepath.Join(root, "README.md"), []byte(text), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	git("init", "-q", "-b", "main")
	write("version one\n")
	git("add", "-A")
	git("commit", "-q", "-m", "first")
	git("tag", "-a", "v1.0.0", "-m", "release 1.0.0")
	write("version two\n")
	git("commit", "-q", "-am", "second")
	return "file://" + root
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func main() {
	root, err := os.MkdirTemp("", "dagger-go-git-")
	check(err)
	defer os.RemoveAll(root)
	url := makeRepository(root)

	ctx := context.Background()
	client, err := dagger.Connect(ctx, dagger.WithLogOutput(os.Stderr))
	check(err)
	defer client.Close()

	repo := client.Git(url)
	branches, err := repo.Branches(ctx)
	check(err)
	tags, err := repo.Tags(ctx)
	check(err)
	if !slices.Equal(branches, []string{"main"}) || !slices.Equal(tags, []string{"v1.0.0"}) {
		log.Fatalf("branches %v, tags %v", branches, tags)
	}
	mainTree := repo.Branch("main").Tree(dagger.GitRefTreeOpts{DiscardGitDir: true})
	readme, err := mainTree.File("README.md").Contents(ctx)
	check(err)
	entries, err := mainTree.Entries(ctx)
	check(err)
	if readme != "version two\n" || !slices.Equal(entries, []string{"README.md"}) {
		log.Fatalf("main: %q %v", readme, entries)
	}
	tag := repo.Tag("v1.0.0")
	ref, err := tag.Ref(ctx)
	check(err)
	commit, err := tag.Commit(ctx)
	check(err)
	if ref != "refs/tags/v1.0.0" || !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(commit) {
		log.Fatalf("tag: %q %q", ref, commit)
	}
	old, err := repo.Commit(commit).Tree().File("README.md").Contents(ctx)
	check(err)
	if old != "version one\n" {
		log.Fatalf("commit: %q", old)
	}
	head, err := repo.Head().Commit(ctx)
	check(err)
	mainCommit, err := repo.Branch("main").Commit(ctx)
	check(err)
	if head != mainCommit {
		log.Fatalf("head %s, main %s", head, mainCommit)
	}
	out, err := client.Container().From(busybox).
		WithDirectory("/src", mainTree).
		WithExec([]string{"cat", "/src/README.md"}).
		Stdout(ctx)
	check(err)
	if out != "version two\n" {
		log.Fatalf("container: %q", out)
	}
	fmt.Println("git: ok")
}
