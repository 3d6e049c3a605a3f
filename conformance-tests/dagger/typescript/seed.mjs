// The seed pipeline: go test, go build into a minimal non-root image, publish, then
// run the published image.
import assert from "node:assert/strict"
import { connection, dag } from "@dagger.io/dagger"

const GOLANG = "127.0.0.1:5000/gantry-fixtures/golang:latest"
const RUNTIME = "127.0.0.1:5000/gantry-fixtures/static:nonroot"
const REGISTRY = process.env.GANTRY_TEST_REGISTRY ?? "127.0.0.1:5000"

function goBase(src) {
  return dag
    .container()
    .from(GOLANG)
    .withDirectory("/src", src)
    .withWorkdir("/src")
    .withMountedCache("/root/go/pkg/mod", dag.cacheVolume("go-mod"))
    .withMountedCache("/root/.cache/go-build", dag.cacheVolume("go-build"))
}

async function test(src) {
  return goBase(src).withExec(["go", "test", "./..."]).stdout()
}

function build(src) {
  const binary = goBase(src)
    .withEnvVariable("CGO_ENABLED", "0")
    .withEnvVariable("GOOS", "linux")
    .withExec(["go", "build", "-ldflags=-s -w", "-o", "/out/server", "./cmd/server"])
    .file("/out/server")
  return dag.container().from(RUNTIME).withFile("/server", binary).withEntrypoint(["/server"])
}

await connection(
  async () => {
    const src = dag.host().directory("../../../examples/seed-app")
    const out = await test(src)
    assert.match(out, /ok/)
    const ref = await build(src).publish(`${REGISTRY}/gantry-dagger-sdk/typescript-seed:latest`)
    assert.match(ref, /@sha256:/)
    const greeting = await dag.container().from(ref).withExec([], { useEntrypoint: true }).stdout()
    assert.match(greeting, /^hello from seed-app \(uid /)
    assert.ok(!greeting.includes("(uid 0)"), greeting)
    console.log(`seed: ok (${ref})`)
  },
  { LogOutput: process.stderr },
)
