package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry/conformance-tests/go/internal/conf"
	"github.com/gantry-dev/gantry/sdk-go"
)

var httpd = []string{"httpd", "-f", "-p", "8080", "-h", "/www"}

// Mounting a filesystem needs root's capabilities (InsecureRootCapabilities).
const mount = "mkdir -p /m && mount -t tmpfs tmpfs /m && echo mounted || echo refused"

func main() {
	ctx := context.Background()
	client := conf.Connect(ctx)
	defer client.Close()

	web := client.Container().From(conf.Busybox).
		WithNewFile("/www/index.html", "hello from the service\n").
		WithExposedPort(8080).
		AsService(gantry.ContainerAsServiceOpts{Args: httpd})
	clientCtr := client.Container().From(conf.Busybox).WithEnvVariable("MARKER", conf.Marker)
	page, err := clientCtr.WithServiceBinding("www", web).
		WithExec([]string{"wget", "-qO-", "http://www:8080/"}).Stdout(ctx)
	conf.Check(err)
	fmt.Println("page:", strings.TrimSpace(page))
	ports, err := web.Ports(ctx)
	conf.Check(err)
	for _, port := range ports {
		number, err := port.Port(ctx)
		conf.Check(err)
		protocol, err := port.Protocol(ctx)
		conf.Check(err)
		fmt.Printf("port: %d/%s\n", number, protocol)
	}
	hostname, err := web.Hostname(ctx)
	conf.Check(err)
	endpoint, err := web.Endpoint(ctx, gantry.ServiceEndpointOpts{Scheme: "http"})
	conf.Check(err)
	fmt.Println("endpoint is http://HOSTNAME:8080:", endpoint == "http://"+hostname+":8080")

	broken := client.Container().From(conf.Busybox).WithExposedPort(8080).
		AsService(gantry.ContainerAsServiceOpts{Args: []string{"sh", "-c", "echo broken service; exit 3"}})
	_, err = clientCtr.WithServiceBinding("db", broken).WithExec([]string{"true"}).Sync(ctx)
	var execErr *gantry.ExecError
	switch {
	case err == nil:
		fmt.Println("no error")
	case errors.As(err, &execErr):
		fmt.Println("caught ExecError")
		fmt.Println("exit code:", execErr.ExitCode)
		fmt.Println("stdout:", strings.TrimSpace(execErr.Stdout))
	default:
		conf.Check(err)
	}

	mountCmd := []string{"sh", "-c", mount}
	privileged, err := clientCtr.WithExec(mountCmd, gantry.ContainerWithExecOpts{InsecureRootCapabilities: true}).Stdout(ctx)
	conf.Check(err)
	fmt.Println("privileged exec:", strings.TrimSpace(privileged))
	plain, err := clientCtr.WithExec(mountCmd).Stdout(ctx)
	conf.Check(err)
	fmt.Println("plain exec:", strings.TrimSpace(plain))
	capable := client.Container().From(conf.Busybox).WithExposedPort(8080).
		AsService(gantry.ContainerAsServiceOpts{
			Args:                     []string{"sh", "-c", "mkdir -p /www; (" + mount + ") > /www/index.html; exec " + strings.Join(httpd, " ")},
			InsecureRootCapabilities: true,
		})
	answer, err := clientCtr.WithServiceBinding("capable", capable).
		WithExec([]string{"wget", "-qO-", "http://capable:8080/"}).Stdout(ctx)
	conf.Check(err)
	fmt.Println("privileged service:", strings.TrimSpace(answer))
}
