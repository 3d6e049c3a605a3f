// More of the core API as Dagger scripts use it: env/workdir/user/entrypoint, lists of
// objects, IDs handed back to the engine, files exported to the host, parallel branches
// and publishing with registry auth.
import assert from "node:assert/strict"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { connection, dag } from "@dagger.io/dagger"

const BUSYBOX = "127.0.0.1:5000/gantry-fixtures/busybox:latest"
const AUTH_REGISTRY = process.env.GANTRY_TEST_AUTH_REGISTRY ?? "127.0.0.1:5001"
const AUTH_USER = process.env.GANTRY_TEST_AUTH_REGISTRY_USER ?? "gantry"

await connection(
  async () => {
    const ctr = dag
      .container()
      .from(BUSYBOX)
      .withEnvVariable("GREETING", "hi")
      .withWorkdir("/work")
      .withUser("1000:1000")
      .withEntrypoint(["sh", "-c"])
      .withDefaultArgs(['echo "$GREETING from $(pwd) as $(id -u)"'])
      .withLabel("org.example.scenario", "more-api")
    assert.equal(await ctr.withExec([], { useEntrypoint: true }).stdout(), "hi from /work as 1000\n")
    assert.equal(await ctr.workdir(), "/work")
    assert.equal(await ctr.user(), "1000:1000")
    assert.deepEqual(await ctr.entrypoint(), ["sh", "-c"])
    assert.equal(await ctr.envVariable("GREETING"), "hi")
    assert.equal(await ctr.label("org.example.scenario"), "more-api")
    const vars = {}
    for (const v of await ctr.envVariables()) {
      vars[await v.name()] = await v.value()
    }
    assert.equal(vars.GREETING, "hi")

    // An ID handed back to the engine: sync, id, load*FromID.
    const built = await dag
      .container()
      .from(BUSYBOX)
      .withNewFile("/data/msg.txt", "from a file\n")
      .withExec(["sh", "-c", "cp /data/msg.txt /data/copy.txt"])
      .sync()
    const again = dag.loadContainerFromID(await built.id())
    assert.equal(await again.file("/data/copy.txt").contents(), "from a file\n")
    assert.deepEqual([...(await again.directory("/data").entries())].sort(), ["copy.txt", "msg.txt"])
    const f = await again.file("/data/msg.txt").sync()
    assert.equal(await dag.loadFileFromID(await f.id()).size(), 12)

    // Exports to the host.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dagger-ts-"))
    try {
      const out = await again.file("/data/msg.txt").export(`${tmp}/out/msg.txt`)
      assert.equal(fs.readFileSync(out, "utf8"), "from a file\n")
      await again.directory("/data").export(`${tmp}/dir`)
      assert.deepEqual(fs.readdirSync(`${tmp}/dir`).sort(), ["copy.txt", "msg.txt"])
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true })
    }

    // Parallel branches.
    const results = await Promise.all(
      [0, 1, 2].map((i) => dag.container().from(BUSYBOX).withExec(["echo", `branch ${i}`]).stdout()),
    )
    assert.deepEqual(results, ["branch 0\n", "branch 1\n", "branch 2\n"])

    // Publish with registry auth (the password comes from the environment).
    const password = dag.setSecret("registry-password", process.env.GANTRY_TEST_AUTH_REGISTRY_PASSWORD)
    const ref = await dag
      .container()
      .from(BUSYBOX)
      .withNewFile("/hello.txt", "published\n")
      .withRegistryAuth(AUTH_REGISTRY, AUTH_USER, password)
      .publish(`${AUTH_REGISTRY}/gantry-dagger-sdk/typescript-auth:latest`)
    assert.match(ref, /@sha256:/)
    console.log("more_api: ok")
  },
  { LogOutput: process.stderr },
)
