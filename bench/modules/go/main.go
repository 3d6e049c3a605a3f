// Benchmark module: one step, cached after the first call.
package main

import (
	"context"
	"os"

	gantry "github.com/gantry-dev/gantry/sdk-go"
)

// Bench has one step.
type Bench struct{}

// Step runs `echo cached step`.
func (b *Bench) Step(ctx context.Context) (string, error) {
	client, err := gantry.Connect(ctx)
	if err != nil {
		return "", err
	}
	return client.Container().From(os.Getenv("BENCH_IMAGE")).WithExec([]string{"echo", "cached step"}).Stdout(ctx)
}
