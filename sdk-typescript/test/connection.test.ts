/** Connection rules: session variables, socket, auto-start, clear errors. */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, test } from "node:test";

import { connect, ConnectError, VERSION } from "@gantry/sdk";

import { BUSYBOX, engine, SDK, stopEngineOn } from "./support.js";

let saved: NodeJS.ProcessEnv;
beforeEach(() => {
  saved = { ...process.env };
});
afterEach(() => {
  for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
  Object.assign(process.env, saved);
});

function temp(): string {
  return mkdtempSync(join(tmpdir(), "gantry-ts-conn-"));
}

const version = (): Promise<string> => connect((client) => client.version());

test("the Unix socket from GANTRY_SOCKET", async () => {
  assert.ok(await version());
});

test("GANTRY_SESSION_PORT needs a token", async () => {
  process.env["GANTRY_SESSION_PORT"] = "41234";
  await assert.rejects(version(), (error: unknown) => {
    assert.ok(error instanceof ConnectError);
    assert.match(error.message, /GANTRY_SESSION_TOKEN is not/);
    return true;
  });
});

test("a missing binary says how to install it", async () => {
  const dir = temp();
  process.env["GANTRY_SOCKET"] = join(dir, "run", "engine.sock");
  process.env["PATH"] = dir;
  await assert.rejects(version(), (error: unknown) => {
    assert.ok(error instanceof ConnectError);
    assert.match(error.message, /no `gantry` binary was found/);
    assert.match(error.message, /cargo build --release -p gantry/);
    assert.match(error.message, /GANTRY_BIN/);
    return true;
  });
});

test("GANTRY_BIN must be an executable", async () => {
  const dir = temp();
  process.env["GANTRY_SOCKET"] = join(dir, "run", "engine.sock");
  process.env["GANTRY_BIN"] = join(dir, "nope");
  await assert.rejects(version(), /GANTRY_BIN=.* is not an executable/);
});

test("no auto-start when disabled", async () => {
  const sock = join(temp(), "engine.sock");
  await assert.rejects(
    connect((client) => client.version(), { socket: sock, startEngine: false }),
    /no gantry engine answers/,
  );
});

test("an engine that fails to start points at its log", async () => {
  const dir = temp();
  const fake = join(dir, "gantry");
  writeFileSync(fake, "#!/bin/sh\necho 'cannot start: docker is gone' >&2\nexit 7\n");
  chmodSync(fake, 0o755);
  process.env["GANTRY_BIN"] = fake;
  const sock = join(dir, "run", "engine.sock");
  await assert.rejects(connect((client) => client.version(), { socket: sock }), (error: unknown) => {
    assert.ok(error instanceof ConnectError);
    assert.equal(error.logPath, join(dir, "run", "engine.log"));
    assert.match(error.message, /exited with status 7/);
    assert.match(error.message, /cannot start: docker is gone/);
    return true;
  });
});

test("gantry run: the SDK uses the session, and a wrong token is a 401", () => {
  const dir = temp();
  writeFileSync(join(dir, "hello.txt"), "from the run directory\n");
  const script = join(dir, "in-session.mjs");
  const sdk = new URL("dist/index.js", `file://${SDK}`).href;
  writeFileSync(
    script,
    `import { connect, TransportError } from ${JSON.stringify(sdk)};
if (!process.env.GANTRY_SESSION_PORT) throw new Error("no session");
const out = await connect((client) =>
  client.container().from(${JSON.stringify(BUSYBOX)})
    .withFile("/hello.txt", client.host().file("hello.txt"))
    .withExec(["cat", "/hello.txt"]).stdout());
process.stdout.write(out);
process.env.GANTRY_SESSION_TOKEN = "wrong-token";
try { await connect((client) => client.version()); }
catch (error) { if (error instanceof TransportError) console.log("wrong token:", error.status); else throw error; }
`,
  );
  const state = join(dir, "state");
  // A socket nobody serves: the script must not fall back to it.
  const result = spawnSync(engine.binary, ["run", "--state-dir", state, "--", process.execPath, script], {
    cwd: dir,
    env: { ...process.env, GANTRY_SOCKET: join(dir, "unused.sock") },
    encoding: "utf8",
    timeout: 180_000,
  });
  spawnSync(engine.binary, ["prune", "--state-dir", state], { stdio: "ignore", timeout: 120_000 });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout, "from the run directory\nwrong token: 401\n");
});

test("a script that starts an engine says so once; one that reuses it says nothing", () => {
  const dir = temp();
  const sock = join(dir, "run", "engine.sock");
  const script = join(dir, "version.mjs");
  const sdk = new URL("dist/index.js", `file://${SDK}`).href;
  writeFileSync(
    script,
    `import { connect } from ${JSON.stringify(sdk)};
process.stdout.write(await connect((client) => client.version()));
`,
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    GANTRY_SOCKET: sock,
    GANTRY_BIN: engine.binary,
    GANTRY_STATE_DIR: join(dir, "state"),
  };
  delete env["GANTRY_SESSION_PORT"];
  delete env["GANTRY_IDLE_TIMEOUT"];
  const run = () => spawnSync(process.execPath, [script], { env, encoding: "utf8", timeout: 120_000 });
  try {
    const first = run();
    assert.equal(first.status, 0, first.stderr);
    const log = join(dir, "run", "engine.log");
    const started = first.stderr.split("\n").filter((line) => line.includes("started engine"));
    assert.equal(started.length, 1, first.stderr);
    assert.match(
      started[0] ?? "",
      new RegExp(`^gantry: started engine \\(pid \\d+\\) on ${escape(sock)}; log: ${escape(log)}$`),
    );
    const second = run();
    assert.equal(second.status, 0, second.stderr);
    assert.ok(!second.stderr.includes("started engine"), second.stderr);
    assert.match(readFileSync(log, "utf8"), /idle_timeout=30m/);
  } finally {
    stopEngineOn(sock);
  }
});

test("a version mismatch warns once; a match says nothing", () => {
  // The real engine's version against the SDK's: GANTRY_TEST_SDK_VERSION makes the SDK
  // claim another one (a test-only override).
  const dir = temp();
  const script = join(dir, "two-connections.mjs");
  const sdk = new URL("dist/index.js", `file://${SDK}`).href;
  writeFileSync(
    script,
    `import { connect } from ${JSON.stringify(sdk)};
for (let i = 0; i < 2; i++) await connect((client) => client.version());
`,
  );
  const run = (extra: NodeJS.ProcessEnv) => {
    const result = spawnSync(process.execPath, [script], {
      env: { ...process.env, ...extra },
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(result.status, 0, result.stderr);
    return result.stderr;
  };
  assert.equal(run({}), "", "a matching engine says nothing");
  const stderr = run({ GANTRY_TEST_SDK_VERSION: "0.0.2-test" });
  const warnings = stderr.split("\n").filter((line) => line.includes("warning"));
  assert.deepEqual(
    warnings,
    [
      `gantry: warning: this SDK is version 0.0.2-test but the engine is version ${VERSION}; ` +
        `upgrade the SDK to ${VERSION}, or use a 0.0.2-test engine: stop this one ` +
        "(`gantry engine stop`) and set GANTRY_BIN to a gantry 0.0.2-test binary",
    ],
    stderr,
  );
  // The engine logged the odd client once, though it connected twice.
  const log = readFileSync(engine.log, "utf8");
  assert.equal(log.split("client=typescript/0.0.2-test").length - 1, 1, log);
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
