// A failing exec rejects with ExecError carrying the command, exit code, stdout, stderr.
import assert from "node:assert/strict"
import { connection, dag, ExecError, ReturnType } from "@dagger.io/dagger"

const BUSYBOX = "127.0.0.1:5000/gantry-fixtures/busybox:latest"
const cmd = ["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"]

await connection(
  async () => {
    let caught
    try {
      await dag.container().from(BUSYBOX).withExec(cmd).sync()
    } catch (e) {
      caught = e
    }
    assert.ok(caught instanceof ExecError, `expected ExecError, got ${caught}`)
    assert.equal(caught.exitCode, 3)
    assert.equal(caught.stdout.trim(), "to-stdout")
    assert.equal(caught.stderr.trim(), "to-stderr")
    assert.deepEqual(caught.cmd, cmd)

    const code = await dag
      .container()
      .from(BUSYBOX)
      .withExec(cmd, { expect: ReturnType.Any })
      .exitCode()
    assert.equal(code, 3)
    console.log("exec_error: ok")
  },
  { LogOutput: process.stderr },
)
