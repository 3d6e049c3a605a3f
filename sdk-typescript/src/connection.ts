/**
 * Finding the engine: {@link connect} and the session it opens.
 *
 * The order (the same in every gantry SDK):
 *
 * 1. Inside `gantry run`: `GANTRY_SESSION_PORT` and `GANTRY_SESSION_TOKEN` name a loopback
 *    HTTP session; the token is the basic-auth username.
 * 2. Otherwise the engine's Unix socket: `GANTRY_SOCKET`, else
 *    `$XDG_RUNTIME_DIR/gantry/engine.sock`, else `/tmp/gantry-$UID/engine.sock`. Requests
 *    carry `X-Gantry-Workdir` so relative host paths resolve against the script's working
 *    directory, not the engine's.
 * 3. If nothing answers on the socket: start `gantry serve --socket PATH` (the binary from
 *    `GANTRY_BIN`, else `gantry` on PATH) detached in its own session, log to `engine.log`
 *    beside the socket, wait for it to answer and leave it running for the next script.
 *    It stops by itself after `GANTRY_IDLE_TIMEOUT` (default 30m) with no client. Starting
 *    one says so, once, on stderr: `gantry: started engine (pid N) on SOCKET; log: PATH`;
 *    reusing one says nothing.
 *
 * Every request names the SDK (`X-Gantry-Client: typescript/VERSION`) and every response the
 * engine's version (`X-Gantry-Version`). When they do not match (from 1.0 on: major and
 * minor; before 1.0: the whole version), the first response says so, once per process, on
 * stderr.
 *
 * @module
 */

