package gantry_test

// The seed pipeline (examples/pipeline) against the engine and registries:
// go test with the go-mod and go-build cache volumes, a publish behind a
// secret to the authenticated registry and one to the open registry, the
// published image run with docker, and a second run that hits the cache.

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	pipelineOnce sync.Once
	pipelineBin  string
	pipelineErr  error
)

// pipelineBinary builds examples/pipeline once per test binary.
func pipelineBinary(t *testing.T) string {
	t.Helper()
	pipelineOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gantry-go-pipeline-")
		if err != nil {
			pipelineErr = err
			return
		}
		pipelineBin = filepath.Join(dir, "pipeline")
		out, err := exec.Command("go", "build", "-C", sdkDir, "-o", pipelineBin, "./examples/pipeline").CombinedOutput()
		if err != nil {
			pipelineErr = fmt.Errorf("go build ./examples/pipeline: %v\n%s", err, out)
		}
	})
	if pipelineErr != nil {
		t.Fatal(pipelineErr)
	}
	return pipelineBin
}

type seedRun struct {
	testOutput, plainRef, authRef string
	started, finished             time.Time
}

func randomTag() string {
	buf := make([]byte, 6)
	_, _ = rand.Read(buf)
	return "t" + hex.EncodeToString(buf)
}

// runSeed runs `pipeline test`, then publishes to the authenticated registry
// with the token from the environment and to the open one.
func runSeed(t *testing.T, src, tag string) seedRun {
	t.Helper()
	bin := pipelineBinary(t)
	run := seedRun{started: time.Now()}
	pipeline := func(token string, args ...string) string {
		stdout, stderr, err := command(t, src, withEnv("REGISTRY_TOKEN="+token), bin, args...)
		if err != nil {
			t.Fatalf("pipeline %v: %v\nstdout: %s\nstderr: %s", args, err, stdout, stderr)
		}
		return stdout
	}
	run.testOutput = pipeline("", "test", "--src=.")
	run.authRef = strings.TrimSpace(pipeline(authPassword, "publish", "--src=.",
		"--registry="+authRegistry+"/gantry-sdk-go/seed", "--tag="+tag,
		"--registry-user="+authUser, "--registry-token=env:REGISTRY_TOKEN"))
	run.plainRef = strings.TrimSpace(pipeline("unused", "publish", "--src=.",
		"--registry="+registry+"/gantry-sdk-go/seed", "--tag="+tag,
		"--registry-user=nobody", "--registry-token=env:REGISTRY_TOKEN"))
	run.finished = time.Now()
	return run
}

