/**
 * `npm pack`, installed into an empty folder, runs the README example with `node`: once with
 * the engine auto-started (`GANTRY_BIN`), once under `gantry run`. The example is also
 * type-checked as TypeScript against the installed package.
 */

import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { engine, GOAPP, REGISTRY, REPO, SDK, socketAnswers, stopEngineOn } from "./support.js";

const project = join(mkdtempSync(join(tmpdir(), "gantry-ts-pack-")), "app");
// Persistent so that a second `make typescript-test` finds the Go caches warm.
const state = join(REPO, "target", "typescript-test", "state");
const sock = join(project, ".gantry", "engine.sock");
const repo = `${REGISTRY}/gantry-sdk-typescript/readme`;

function readmeExample(): string {
  const text = readFileSync(join(SDK, "README.md"), "utf8");
  const match = /## Example\n[\s\S]*?```ts\n([\s\S]*?)```/.exec(text);
  assert.ok(match?.[1], "README.md has a ts block under '## Example'");
  return match[1];
}

function check(result: SpawnSyncReturns<string>, what: string): string {
  assert.equal(result.status, 0, `${what} failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

function scriptEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, REGISTRY: repo, REGISTRY_TOKEN: "unused" };
  for (const name of ["GANTRY_SESSION_PORT", "GANTRY_SESSION_TOKEN", "GANTRY_BIN"]) delete env[name];
  return { ...env, ...extra };
}

before(() => {
  cpSync(GOAPP, project, { recursive: true });
  writeFileSync(join(project, "package.json"), '{ "name": "app", "private": true, "type": "module" }\n');
  const packed = check(
    spawnSync("npm", ["pack", "--silent", "--pack-destination", join(project, "..")], {
      cwd: SDK,
      encoding: "utf8",
    }),
    "npm pack",
  );
  const tarball = join(project, "..", packed.trim().split("\n").pop() ?? "");
  check(
    spawnSync("npm", ["install", "--no-audit", "--no-fund", "--offline", tarball], {
      cwd: project,
      encoding: "utf8",
    }),
    "npm install",
  );
  writeFileSync(join(project, "ci.mjs"), readmeExample());
  mkdirSync(state, { recursive: true });
});

after(() => stopEngineOn(sock));

test("the README example type-checks against the installed package", () => {
  writeFileSync(join(project, "ci.mts"), readmeExample());
  writeFileSync(
    join(project, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        noUncheckedIndexedAccess: true,
        noEmit: true,
        typeRoots: [join(SDK, "node_modules", "@types")],
        types: ["node"],
      },
      files: ["ci.mts"],
    }),
  );
  check(
    spawnSync(join(SDK, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.json"], {
      cwd: project,
      encoding: "utf8",
    }),
    "tsc --noEmit of the README example",
  );
});

// The timeouts below only stop a hung script; they are not a speed check. The README
// example builds and tests a Go program in containers from a cold cache, which took over
// five minutes on a loaded two-core CI machine.
const SCRIPT_TIMEOUT_MS = 900_000;

test("node runs the README example, starting the engine itself", async () => {
  const env = scriptEnv({ GANTRY_BIN: engine.binary, GANTRY_SOCKET: sock, GANTRY_STATE_DIR: state });
  const out = check(
    spawnSync(process.execPath, ["ci.mjs"], { cwd: project, env, encoding: "utf8", timeout: SCRIPT_TIMEOUT_MS }),
    "node ci.mjs",
  );
  assert.match(out, /ok {2}\texample\.com\/seedapp\/greet/);
  assert.match(out, new RegExp(`published ${repo}:latest@sha256:[0-9a-f]{64}`));
  assert.ok(await socketAnswers(sock), "the engine keeps running after the script");
  stopEngineOn(sock);
});

test("node runs the README example under gantry run", async () => {
  for (let i = 0; i < 200 && (await socketAnswers(sock)); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const env = scriptEnv({ GANTRY_SOCKET: join(project, "unused.sock") });
  const out = check(
    spawnSync(engine.binary, ["run", "--state-dir", state, "--", process.execPath, "ci.mjs"], {
      cwd: project,
      env,
      encoding: "utf8",
      timeout: SCRIPT_TIMEOUT_MS,
    }),
    "gantry run -- node ci.mjs",
  );
  assert.match(out, new RegExp(`published ${repo}:latest@sha256:[0-9a-f]{64}`));
});
