/**
 * Test entry point (`npm test`): starts a private engine, then `node --test` over the test files.
 *
 * Tests never use a developer's engine: `gantry serve` runs on a temporary socket and state
 * directory, `GANTRY_SOCKET` points at it, the `gantry run` session variables are cleared,
 * and what the engine cached is pruned at the end. The binary is `GANTRY_BIN`, else
 * `target/debug/gantry` (`make typescript-test` builds it first).
 */

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { REPO, socketAnswers, waitFor } from "./support.js";

const binary = process.env["GANTRY_BIN"] || join(REPO, "target", "debug", "gantry");
if (!existsSync(binary)) {
  console.error(`no gantry binary at ${binary}: run \`cargo build -p gantry\` first`);
  process.exit(1);
}
const base = mkdtempSync(join(tmpdir(), "gantry-sdk-ts-"));
const socket = join(base, "engine.sock");
const state = join(base, "state");
const log = join(base, "engine.log");
const env: NodeJS.ProcessEnv = { ...process.env };
for (const name of ["GANTRY_SESSION_PORT", "GANTRY_SESSION_TOKEN", "GANTRY_BIN"]) delete env[name];

const logFd = openSync(log, "a");
const engine = spawn(binary, ["serve", "--socket", socket, "--state-dir", state], {
  stdio: ["ignore", logFd, logFd],
  env,
});
let code = 1;
try {
  await waitFor(() => socketAnswers(socket), 60_000, "gantry serve did not answer", log);
  const here = new URL(".", import.meta.url).pathname;
  const files = readdirSync(here)
    .filter((name) => name.endsWith(".test.js"))
    .sort()
    .map((name) => join(here, name));
  const only = process.argv.slice(2);
  const tests = spawn(process.execPath, ["--test", ...(only.length > 0 ? only : files)], {
    stdio: "inherit",
    env: {
      ...env,
      GANTRY_SOCKET: socket,
      GANTRY_TEST_BIN: binary,
      GANTRY_TEST_ENGINE_LOG: log,
      GANTRY_TEST_ENGINE_STATE: state,
      GANTRY_TEST_ENGINE_PID: String(engine.pid),
    },
  });
  code = await new Promise<number>((resolve) => tests.once("exit", (status) => resolve(status ?? 1)));
} finally {
  engine.kill("SIGTERM");
  await new Promise((resolve) => (engine.exitCode !== null ? resolve(null) : engine.once("exit", resolve)));
  spawnSync(binary, ["prune", "--state-dir", state], { stdio: "ignore", timeout: 120_000 });
  rmSync(base, { recursive: true, force: true });
}
process.exitCode = code;
