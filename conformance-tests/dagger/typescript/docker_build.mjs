// Dockerfile builds as Dagger scripts write them: `dockerBuild` with `{ name, value }`
// build arguments and a target stage, on the fixture busybox.
import assert from "node:assert/strict"
import { connection, dag } from "@dagger.io/dagger"

const BUSYBOX = "127.0.0.1:5000/gantry-fixtures/busybox:latest"
const CONTEXT = "../../fixtures/dockerbuild"

await connection(
  async () => {
    const context = dag.host().directory(CONTEXT)
    const final = context.dockerBuild({
      buildArgs: [
        { name: "BASE", value: BUSYBOX },
        { name: "GREETING", value: "hi" },
        { name: "MARKER", value: "dagger-typescript" },
      ],
      target: "final",
    })
    assert.equal(await final.file("greeting.txt").contents(), "hi from the build stage\n")
    assert.equal(await final.workdir(), "/app")
    assert.equal(await final.envVariable("STAGE"), "final")
    assert.equal(await final.withExec(["cat", "marker.txt"]).stdout(), "marker: dagger-typescript\n")
    const stage = context.dockerBuild({ buildArgs: [{ name: "BASE", value: BUSYBOX }], target: "build" })
    assert.equal(await stage.file("/out/greeting.txt").contents(), "hello from the build stage\n")
  },
  { LogOutput: process.stderr },
)
console.log("docker_build: ok")
