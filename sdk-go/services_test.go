package gantry_test

// Services against a real engine: examples/services, a service's ports,
// hostname and endpoint, and a service that exits early. Every test here uses
// the engine pinned to the Docker runtime (useDockerEngine), whatever the
// machine's default runtime: services run on both runtimes, and the Rust
// end-to-end suite covers them on each; these SDK tests are not unpinned yet.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/sdk-go"
)

func randomHex(t *testing.T) string {
	t.Helper()
	buf := make([]byte, 8)
	if _, err := rand.Read(buf); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(buf)
}

func TestServicesExample(t *testing.T) {
	useDockerEngine(t)
	page := "page " + randomHex(t)
	out, err := exec.Command("go", "run", "-C", sdkDir, "./examples/services", page).CombinedOutput()
	if err != nil {
		t.Fatalf("examples/services: %v\n%s", err, out)
	}
	if string(out) != page+"\n" {
		t.Fatalf("output %q", out)
	}
}

func TestServicePortsHostnameAndEndpoint(t *testing.T) {
	useDockerEngine(t)
	client := connect(t)
	ctx := testContext(t)
	web := client.Container().From(busybox).
		WithNewFile("/www/index.html", "hi\n").
		WithExposedPort(8080).
		AsService(gantry.ContainerAsServiceOpts{Args: []string{"httpd", "-f", "-p", "8080", "-h", "/www"}})
	ports, err := web.Ports(ctx)
	if err != nil || len(ports) != 1 {
		t.Fatalf("ports %v, %v", ports, err)
	}
	number, err := ports[0].Port(ctx)
	if err != nil || number != 8080 {
		t.Fatalf("port %d, %v", number, err)
	}
	protocol, err := ports[0].Protocol(ctx)
	if err != nil || protocol != gantry.NetworkProtocolTCP {
		t.Fatalf("protocol %q, %v", protocol, err)
	}
	hostname, err := web.Hostname(ctx)
	if err != nil {
		t.Fatal(err)
	}
	endpoint, err := web.Endpoint(ctx, gantry.ServiceEndpointOpts{Scheme: "http"})
	if err != nil || endpoint != "http://"+hostname+":8080" {
		t.Fatalf("endpoint %q, %v", endpoint, err)
	}
}

func TestAServiceThatExitsFailsItsClient(t *testing.T) {
	useDockerEngine(t)
	client := connect(t)
	ctx := testContext(t)
	broken := client.Container().From(busybox).WithExposedPort(8080).
		AsService(gantry.ContainerAsServiceOpts{Args: []string{"sh", "-c", "echo no config; exit 4"}})
	_, err := client.Container().From(busybox).
		WithEnvVariable("RUN", randomHex(t)).
		WithServiceBinding("db", broken).
		WithExec([]string{"true"}).
		Sync(ctx)
	var execErr *gantry.ExecError
	if !errors.As(err, &execErr) {
		t.Fatalf("expected *gantry.ExecError, got %v", err)
	}
	if execErr.ExitCode != 4 || execErr.Stdout != "no config\n" {
		t.Fatalf("exit code %d stdout %q", execErr.ExitCode, execErr.Stdout)
	}
	if !strings.Contains(err.Error(), "aliased as db") {
		t.Fatalf("error %q", err)
	}
}
