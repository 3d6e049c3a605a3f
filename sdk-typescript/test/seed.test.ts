/** The seed pipeline (examples/pipeline.ts) against the engine and the local registries. */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";

import { connect, QueryError } from "@gantry/sdk";

import * as pipeline from "../examples/pipeline.js";
import { AUTH_PASSWORD, AUTH_REGISTRY, AUTH_USER, engine, GOAPP, REGISTRY } from "./support.js";

const TAG = "t" + randomBytes(6).toString("hex");
const PLAIN_REPO = `${REGISTRY}/gantry-sdk-typescript/seed`;
const AUTH_REPO = `${AUTH_REGISTRY}/gantry-sdk-typescript/seed`;
const src = join(mkdtempSync(join(tmpdir(), "gantry-ts-seed-")), "goapp");
let first: { testOutput: string; plainRef: string; authRef: string };

before(async () => {
  cpSync(GOAPP, src, { recursive: true });
  // The token comes from the environment, as in CI (`--registry-token=env:NAME`).
  process.env["GANTRY_TS_REGISTRY_TOKEN"] = AUTH_PASSWORD;
  first = await connect(async (client) => {
    const dir = client.host().directory(src);
    const testOutput = await pipeline.test(client, dir);
    const token = pipeline.secretFrom(client, "registry-token", "env:GANTRY_TS_REGISTRY_TOKEN");
    const authRef = await pipeline.publish(client, dir, AUTH_REPO, TAG, AUTH_USER, token);
    const unused = client.setSecret("unused-token", "unused");
    const plainRef = await pipeline.publish(client, dir, PLAIN_REPO, TAG, "nobody", unused);
    return { testOutput, plainRef, authRef };
  });
});

test("go tests run", () => {
  assert.match(first.testOutput, /ok {2}\texample\.com\/seedapp\/greet/);
});

test("the published image runs", () => {
  const ref = first.plainRef;
  assert.ok(ref.startsWith(`${PLAIN_REPO}:${TAG}@sha256:`), ref);
  const run = spawnSync("docker", ["run", "--rm", ref], { encoding: "utf8", timeout: 120_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, "hello, world, from the gantry seed app\n");
  const inspect = spawnSync(
    "docker",
    ["image", "inspect", "-f", "{{.Config.User}} {{json .Config.Entrypoint}}", ref],
    { encoding: "utf8" },
  );
  assert.equal(inspect.stdout.trim(), '65532 ["/server"]');
  spawnSync("docker", ["image", "rm", ref], { stdio: "ignore" });
});

test("publish authenticates with the secret", async () => {
  assert.ok(first.authRef.startsWith(`${AUTH_REPO}:${TAG}@sha256:`), first.authRef);
  const [host, ...rest] = AUTH_REPO.split("/");
  const response = await fetch(`http://${host}/v2/${rest.join("/")}/manifests/${TAG}`, {
    method: "HEAD",
    headers: {
      Accept:
        "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
      Authorization: "Basic " + Buffer.from(`${AUTH_USER}:${AUTH_PASSWORD}`).toString("base64"),
    },
  });
  assert.equal(response.headers.get("docker-content-digest"), first.authRef.split("@")[1]);
});

test("a wrong token fails without leaking it", async () => {
  const wrong = "wrong-" + randomBytes(8).toString("hex");
  await assert.rejects(
    connect(async (client) => {
      const token = client.setSecret("registry-token", wrong);
      const dir = client.host().directory(src);
      return pipeline.publish(client, dir, AUTH_REPO, TAG + "-x", AUTH_USER, token);
    }),
    (error: unknown) => {
      assert.ok(error instanceof QueryError);
      assert.ok(!error.message.includes(wrong));
      assert.ok(!JSON.stringify(error.errors).includes(wrong));
      return true;
    },
  );
});

test("failing Go tests stop the publish", async () => {
  await assert.rejects(
    connect(async (client) => {
      const dir = client
        .host()
        .directory(src)
        .withNewFile(
          "greet/fail_test.go",
          'package greet\n\nimport "testing"\n\nfunc TestFails(t *testing.T) { t.Fatal("deliberate failure") }\n',
        );
      const token = client.setSecret("registry-token", "unused");
      return pipeline.publish(client, dir, PLAIN_REPO, TAG + "-fail", "x", token);
    }),
    (error: unknown) => {
      assert.ok(error instanceof pipeline.PipelineError);
      assert.ok(error.message.startsWith("tests failed: "));
      assert.match(error.message, /deliberate failure/);
      return true;
    },
  );
});

test("the secret never reaches the engine log", () => {
  assert.ok(!readFileSync(engine.log, "utf8").includes(AUTH_PASSWORD));
});
