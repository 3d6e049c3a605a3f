// hello exec: one container, one command, its stdout back.
import assert from "node:assert/strict"
import { connection, dag } from "@dagger.io/dagger"

const BUSYBOX = "127.0.0.1:5000/gantry-fixtures/busybox:latest"

await connection(
  async () => {
    const out = await dag
      .container()
      .from(BUSYBOX)
      .withExec(["echo", "hello from @dagger.io/dagger"])
      .stdout()
    assert.equal(out, "hello from @dagger.io/dagger\n")
    console.log("hello: ok")
  },
  { LogOutput: process.stderr },
)
