/** The SDK against a real engine: leaves, errors, host paths, secrets. */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { connect, ExecError, QueryError, ReturnType, type Client, type Container } from "@gantry/sdk";

import { BUSYBOX, engine } from "./support.js";

function busybox(client: Client): Container {
  return client.container().from(BUSYBOX);
}

test("stdout and chaining", async () => {
  await connect(async (client) => {
    const ctr = busybox(client).withEnvVariable("GREETING", "hi").withWorkdir("/tmp");
    const out = await ctr.withExec(["sh", "-c", 'echo "$GREETING from $(pwd)"']).stdout();
    assert.equal(out, "hi from /tmp\n");
    assert.ok(await client.version());
    const names = await Promise.all((await ctr.envVariables()).map((v) => v.name()));
    assert.ok(names.includes("GREETING"), names.join(","));
  });
});

test("ExecError has the exit code, output and command", async () => {
  const cmd = ["sh", "-c", "echo to-out; echo to-err >&2; exit 3"];
  await assert.rejects(
    connect((client) => busybox(client).withExec(cmd).sync()),
    (error: unknown) => {
      assert.ok(error instanceof ExecError);
      assert.ok(error instanceof QueryError);
      assert.equal(error.exitCode, 3);
      assert.equal(error.stdout, "to-out\n");
      assert.equal(error.stderr, "to-err\n");
      assert.deepEqual(error.cmd, cmd);
      assert.match(error.message, /to-err/);
      return true;
    },
  );
});

test("an expected failure is not an error", async () => {
  const code = await connect((client) =>
    busybox(client).withExec(["sh", "-c", "exit 5"], { expect: ReturnType.FAILURE }).exitCode(),
  );
  assert.equal(code, 5);
});

test("other errors are QueryErrors with a code", async () => {
  await assert.rejects(
    connect((client) => client.loadContainerFromID("Container:" + "0".repeat(64)).stdout()),
    (error: unknown) => {
      assert.ok(error instanceof QueryError);
      assert.ok(!(error instanceof ExecError));
      assert.ok(error.code, "the engine sets extensions.code");
      return true;
    },
  );
});

test("object arguments are passed by ID, fetched once", async () => {
  await connect(async (client) => {
    const dir = client.directory().withNewFile("a.txt", "alpha\n");
    const ctr = busybox(client).withDirectory("/data", dir);
    assert.equal(await ctr.withExec(["cat", "/data/a.txt"]).stdout(), "alpha\n");
    assert.match(await dir.id(), /^Directory:/);
    assert.equal(await dir.id(), await dir.id());
  });
});

test("relative host paths resolve against the working directory", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gantry-ts-workdir-"));
  mkdirSync(join(dir, "data"));
  writeFileSync(join(dir, "data", "a.txt"), "alpha\n");
  const [contents, entries] = await connect(
    async (client) =>
      [
        await client.host().file("data/a.txt").contents(),
        await client.host().directory("data").entries(),
      ] as const,
    { workdir: dir },
  );
  assert.equal(contents, "alpha\n");
  assert.deepEqual(entries, ["a.txt"]);
});

test("secret values never appear in output", async () => {
  const value = "gantry-sdk-secret-" + randomBytes(8).toString("hex");
  await connect(async (client) => {
    const secret = client.setSecret("api-token", value);
    const ctr = busybox(client).withSecretVariable("TOKEN", secret);
    const out = ctr.withExec(["sh", "-c", "echo out=$TOKEN; echo err=$TOKEN >&2"]);
    const stdout = await out.stdout();
    const stderr = await out.stderr();
    assert.ok(stdout.startsWith("out=") && stderr.startsWith("err="));
    let failure: unknown;
    try {
      await ctr.withExec(["sh", "-c", "echo $TOKEN; echo $TOKEN >&2; exit 1"]).sync();
    } catch (error) {
      failure = error;
    }
    assert.ok(failure instanceof ExecError);
    for (const text of [stdout, stderr, await secret.id(), failure.message, failure.stdout, failure.stderr]) {
      assert.ok(!text.includes(value), text);
    }
  });
  assert.ok(!readFileSync(engine.log, "utf8").includes(value));
});
