// A registry that runs as a service, as Dagger scripts use one: an image published to
// it and pulled back from it, both named by the service's hostname (registryService).
import assert from "node:assert/strict"
import { randomBytes } from "node:crypto"
import { realpathSync } from "node:fs"
import { connection, dag } from "@dagger.io/dagger"

const BUSYBOX = "127.0.0.1:5000/gantry-fixtures/busybox:latest"
// Debian's build of the distribution registry (`make setup` installs it) and the C
// library it loads, in the busybox image.
const FILES = {
  "/usr/bin/registry": "/usr/bin/docker-registry",
  "/lib/x86_64-linux-gnu/libc.so.6": "/lib/x86_64-linux-gnu/libc.so.6",
  "/lib64/ld-linux-x86-64.so.2": "/lib64/ld-linux-x86-64.so.2",
}
const CONFIG =
  "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n" +
  "http:\n  addr: :5000\n"

await connection(
  async () => {
    const marker = `typescript-${randomBytes(6).toString("hex")}`
    let registry = dag.container().from(BUSYBOX)
    for (const [target, source] of Object.entries(FILES)) {
      registry = registry.withFile(target, dag.host().file(realpathSync(source)))
    }
    // Started, so that its storage (the container's own) outlives the push.
    const service = await registry
      .withNewFile("/etc/registry.yml", CONFIG)
      .withExposedPort(5000)
      .asService({ args: ["/usr/bin/registry", "serve", "/etc/registry.yml"] })
      .start()
    const address = `${await service.hostname()}:5000/conformance/app:${marker}`
    const published = await dag
      .container()
      .from(BUSYBOX)
      .withNewFile("/marker", marker)
      .publish(address, { registryService: service })
    assert.ok(published.startsWith(`${address}@sha256:`), published)
    const pulled = await dag
      .container()
      .from(address, { registryService: service })
      .file("/marker")
      .contents()
    assert.equal(pulled, marker)
    await service.stop()
    console.log("registry_service: ok")
  },
  { LogOutput: process.stderr },
)
