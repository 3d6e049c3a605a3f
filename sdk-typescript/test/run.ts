/**
 * Test entry point (`npm test`): starts a private engine, then `node --test` over the test files.
 *
 * Tests never use a developer's engine: `gantry serve` runs on a temporary socket and state
 * directory (a second one, pinned to the Docker runtime, serves the services tests),
 * `GANTRY_SOCKET` points at it, the `gantry run` session variables are cleared, and what the
 * engines cached is pruned at the end. The binary is `GANTRY_BIN`, else
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
const env: NodeJS.ProcessEnv = { ...process.env };
for (const name of ["GANTRY_SESSION_PORT", "GANTRY_SESSION_TOKEN", "GANTRY_BIN"]) delete env[name];

/** `gantry serve` on a socket and state directory of its own, with `extra` in its environment. */
function serve(extra: NodeJS.ProcessEnv) {
  const base = mkdtempSync(join(tmpdir(), "gantry-sdk-ts-"));
  const socket = join(base, "engine.sock");
  const state = join(base, "state");
  const log = join(base, "engine.log");
  const logFd = openSync(log, "a");
  const child = spawn(binary, ["serve", "--socket", socket, "--state-dir", state], {
    stdio: ["ignore", logFd, logFd],
    env: { ...env, ...extra },
  });
  const stop = async () => {
    child.kill("SIGTERM");
    await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once("exit", resolve)));
    spawnSync(binary, ["prune", "--state-dir", state], {
      stdio: "ignore",
      timeout: 120_000,
      env: { ...env, ...extra },
    });
    rmSync(base, { recursive: true, force: true });
  };
  return { child, socket, state, log, stop };
}

// The engine of every test, on the default runtime (`auto`: native where it can run), and one
// pinned to the Docker runtime for the services tests (services run on both runtimes; these
// tests have not been unpinned yet).
const engine = serve({});
const dockerEngine = serve({ GANTRY_RUNTIME: "docker" });
let code = 1;
try {
  await waitFor(() => socketAnswers(engine.socket), 60_000, "gantry serve did not answer", engine.log);
  await waitFor(
    () => socketAnswers(dockerEngine.socket),
    60_000,
    "gantry serve --runtime docker did not answer",
    dockerEngine.log,
  );
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
      GANTRY_SOCKET: engine.socket,
      GANTRY_TEST_DOCKER_SOCKET: dockerEngine.socket,
      GANTRY_TEST_BIN: binary,
      GANTRY_TEST_ENGINE_LOG: engine.log,
      GANTRY_TEST_ENGINE_STATE: engine.state,
      GANTRY_TEST_ENGINE_PID: String(engine.child.pid),
    },
  });
  code = await new Promise<number>((resolve) => tests.once("exit", (status) => resolve(status ?? 1)));
} finally {
  await Promise.all([engine.stop(), dockerEngine.stop()]);
}
process.exitCode = code;
