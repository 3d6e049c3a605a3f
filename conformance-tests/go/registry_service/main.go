// A registry that runs as a service: an image published to it and pulled back from it,
// both named by the service's hostname (RegistryService).
package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/gantry-dev/gantry/conformance-tests/go/internal/conf"
	"github.com/gantry-dev/gantry/sdk-go"
)

// Debian's build of the distribution registry (`make setup` installs it) and the C
// library it loads, in the busybox image: target, then source on the host.
var files = [][2]string{
	{"/usr/bin/registry", "/usr/bin/docker-registry"},
	{"/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"},
	{"/lib64/ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2"},
}

const config = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n" +
	"http:\n  addr: :5000\n"

func main() {
	ctx := context.Background()
	client := conf.Connect(ctx)
	defer client.Close()

	registry := client.Container().From(conf.Busybox)
	for _, file := range files {
		source, err := filepath.EvalSymlinks(file[1])
		conf.Check(err)
		registry = registry.WithFile(file[0], client.Host().File(source))
	}
	// Started, so that its storage (the container's own) outlives the push.
	service, err := registry.WithNewFile("/etc/registry.yml", config).
		WithExposedPort(5000).
		AsService(gantry.ContainerAsServiceOpts{Args: []string{"/usr/bin/registry", "serve", "/etc/registry.yml"}}).
		Start(ctx)
	conf.Check(err)
	hostname, err := service.Hostname(ctx)
	conf.Check(err)
	address := hostname + ":5000/conformance/app:" + conf.Marker
	published, err := client.Container().From(conf.Busybox).
		WithNewFile("/marker", conf.Marker).
		Publish(ctx, address, gantry.ContainerPublishOpts{RegistryService: service})
	conf.Check(err)
	fmt.Println("published as HOSTNAME:5000/conformance/app:MARKER@sha256:…:",
		strings.HasPrefix(published, address+"@sha256:"))
	pulled := conf.Contents(ctx, client.Container().
		From(address, gantry.ContainerFromOpts{RegistryService: service}).File("/marker"))
	fmt.Println("pulled back what was published:", pulled == conf.Marker)
	_, err = service.Stop(ctx)
	conf.Check(err)
}
