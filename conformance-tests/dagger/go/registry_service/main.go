// A registry that runs as a service, as Dagger scripts use one: an image published to
// it and pulled back from it, both named by the service's hostname (RegistryService).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"dagger.io/dagger"
)

const busybox = "127.0.0.1:5000/gantry-fixtures/busybox:latest"

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
	client, err := dagger.Connect(ctx, dagger.WithLogOutput(os.Stderr))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	random := make([]byte, 6)
	if _, err := rand.Read(random); err != nil {
		log.Fatal(err)
	}
	marker := "go-" + hex.EncodeToString(random)

	registry := client.Container().From(busybox)
	for _, file := range files {
		source, err := filepath.EvalSymlinks(file[1])
		if err != nil {
			log.Fatal(err)
		}
		registry = registry.WithFile(file[0], client.Host().File(source))
	}
	// Started, so that its storage (the container's own) outlives the push.
	service, err := registry.WithNewFile("/etc/registry.yml", config).
		WithExposedPort(5000).
		AsService(dagger.ContainerAsServiceOpts{Args: []string{"/usr/bin/registry", "serve", "/etc/registry.yml"}}).
		Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	hostname, err := service.Hostname(ctx)
	if err != nil {
		log.Fatal(err)
	}
	address := hostname + ":5000/conformance/app:" + marker
	published, err := client.Container().From(busybox).
		WithNewFile("/marker", marker).
		Publish(ctx, address, dagger.ContainerPublishOpts{RegistryService: service})
	if err != nil || !strings.HasPrefix(published, address+"@sha256:") {
		log.Fatalf("published %q: %v", published, err)
	}
	pulled, err := client.Container().From(address, dagger.ContainerFromOpts{RegistryService: service}).
		File("/marker").Contents(ctx)
	if err != nil || pulled != marker {
		log.Fatalf("pulled %q (want %q): %v", pulled, marker, err)
	}
	if _, err := service.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("registry_service: ok")
}
