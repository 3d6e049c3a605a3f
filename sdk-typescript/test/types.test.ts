/**
 * Object parameters are typed with the object they take (the schema's `@expectedType`): passing
 * an object of another type does not compile. `tsc -p tsconfig.test.json` checks this file, and
 * fails on an `@ts-expect-error` that no longer finds its error.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import type { CacheVolume, Client, Container, Directory, Secret } from "@gantry/sdk";

/** Compiled, never called. */
export function objectParameters(
  client: Client,
  ctr: Container,
  dir: Directory,
  secret: Secret,
  cache: CacheVolume,
): Container[] {
  return [
    ctr.withMountedCache("/cache", cache),
    ctr.withMountedSecret("/secret", secret),
    ctr.withDirectory("/src", dir),
    // @ts-expect-error a Secret is not a CacheVolume
    ctr.withMountedCache("/cache", secret),
    // @ts-expect-error a CacheVolume is not a Secret
    ctr.withMountedSecret("/secret", cache),
    // @ts-expect-error a Container is not a Directory
    ctr.withDirectory("/src", client.container()),
  ];
}

test("object parameters are typed (checked when this file compiles)", () => {
  assert.equal(typeof objectParameters, "function");
});
