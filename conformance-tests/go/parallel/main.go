package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/gantry-dev/gantry/conformance-tests/go/internal/conf"
)

// Each branch marks itself in a shared cache volume, then waits (at most 60 s)
// until all four have: only branches that run at the same time can all see
// four. This proves parallelism from inside the containers, whatever the
// machine's load.
const script = `touch /sync/$N; i=0; while [ $(ls /sync | wc -l) -lt 4 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; echo "branch $N: $(ls /sync | wc -l) of 4 running at once"`

func main() {
	ctx := context.Background()
	client := conf.Connect(ctx)
	defer client.Close()

	base := client.Container().From(conf.Busybox).
		WithEnvVariable("MARKER", conf.Marker).
		WithMountedCache("/sync", client.CacheVolume("conformance-parallel-"+conf.Marker))
	outputs := make([]string, 4)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range outputs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			outputs[i], errs[i] = base.WithEnvVariable("N", strconv.Itoa(i+1)).
				WithExec([]string{"sh", "-c", script}).Stdout(ctx)
		}(i)
	}
	wg.Wait()
	for i, out := range outputs {
		conf.Check(errs[i])
		fmt.Println(strings.TrimSpace(out))
	}
}
