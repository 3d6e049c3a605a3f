package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/gantry-dev/gantry/conformance-tests/go/internal/conf"
	"github.com/gantry-dev/gantry/sdk-go"
)

func main() {
	ctx := context.Background()
	client := conf.Connect(ctx)
	defer client.Close()

	entries := func(dir *gantry.Directory) string {
		names, err := dir.Entries(ctx)
		conf.Check(err)
		return strings.Join(names, " ")
	}
	discard := gantry.GitRefTreeOpts{DiscardGitDir: true}

	repo := client.Git(os.Getenv("CONFORMANCE_GIT_URL"))
	branches, err := repo.Branches(ctx)
	conf.Check(err)
	fmt.Println("branches:", strings.Join(branches, " "))
	tags, err := repo.Tags(ctx)
	conf.Check(err)
	fmt.Println("tags:", strings.Join(tags, " "))
	mainTree := repo.Branch("main").Tree(discard)
	fmt.Println("main README:", conf.Contents(ctx, mainTree.File("README.md")))
	fmt.Println("main entries:", entries(mainTree))
	tag := repo.Tag("v1.0.0")
	ref, err := tag.Ref(ctx)
	conf.Check(err)
	fmt.Println("tag ref:", ref)
	fmt.Println("tag README:", conf.Contents(ctx, tag.Tree().File("README.md")))
	commit, err := tag.Commit(ctx)
	conf.Check(err)
	fmt.Println("tag commit is 40 hex:", regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(commit))
	byCommit := repo.Commit(commit).Tree(discard)
	fmt.Println("commit app:", conf.Contents(ctx, byCommit.File("src/app.txt")))
	fmt.Println("commit entries:", entries(byCommit))
	feature := repo.Branch("feature").Tree(discard)
	fmt.Println("feature entries:", entries(feature))
	head, err := repo.Head().Commit(ctx)
	conf.Check(err)
	mainCommit, err := repo.Branch("main").Commit(ctx)
	conf.Check(err)
	fmt.Println("head is main:", head == mainCommit)
	out, err := client.Container().From(conf.Busybox).
		WithEnvVariable("MARKER", conf.Marker).
		WithDirectory("/src", feature).
		WithExec([]string{"cat", "/src/feature.txt", "/src/README.md"}).
		Stdout(ctx)
	conf.Check(err)
	fmt.Println("in a container:", strings.Join(strings.Split(strings.TrimSpace(out), "\n"), " | "))
}
