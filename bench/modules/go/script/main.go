// The same work as the module's Step, as a program for `gantry run`.
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	gantry "github.com/gantry-dev/gantry/sdk-go"
)

func main() {
	ctx := context.Background()
	client, err := gantry.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	out, err := client.Container().From(os.Getenv("BENCH_IMAGE")).WithExec([]string{"echo", "cached step"}).Stdout(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(out)
}
