// A service in Go: test a client against a web server the pipeline starts.
//
//	go run ./examples/services [PAGE]
//
// The server (busybox httpd) runs as a service bound to the client container
// under the alias www; gantry starts it when the client's step runs, waits
// until its exposed port accepts connections, and stops it when no step needs
// it any more. Prints what the client read. Services run on both runtimes
// (native and Docker).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/gantry-dev/gantry/sdk-go"
)

func busybox() string {
	if image := os.Getenv("SERVICES_IMAGE"); image != "" {
		return image
	}
	return "127.0.0.1:5000/gantry-fixtures/busybox:latest"
}

// webServer is an HTTP server on port 8080 serving page at /.
func webServer(client *gantry.Client, page string) *gantry.Service {
	return client.Container().From(busybox()).
		WithNewFile("/www/index.html", page).
		WithExposedPort(8080).
		AsService(gantry.ContainerAsServiceOpts{Args: []string{"httpd", "-f", "-p", "8080", "-h", "/www"}})
}

// fetchPage is what a client container reads from the server, by its alias.
func fetchPage(ctx context.Context, client *gantry.Client, page string) (string, error) {
	return client.Container().From(busybox()).
		WithServiceBinding("www", webServer(client, page)).
		WithExec([]string{"wget", "-qO-", "http://www:8080/"}).
		Stdout(ctx)
}

func main() {
	ctx := context.Background()
	page := "hello from a service\n"
	if len(os.Args) > 1 {
		page = os.Args[1] + "\n"
	}
	client, err := gantry.Connect(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer client.Close()
	out, err := fetchPage(ctx, client, page)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Print(out)
}
