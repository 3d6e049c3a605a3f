package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/gantry-dev/gantry/conformance-tests/go/internal/conf"
	"github.com/gantry-dev/gantry/sdk-go"
)

func main() {
	ctx := context.Background()
	client := conf.Connect(ctx)
	defer client.Close()

	password := client.SetSecret("registry-password", conf.AuthPassword)
	image := client.Container().From(conf.Busybox).WithNewFile("/marker.txt", conf.Marker)
	address := conf.AuthRegistry + "/gantry-conformance/publish:" + conf.Marker
	_, err := image.Publish(ctx, address)
	var queryErr *gantry.QueryError
	switch {
	case err == nil:
		fmt.Println("without credentials: published?!")
	case errors.As(err, &queryErr):
		fmt.Println("without credentials:", queryErr.Code)
	default:
		conf.Check(err)
	}
	ref, err := image.WithRegistryAuth(conf.AuthRegistry, conf.AuthUser, password).Publish(ctx, address)
	conf.Check(err)
	fmt.Println("published:", ref)
	pulled, err := client.Container().
		WithRegistryAuth(conf.AuthRegistry, conf.AuthUser, password).
		From(ref).
		WithExec([]string{"cat", "/marker.txt"}).
		Stdout(ctx)
	conf.Check(err)
	fmt.Println("pulled back:", pulled)
}
