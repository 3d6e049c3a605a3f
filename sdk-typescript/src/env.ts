/**
 * Environment variables the SDK reads: the same names as the engine's own.
 *
 * Mirrors `server/cli/src/env.rs` (and `sdk-python/src/gantry/_env.py`); keep them in step.
 *
 * @module
 */

import { join } from "node:path";

/** Set by `gantry run` for the command it runs: loopback port of the session. */
export const SESSION_PORT = "GANTRY_SESSION_PORT";
/** Set by `gantry run`: the token sent as the HTTP basic-auth username. */
export const SESSION_TOKEN = "GANTRY_SESSION_TOKEN";
/** Path of the engine's Unix socket. */
export const SOCKET = "GANTRY_SOCKET";
/** The `gantry` binary to start when no engine answers (else `gantry` on PATH). */
export const BIN = "GANTRY_BIN";

/** `$XDG_RUNTIME_DIR/gantry/engine.sock`, else `/tmp/gantry-$UID/engine.sock`. */
export function defaultSocket(): string {
  const runtimeDir = process.env["XDG_RUNTIME_DIR"];
  if (runtimeDir) return join(runtimeDir, "gantry", "engine.sock");
  const uid = process.getuid?.() ?? 0;
  return `/tmp/gantry-${uid}/engine.sock`;
}

/** The socket to use: `GANTRY_SOCKET` if set and not empty, else the default. */
export function socketPath(): string {
  return process.env[SOCKET] || defaultSocket();
}