import { spawn } from "node:child_process";
import { accessSync, closeSync, constants, mkdirSync, openSync, readFileSync, statSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { delimiter, dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { Client } from "./api/client.gen.js";
import { Context, type Session } from "./core.js";
import * as env from "./api/env.gen.js";
import { ConnectError, TransportError, throwForErrors } from "./errors.js";
import { describe, post, type Endpoint } from "./http.js";

const INSTALL_HINT =
  "build it with `cargo build --release -p gantry` in the gantry repository and put " +
  `target/release/gantry on PATH, or set ${env.BIN} to the binary's path`;

/** Options of {@link connect}. */
export interface ConnectOptions {
  /**
   * Unix socket to use instead of `GANTRY_SOCKET` or the default path. Given explicitly, it
   * also takes precedence over a `gantry run` session.
   */
  socket?: string;
  /**
   * Directory that relative host paths resolve against (default: `process.cwd()`). Unix
   * socket only; a `gantry run` session resolves them against its own directory.
   */
  workdir?: string;
  /** Start `gantry serve` when no engine answers (default `true`). */
  startEngine?: boolean;
  /** Milliseconds to wait for a started engine to answer (default 20000). */
  startTimeout?: number;
}

/**
 * Connects to a gantry engine and calls `fn` with the root {@link Client}; resolves to what
 * `fn` returns.
 *
 * ```ts
 * await connect(async (client) => {
 *   console.log(await client.container().from(address).withExec(["ls"]).stdout());
 * });
 * ```
 */
export async function connect<T>(
  fn: (client: Client) => Promise<T>,
  options: ConnectOptions = {},
): Promise<T> {
  const endpoint = await findEndpoint(options);
  // Every request has its own HTTP connection: nothing to close afterwards.
  return fn(new Client(new Context(new HttpSession(endpoint))));
}

/** Whether this process has compared the engine's version with its own yet. */
let versionChecked = false;

/** Warns once per process when the engine's version does not match the SDK's. */
function checkVersion(engineVersion: string | undefined): void {
  if (versionChecked || engineVersion === undefined) return;
  versionChecked = true;
  const warning = env.versionWarning(env.sdkVersion(), engineVersion);
  if (warning !== undefined) process.stderr.write(`${warning}\n`);
}

function clientHeader(): Record<string, string> {
  return { [env.CLIENT_HEADER]: `typescript/${env.sdkVersion()}` };
}

class HttpSession implements Session {
  constructor(private readonly endpoint: Endpoint) {}

  async query(document: string): Promise<Record<string, unknown>> {
    const { status, engineVersion, body } = await post(
      this.endpoint,
      "/query",
      JSON.stringify({ query: document }),
    );
    checkVersion(engineVersion);
    let response: unknown;
    try {
      response = JSON.parse(body);
    } catch {
      response = undefined;
    }
    if (status !== 200) {
      const message = firstMessage(response) ?? body.slice(0, 200);
      throw new TransportError(
        `the gantry engine at ${describe(this.endpoint)} answered HTTP ${status}: ${message}`,
        { status },
      );
    }
    if (!isRecord(response)) {
      throw new TransportError("the gantry engine's response is not a JSON object");
    }
    throwForErrors(response);
    const data = response["data"];
    if (!isRecord(data)) throw new TransportError("the gantry engine's response has no data");
    return data;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function firstMessage(response: unknown): string | undefined {
  if (!isRecord(response)) return undefined;
  const errors = response["errors"];
  if (!Array.isArray(errors)) return undefined;
  const first: unknown = errors[0];
  if (!isRecord(first) || first["message"] === undefined) return undefined;
  return String(first["message"]);
}

async function findEndpoint(options: ConnectOptions): Promise<Endpoint> {
  const port = process.env[env.SESSION_PORT];
  if (port && options.socket === undefined) {
    const token = process.env[env.SESSION_TOKEN];
    if (!token) {
      throw new ConnectError(
        `${env.SESSION_PORT} is set but ${env.SESSION_TOKEN} is not: run the script with ` +
          "`gantry run -- ...`, or unset both to use the engine's socket",
      );
    }
    if (!/^\d+$/.test(port)) {
      throw new ConnectError(`${env.SESSION_PORT}=${JSON.stringify(port)} is not a port number`);
    }
    const credentials = Buffer.from(`${token}:`).toString("base64");
    return {
      port: Number(port),
      headers: { Authorization: `Basic ${credentials}`, ...clientHeader() },
    };
  }
  const path = options.socket ?? env.socketPath();
  const endpoint: Endpoint = {
    socket: path,
    headers: { ...workdirHeader(options.workdir), ...clientHeader() },
  };
  if (await answers(path)) return endpoint;
  if (options.startEngine === false) {
    throw new ConnectError(`no gantry engine answers on ${path}: start one with \`gantry serve\``);
  }
  await startEngine(path, options.startTimeout ?? 20_000);
  return endpoint;
}

function workdirHeader(workdir: string | undefined): Record<string, string> {
  const dir = workdir !== undefined ? resolve(workdir) : process.cwd();
  // Percent-encoded: any directory name (`café` too) reaches the engine, which refuses
  // relative host paths from a client that sends none.
  return { [env.WORKDIR_HEADER]: env.encodeWorkdir(dir) };
}

/** Whether an engine accepts connections on the socket. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolveAnswer) => {
    const socket = netConnect({ path });
    socket.once("connect", () => {
      socket.destroy();
      resolveAnswer(true);
    });
    socket.once("error", () => resolveAnswer(false));
  });
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function findBinary(): string {
  const explicit = process.env[env.BIN];
  if (explicit) {
    if (isExecutable(explicit)) return explicit;
    throw new ConnectError(`${env.BIN}=${explicit} is not an executable file: ${INSTALL_HINT}`);
  }
  for (const dir of (process.env["PATH"] ?? "").split(delimiter)) {
    if (dir && isExecutable(join(dir, "gantry"))) return join(dir, "gantry");
  }
  throw new ConnectError(
    "no gantry engine is running and no `gantry` binary was found to start one: " + INSTALL_HINT,
  );
}

function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, "utf8").split("\n").slice(-lines - 1).join("\n").trimEnd();
  } catch {
    return "";
  }
}

/**
 * How long an engine the SDK starts waits with no client before it stops, unless
 * `GANTRY_IDLE_TIMEOUT` says otherwise (the same in every gantry SDK).
 */
export const DEFAULT_IDLE_TIMEOUT = "30m";

/** Starts `gantry serve --socket path` detached and waits until it answers. */
async function startEngine(path: string, timeout: number): Promise<void> {
  const binary = findBinary();
  const directory = dirname(path);
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  const logPath = join(directory, "engine.log");
  const log = openSync(logPath, "a", 0o600);
  let exit: { code: number | null; signal: string | null } | undefined;
  let spawnError: Error | undefined;
  let pid: number | undefined;
  try {
    // detached: its own session, so it outlives this script and gets no terminal signals.
    // Two scripts starting at once is safe: `gantry serve` refuses a socket that another
    // engine answers on, and the loser's script then finds the winner.
    const child = spawn(binary, ["serve", "--socket", path], {
      detached: true,
      stdio: ["ignore", log, log],
      env: {
        ...process.env,
        [env.IDLE_TIMEOUT]: process.env[env.IDLE_TIMEOUT] || DEFAULT_IDLE_TIMEOUT,
      },
    });
    pid = child.pid;
    child.once("exit", (code, signal) => (exit = { code, signal }));
    child.once("error", (error) => (spawnError = error));
    child.unref();
  } finally {
    closeSync(log);
  }
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await answers(path)) {
      // Still running: ours answers (one that lost a race to another script's exits).
      if (exit === undefined && spawnError === undefined) {
        process.stderr.write(
          `gantry: started engine (pid ${String(pid)}) on ${path}; log: ${logPath}\n`,
        );
      }
      return;
    }
    if (spawnError !== undefined) {
      throw new ConnectError(`could not start ${binary} serve: ${spawnError.message}`, {
        logPath,
        cause: spawnError,
      });
    }
    if (exit !== undefined) {
      if (await answers(path)) return; // another engine won the race
      const status = exit.code ?? exit.signal;
      throw new ConnectError(
        `the gantry engine started from ${binary} exited with status ${String(status)} before ` +
          `answering on ${path}; its log (${logPath}) ends with:\n${tail(logPath)}`,
        { logPath },
      );
    }
    if (Date.now() > deadline) {
      throw new ConnectError(
        `the gantry engine started from ${binary} did not answer on ${path} within ` +
          `${timeout / 1000} s; see its log: ${logPath}`,
        { logPath },
      );
    }
    await sleep(50);
  }
}
