/**
 * Services (examples/services.ts) against a real engine on the Docker runtime: services run there
 * only, so these tests use the engine `run.ts` pins to it (`GANTRY_TEST_DOCKER_SOCKET`), whatever
 * the machine's default runtime. Each test file runs in a process of its own.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";

import { connect, ExecError, NetworkProtocol } from "@gantry/sdk";

import * as services from "../examples/services.js";
import { BUSYBOX } from "./support.js";

const dockerSocket = process.env["GANTRY_TEST_DOCKER_SOCKET"];
if (!dockerSocket) throw new Error("GANTRY_TEST_DOCKER_SOCKET is not set: run the tests with `npm test`");
process.env["GANTRY_SOCKET"] = dockerSocket;

test("a bound service answers its client", async () => {
  const page = `page ${randomBytes(8).toString("hex")}\n`;
  await connect(async (client) => {
    assert.equal(await services.fetchPage(client, page), page);
    const web = services.webServer(client, page);
    const ports = [];
    for (const port of await web.ports()) {
      ports.push([await port.port(), await port.protocol()]);
    }
    assert.deepEqual(ports, [[8080, NetworkProtocol.TCP]]);
    const hostname = await web.hostname();
    assert.equal(await web.endpoint({ scheme: "http" }), `http://${hostname}:8080`);
  });
});

test("a service that exits fails its client with the service's output", async () => {
  await assert.rejects(
    connect(async (client) => {
      const broken = client
        .container()
        .from(BUSYBOX)
        .withExposedPort(8080)
        .asService({ args: ["sh", "-c", "echo no config; exit 4"] });
      await client
        .container()
        .from(BUSYBOX)
        .withEnvVariable("RUN", randomBytes(8).toString("hex"))
        .withServiceBinding("db", broken)
        .withExec(["true"])
        .sync();
    }),
    (error: unknown) => {
      assert.ok(error instanceof ExecError);
      assert.equal(error.exitCode, 4);
      assert.equal(error.stdout, "no config\n");
      assert.match(error.message, /aliased as db/);
      return true;
    },
  );
});
