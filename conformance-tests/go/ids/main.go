package main

import (
	"context"
	"fmt"

	"github.com/gantry-dev/gantry/conformance-tests/go/internal/conf"
	"github.com/gantry-dev/gantry/sdk-go"
)

func main() {
	ctx := context.Background()
	client := conf.Connect(ctx)
	defer client.Close()

	ctr := client.Container().From(conf.Busybox).WithNewFile("/marker.txt", conf.Marker)
	ctrID, err := ctr.ID(ctx)
	conf.Check(err)
	if ctrID != "" {
		fmt.Println("container id: non-empty string")
	} else {
		fmt.Println("container id: empty")
	}
	loaded := client.LoadContainerFromID(gantry.ContainerID(ctrID))
	out, err := loaded.WithExec([]string{"cat", "/marker.txt"}).Stdout(ctx)
	conf.Check(err)
	fmt.Println("loaded container:", out)
	dirID, err := client.Directory().WithNewFile("m.txt", conf.Marker).ID(ctx)
	conf.Check(err)

	second := conf.Connect(ctx)
	defer second.Close()
	loadedDir := second.LoadDirectoryFromID(gantry.DirectoryID(dirID))
	contents, err := loadedDir.File("m.txt").Contents(ctx)
	conf.Check(err)
	fmt.Println("loaded directory in a second connection:", contents)
	out, err = second.Container().From(conf.Busybox).
		WithDirectory("/d", loadedDir).
		WithExec([]string{"cat", "/d/m.txt"}).
		Stdout(ctx)
	conf.Check(err)
	fmt.Println("loaded directory as an argument:", out)
}
