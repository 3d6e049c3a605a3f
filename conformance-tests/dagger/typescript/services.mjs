// Services as Dagger scripts use them: an HTTP server bound by alias, its ports,
// hostname and endpoint, a tunnel to the host, a service that exits early, and a command
// and a service with root's capabilities.
import assert from "node:assert/strict"
import { connection, dag, ExecError, NetworkProtocol } from "@dagger.io/dagger"

const BUSYBOX = "127.0.0.1:5000/gantry-fixtures/busybox:latest"
const HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]
// Mounting a filesystem needs root's capabilities (insecureRootCapabilities).
const MOUNT = "mkdir -p /m && mount -t tmpfs tmpfs /m && echo mounted || echo refused"

await connection(
  async () => {
    const web = dag
      .container()
      .from(BUSYBOX)
      .withNewFile("/www/index.html", "hello from the service\n")
      .withExposedPort(8080)
      .asService({ args: HTTPD })
    const page = await dag
      .container()
      .from(BUSYBOX)
      .withServiceBinding("www", web)
      .withExec(["wget", "-qO-", "http://www:8080/"])
      .stdout()
    assert.equal(page, "hello from the service\n")
    const ports = []
    for (const port of await web.ports()) {
      ports.push([await port.port(), await port.protocol()])
    }
    assert.deepEqual(ports, [[8080, NetworkProtocol.Tcp]])
    const hostname = await web.hostname()
    assert.equal(await web.endpoint({ scheme: "http" }), `http://${hostname}:8080`)

    const tunnel = await dag.host().tunnel(web).start()
    const endpoint = await tunnel.endpoint({ scheme: "http" })
    const body = await (await fetch(endpoint)).text()
    assert.equal(body, "hello from the service\n")
    await tunnel.stop()

    const broken = dag
      .container()
      .from(BUSYBOX)
      .withExposedPort(8080)
      .asService({ args: ["sh", "-c", "echo broken service; exit 3"] })
    let caught
    try {
      await dag.container().from(BUSYBOX).withServiceBinding("db", broken).withExec(["true"]).sync()
    } catch (e) {
      caught = e
    }
    assert.ok(caught instanceof ExecError, `expected ExecError, got ${caught}`)
    assert.equal(caught.exitCode, 3)
    assert.equal(caught.stdout.trim(), "broken service")

    const ctr = dag.container().from(BUSYBOX)
    const mount = ["sh", "-c", MOUNT]
    assert.equal(await ctr.withExec(mount, { insecureRootCapabilities: true }).stdout(), "mounted\n")
    assert.equal(await ctr.withExec(mount).stdout(), "refused\n")
    const capable = ctr.withExposedPort(8080).asService({
      args: ["sh", "-c", `mkdir -p /www; (${MOUNT}) > /www/index.html; exec ${HTTPD.join(" ")}`],
      insecureRootCapabilities: true,
    })
    const answer = await ctr
      .withServiceBinding("capable", capable)
      .withExec(["wget", "-qO-", "http://capable:8080/"])
      .stdout()
    assert.equal(answer, "mounted\n")
    console.log("services: ok")
  },
  { LogOutput: process.stderr },
)
