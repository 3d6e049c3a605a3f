/** Shared test helpers: paths, registries and the private engine `run.ts` started. */

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

/** build/test/ → sdk-typescript/ → repository root. */
export const SDK = fileURLToPath(new URL("../../", import.meta.url));
export const REPO = join(SDK, "..");
export const GOAPP = join(REPO, "sdk-python", "tests", "fixtures", "goapp");
export const REGISTRY = process.env["GANTRY_TEST_REGISTRY"] ?? "127.0.0.1:5000";
export const AUTH_REGISTRY = process.env["GANTRY_TEST_AUTH_REGISTRY"] ?? "127.0.0.1:5001";
export const AUTH_USER = process.env["GANTRY_TEST_AUTH_REGISTRY_USER"] ?? "gantry";
export const AUTH_PASSWORD =
  process.env["GANTRY_TEST_AUTH_REGISTRY_PASSWORD"] ?? "gantry-test-password";
export const FIXTURES = process.env["GANTRY_TEST_FIXTURES"] ?? `${REGISTRY}/gantry-fixtures`;
export const BUSYBOX = `${FIXTURES}/busybox:latest`;

/** The private engine's details, from the environment `run.ts` set. */
export const engine = {
  binary: process.env["GANTRY_TEST_BIN"] ?? join(REPO, "target", "debug", "gantry"),
  socket: process.env["GANTRY_SOCKET"] ?? "",
  log: process.env["GANTRY_TEST_ENGINE_LOG"] ?? "",
  state: process.env["GANTRY_TEST_ENGINE_STATE"] ?? "",
  pid: process.env["GANTRY_TEST_ENGINE_PID"] ?? "",
};

export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ path });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export function tail(path: string, lines = 30): string {
  try {
    return readFileSync(path, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export async function waitFor(
  check: () => Promise<boolean>,
  timeout: number,
  what: string,
  log: string,
): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeout} ms:\n${tail(log)}`);
    await sleep(50);
  }
}

/** Stops the `gantry serve --socket sock` a test's script auto-started. */
export function stopEngineOn(sock: string): void {
  const found = spawnSync("pgrep", ["-f", `serve --socket ${sock}$`], { encoding: "utf8" });
  for (const pid of found.stdout.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), "SIGTERM");
    } catch {
      // Already gone.
    }
  }
}

/** Removes what an engine with this state directory cached (images, volumes). */
export function prune(state: string): void {
  spawnSync(engine.binary, ["prune", "--state-dir", state], { stdio: "ignore", timeout: 120_000 });
}
