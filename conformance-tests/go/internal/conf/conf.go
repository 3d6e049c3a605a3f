// Package conf is shared by the Go scenarios: fixture images, the runner's
// variables, a connection helper and a file reader.
package conf

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/gantry-dev/gantry/sdk-go"
)

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

var (
	fixtures = env("GANTRY_TEST_FIXTURES", "127.0.0.1:5000/gantry-fixtures")
	// Busybox, Golang and Static are the local stand-in images.
	Busybox = fixtures + "/busybox:latest"
	Golang  = fixtures + "/golang:latest"
	Static  = fixtures + "/static:nonroot"
	// AuthRegistry needs AuthUser/AuthPassword to push.
	AuthRegistry = env("GANTRY_TEST_AUTH_REGISTRY", "127.0.0.1:5001")
	AuthUser     = env("GANTRY_TEST_AUTH_REGISTRY_USER", "gantry")
	AuthPassword = env("GANTRY_TEST_AUTH_REGISTRY_PASSWORD", "gantry-test-password")

	// Set by run.py: unique per SDK and run, the run number (two-run scenarios),
	// a folder for exports.
	Marker = os.Getenv("CONFORMANCE_MARKER")
	Run    = env("CONFORMANCE_RUN", "1")
	Out    = os.Getenv("CONFORMANCE_OUT")
)

// Check exits with the error's message when err is not nil.
func Check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// Connect connects to the engine (GANTRY_SOCKET) or exits.
func Connect(ctx context.Context) *gantry.Client {
	client, err := gantry.Connect(ctx)
	Check(err)
	return client
}

// Contents reads a file's contents without surrounding whitespace, or exits.
func Contents(ctx context.Context, file *gantry.File) string {
	text, err := file.Contents(ctx)
	Check(err)
	return strings.TrimSpace(text)
}
