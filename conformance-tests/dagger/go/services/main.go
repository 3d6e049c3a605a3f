// Services as Dagger scripts use them: an HTTP server bound by alias, its ports,
// hostname and endpoint, a tunnel to the host, a service that exits early, and a command
// and a service with root's capabilities.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"

	"dagger.io/dagger"
)

const busybox = "127.0.0.1:5000/gantry-fixtures/busybox:latest"

// Mounting a filesystem needs root's capabilities (InsecureRootCapabilities).
const mount = "mkdir -p /m && mount -t tmpfs tmpfs /m && echo mounted || echo refused"

func main() {
	ctx := context.Background()
	client, err := dagger.Connect(ctx, dagger.WithLogOutput(os.Stderr))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	web := client.Container().From(busybox).
		WithNewFile("/www/index.html", "hello from the service\n").
		WithExposedPort(8080).
		AsService(dagger.ContainerAsServiceOpts{Args: []string{"httpd", "-f", "-p", "8080", "-h", "/www"}})
	page, err := client.Container().From(busybox).
		WithServiceBinding("www", web).
		WithExec([]string{"wget", "-qO-", "http://www:8080/"}).
		Stdout(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if page != "hello from the service\n" {
		log.Fatalf("page %q", page)
	}
	ports, err := web.Ports(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if len(ports) != 1 {
		log.Fatalf("%d ports", len(ports))
	}
	number, err := ports[0].Port(ctx)
	if err != nil || number != 8080 {
		log.Fatalf("port %d: %v", number, err)
	}
	hostname, err := web.Hostname(ctx)
	if err != nil {
		log.Fatal(err)
	}
	endpoint, err := web.Endpoint(ctx, dagger.ServiceEndpointOpts{Scheme: "http"})
	if err != nil || endpoint != "http://"+hostname+":8080" {
		log.Fatalf("endpoint %q: %v", endpoint, err)
	}

	tunnel, err := client.Host().Tunnel(web).Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	url, err := tunnel.Endpoint(ctx, dagger.ServiceEndpointOpts{Scheme: "http"})
	if err != nil {
		log.Fatal(err)
	}
	response, err := http.Get(url)
	if err != nil {
		log.Fatal(err)
	}
	body, err := io.ReadAll(response.Body)
	response.Body.Close()
	if err != nil || string(body) != "hello from the service\n" {
		log.Fatalf("body %q: %v", body, err)
	}
	if _, err := tunnel.Stop(ctx); err != nil {
		log.Fatal(err)
	}

	broken := client.Container().From(busybox).WithExposedPort(8080).
		AsService(dagger.ContainerAsServiceOpts{Args: []string{"sh", "-c", "echo broken service; exit 3"}})
	_, err = client.Container().From(busybox).WithServiceBinding("db", broken).
		WithExec([]string{"true"}).Sync(ctx)
	var execErr *dagger.ExecError
	if !errors.As(err, &execErr) {
		log.Fatalf("expected *dagger.ExecError, got %v", err)
	}
	if execErr.ExitCode != 3 || strings.TrimSpace(execErr.Stdout) != "broken service" {
		log.Fatalf("exit code %d stdout %q", execErr.ExitCode, execErr.Stdout)
	}

	ctr := client.Container().From(busybox)
	mountCmd := []string{"sh", "-c", mount}
	privileged, err := ctr.WithExec(mountCmd, dagger.ContainerWithExecOpts{InsecureRootCapabilities: true}).Stdout(ctx)
	if err != nil || privileged != "mounted\n" {
		log.Fatalf("privileged exec %q: %v", privileged, err)
	}
	plain, err := ctr.WithExec(mountCmd).Stdout(ctx)
	if err != nil || plain != "refused\n" {
		log.Fatalf("plain exec %q: %v", plain, err)
	}
	capable := ctr.WithExposedPort(8080).AsService(dagger.ContainerAsServiceOpts{
		Args:                     []string{"sh", "-c", "mkdir -p /www; (" + mount + ") > /www/index.html; exec " + "httpd -f -p 8080 -h /www"},
		InsecureRootCapabilities: true,
	})
	answer, err := ctr.WithServiceBinding("capable", capable).
		WithExec([]string{"wget", "-qO-", "http://capable:8080/"}).Stdout(ctx)
	if err != nil || answer != "mounted\n" {
		log.Fatalf("privileged service %q: %v", answer, err)
	}
	fmt.Println("services: ok")
}