func TestSeedPipeline(t *testing.T) {
	e := needEngine(t)
	src := seedApp(t)
	// A fresh marker: this run's inputs are new, so it does real container
	// work even though the engine's state (and its cache volumes) persists.
	tag := randomTag()
	marker := fmt.Sprintf("\n// run %s\n", tag)
	appendFile(t, filepath.Join(src, "cmd", "server", "main.go"), marker)

	first := runSeed(t, src, tag)
	if !strings.Contains(first.testOutput, seedTestOK) {
		t.Fatalf("go test output %q", first.testOutput)
	}

	t.Run("published image runs", func(t *testing.T) {
		ref := first.plainRef
		if !strings.HasPrefix(ref, registry+"/gantry-sdk-go/seed:"+tag+"@sha256:") {
			t.Fatalf("ref %q", ref)
		}
		out, err := exec.Command("docker", "run", "--rm", ref).Output()
		if err != nil || string(out) != "hello from seed-app (uid 65532)\n" {
			t.Fatalf("docker run: %q, %v", out, err)
		}
		inspect, err := exec.Command("docker", "image", "inspect", "-f",
			"{{.Config.User}} {{json .Config.Entrypoint}}", ref).Output()
		if err != nil || strings.TrimSpace(string(inspect)) != `65532 ["/server"]` {
			t.Fatalf("image config %q, %v", inspect, err)
		}
		_ = exec.Command("docker", "image", "rm", ref).Run()
	})

	t.Run("publish authenticates with the secret", func(t *testing.T) {
		if !strings.HasPrefix(first.authRef, authRegistry+"/gantry-sdk-go/seed:"+tag+"@sha256:") {
			t.Fatalf("ref %q", first.authRef)
		}
		digest := first.authRef[strings.LastIndex(first.authRef, "@")+1:]
		if got := manifestDigest(t, authRegistry, "gantry-sdk-go/seed", tag); got != digest {
			t.Fatalf("registry has %q, publish said %q", got, digest)
		}
	})

	t.Run("a wrong token fails without leaking it", func(t *testing.T) {
		wrong := "wrong-" + randomTag()
		stdout, stderr, err := command(t, src, withEnv("REGISTRY_TOKEN="+wrong), pipelineBinary(t), "publish",
			"--src=.", "--registry="+authRegistry+"/gantry-sdk-go/seed", "--tag="+tag+"-x",
			"--registry-user="+authUser, "--registry-token=env:REGISTRY_TOKEN")
		if err == nil {
			t.Fatalf("publish with a wrong token succeeded: %s", stdout)
		}
		if strings.Contains(stdout+stderr, wrong) {
			t.Fatalf("the token leaked: %s%s", stdout, stderr)
		}
	})

	t.Run("failing go tests stop the publish", func(t *testing.T) {
		failing := seedApp(t)
		failTest := "package main\n\nimport \"testing\"\n\nfunc TestFails(t *testing.T) { t.Fatal(\"deliberate failure\") }\n"
		if err := os.WriteFile(filepath.Join(failing, "cmd", "server", "fail_test.go"), []byte(failTest), 0o644); err != nil {
			t.Fatal(err)
		}
		_, stderr, err := command(t, failing, withEnv("REGISTRY_TOKEN=unused"), pipelineBinary(t), "publish",
			"--src=.", "--registry="+registry+"/gantry-sdk-go/seed", "--tag="+tag+"-fail",
			"--registry-user=x", "--registry-token=env:REGISTRY_TOKEN")
		if err == nil || !strings.HasPrefix(stderr, "pipeline: tests failed: ") || !strings.Contains(stderr, "deliberate failure") {
			t.Fatalf("err %v, stderr %q", err, stderr)
		}
	})

	t.Run("second run hits the cache", func(t *testing.T) {
		if created := containersCreated(t, e.pid, first.started, first.finished); len(created) == 0 {
			t.Fatal("the probe sees no containers from the first run")
		}
		second := runSeed(t, src, tag)
		if second.testOutput != first.testOutput || second.plainRef != first.plainRef {
			t.Fatalf("second run differs: %+v vs %+v", second, first)
		}
		if created := containersCreated(t, e.pid, second.started, second.finished); len(created) != 0 {
			t.Fatalf("the second run created containers: %v", created)
		}
		t.Logf("first run %s, second run %s", first.finished.Sub(first.started).Round(time.Millisecond),
			second.finished.Sub(second.started).Round(time.Millisecond))
	})

	t.Run("secrets never reach the engine log", func(t *testing.T) {
		if log, _ := os.ReadFile(e.log); strings.Contains(string(log), authPassword) {
			t.Fatal("the registry password is in the engine log")
		}
	})
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// manifestDigest asks the authenticated registry for a tag's digest.
func manifestDigest(t *testing.T, host, repo, tag string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, "http://"+host+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(authUser+":"+authPassword)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Docker-Content-Digest")
}

// nativeRunRoot holds the native runtime's per-engine run directories
// (server/native/src/run.rs): each has `created`, a line `<unix nanos> <id>`
// per container the engine created.
const nativeRunRoot = "/dev/shm/gantry-native/engines"

// containersCreated lists the containers the engine created between two
// instants: from the native runtime's counter when the engine runs natively,
// else from `docker events`, filtered here on the Actor attribute
// dev.gantry.engine-pid.
func containersCreated(t *testing.T, pid int, since, until time.Time) []string {
	t.Helper()
	if counters, _ := filepath.Glob(filepath.Join(nativeRunRoot, strconv.Itoa(pid)+"-*", "created")); len(counters) > 0 {
		var names []string
		for _, counter := range counters {
			text, err := os.ReadFile(counter)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(text)), "\n") {
				nanos, name, _ := strings.Cut(line, " ")
				at, err := strconv.ParseInt(nanos, 10, 64)
				if err == nil && !time.Unix(0, at).Before(since) && !time.Unix(0, at).After(until.Add(time.Second)) {
					names = append(names, name)
				}
			}
		}
		return names
	}
	stamp := func(at time.Time) string { return fmt.Sprintf("%.3f", float64(at.UnixNano())/1e9) }
	out, err := exec.Command("docker", "events",
		"--since", stamp(since), "--until", stamp(until.Add(time.Second)),
		"--filter", "type=container", "--filter", "event=create",
		"--format", "{{json .}}").Output()
	if err != nil {
		t.Fatalf("docker events: %v", err)
	}
	var names []string
	scanner := bufio.NewScanner(strings.NewReader(string(out)))
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		var event struct {
			Actor struct {
				Attributes map[string]string
			}
		}
		if err := json.Unmarshal(scanner.Bytes(), &event); err != nil {
			t.Fatalf("docker events: %v: %s", err, scanner.Text())
		}
		if event.Actor.Attributes["dev.gantry.engine-pid"] == strconv.Itoa(pid) {
			names = append(names, event.Actor.Attributes["name"])
		}
	}
	return names
}
