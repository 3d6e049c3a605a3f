package main

import (
	"context"
	"fmt"
	"os"

	"github.com/gantry-dev/gantry/conformance-tests/go/internal/conf"
)

func main() {
	ctx := context.Background()
	client := conf.Connect(ctx)
	defer client.Close()

	token := client.SetSecret("conformance-token", os.Getenv("CONFORMANCE_SECRET"))
	out, err := client.Container().From(conf.Busybox).
		WithSecretVariable("TOKEN", token).
		WithExec([]string{"sh", "-c", `echo "token=$TOKEN"; echo "length=${#TOKEN}"`}).
		Stdout(ctx)
	conf.Check(err)
	fmt.Print(out)
}
