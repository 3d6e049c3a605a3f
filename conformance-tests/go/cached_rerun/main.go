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
		WithExec([]string{"echo", "step " + conf.Marker}).Stdout(ctx)
	conf.Check(err)
	fmt.Printf("run %s: %s\n", conf.Run, strings.TrimSpace(out))
}
