// hello exec: one container, one command, its stdout back.
package main

import (
	"context"
	"fmt"
	"log"
	"os"

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

	out, err := client.Container().
		From(busybox).
		WithExec([]string{"echo", "hello from dagger.io/dagger"}).
		Stdout(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if out != "hello from dagger.io/dagger\n" {
		log.Fatalf("unexpected stdout %q", out)
	}
	fmt.Println("hello: ok")
}
