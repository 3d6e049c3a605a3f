package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry/conformance-tests/go/internal/conf"
)

func main() {
	ctx := context.Background()
	client := conf.Connect(ctx)
	defer client.Close()

	out, err := client.Container().From(conf.Busybox).
		WithMountedCache("/cache", client.CacheVolume("conformance-cache")).
		WithEnvVariable("MARKER", conf.Marker).
		WithEnvVariable("RUN", conf.Run).
		WithExec([]string{"sh", "-c", `echo "run $RUN" >> "/cache/$MARKER"; cat "/cache/$MARKER"`}).
		Stdout(ctx)
	conf.Check(err)
	fmt.Printf("run %s sees: %s\n", conf.Run, strings.Join(strings.Split(strings.TrimSpace(out), "\n"), ", "))
}
