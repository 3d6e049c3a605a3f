package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/conformance-tests/go/internal/conf"
)

func main() {
	ctx := context.Background()
	client := conf.Connect(ctx)
	defer client.Close()

	base := client.Container().From(conf.Busybox).WithEnvVariable("MARKER", conf.Marker)
	outputs := make([]string, 4)
	errs := make([]error, 4)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range outputs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cmd := fmt.Sprintf("sleep 2; echo branch %d: done", i+1)
			outputs[i], errs[i] = base.WithExec([]string{"sh", "-c", cmd}).Stdout(ctx)
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	for i, out := range outputs {
		conf.Check(errs[i])
		fmt.Println(strings.TrimSpace(out))
	}
	fmt.Fprintf(os.Stderr, "elapsed: %.2f s\n", elapsed.Seconds())
	fmt.Println("4 x sleep 2 finished in under 8 s:", elapsed < 8*time.Second)
}
