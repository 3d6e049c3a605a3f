// Host directory (include/exclude), a cache volume shared by two containers, and a
// secret read from the environment (its value is never printed).
import assert from "node:assert/strict"
import { connection, dag } from "@dagger.io/dagger"

const BUSYBOX = "127.0.0.1:5000/gantry-fixtures/busybox:latest"

await connection(
  async () => {
    const nonce = `${process.pid}-${Date.now()}`
    const src = dag.host().directory("../fixtures/hostdir", { exclude: ["*.log"] })
    const entries = await src.entries()
    assert.deepEqual([...entries].sort(), ["a.txt", "sub/"])

    const cache = dag.cacheVolume("gantry-dagger-sdk-typescript")
    const base = dag.container().from(BUSYBOX).withMountedCache("/cache", cache)
    await base
      .withDirectory("/src", src)
      .withExec(["sh", "-c", `cat /src/a.txt /src/sub/b.txt > /cache/${nonce}`])
      .sync()
    const seen = await base
      .withEnvVariable("NONCE", nonce)
      .withExec(["sh", "-c", "cat /cache/$NONCE"])
      .stdout()
    assert.equal(seen, "alpha\nbeta\n")

    const secret = dag.secret("env://GANTRY_DAGGER_SECRET")
    const out = await dag
      .container()
      .from(BUSYBOX)
      .withSecretVariable("TOKEN", secret)
      .withExec(["sh", "-c", 'echo "token=$TOKEN"; test "${#TOKEN}" -gt 8'])
      .stdout()
    assert.ok(out === "token=***\n", "secret was not scrubbed from stdout")
    assert.ok(!out.includes(process.env.GANTRY_DAGGER_SECRET))
    console.log("host_cache_secret: ok")
  },
  { LogOutput: process.stderr },
)
