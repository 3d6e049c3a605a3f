/**
 * The errors the SDK throws. All extend {@link GantryError}.
 *
 * - {@link ConnectError}: no engine could be reached or started. The message says what to do:
 *   install or point `GANTRY_BIN` at the binary, read the engine log, fix the session variables.
 * - {@link TransportError}: the engine answered, but not with a GraphQL response (an HTTP error
 *   status such as 401, a malformed body, a dropped connection).
 * - {@link QueryError}: the engine ran the query and reported GraphQL errors.
 * - {@link ExecError}: a `QueryError` for a command that failed in a container, with its
 *   `exitCode`, `stdout`, `stderr` and `cmd`.
 *
 * Messages never include the query text: it may carry `setSecret` plaintext.
 *
 * @module
 */

/** One GraphQL error as the engine sent it. */
export interface GraphQLErrorEntry {
  message?: string;
  path?: (string | number)[];
  extensions?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Base class of every error the gantry SDK throws. */
export class GantryError extends Error {
  override name = "GantryError";
}

/** No engine could be reached or started. */
export class ConnectError extends GantryError {
  override name = "ConnectError";
  /** The engine log to read, when the SDK started the engine itself. */
  readonly logPath: string | undefined;

  constructor(message: string, options?: { logPath?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.logPath = options?.logPath;
  }
}

/** The engine's answer was not a GraphQL response. */
export class TransportError extends GantryError {
  override name = "TransportError";
  /** The HTTP status, if a response arrived. */
  readonly status: number | undefined;

  constructor(message: string, options?: { status?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.status = options?.status;
  }
}

/** The engine reported GraphQL errors for a query. */
export class QueryError extends GantryError {
  override name = "QueryError";
  /** The first error's `extensions.code` (e.g. `"INVALID_ARGUMENT"`), if any. */
  readonly code: string | undefined;
  /** The first error's path in the query, if any. */
  readonly path: (string | number)[] | undefined;
  /** Every error as the engine sent it (`message`, `path`, `extensions`). */
  readonly errors: GraphQLErrorEntry[];

  constructor(errors: GraphQLErrorEntry[]) {
    const first = errors[0] ?? {};
    const more = errors.length - 1;
    const message = String(first.message ?? "unknown error");
    super(more > 0 ? `${message} (and ${more} more errors)` : message);
    const code = first.extensions?.["code"];
    this.code = typeof code === "string" ? code : undefined;
    this.path = Array.isArray(first.path) ? first.path : undefined;
    this.errors = errors;
  }
}

/** A command run by `withExec` exited with an unexpected code. */
export class ExecError extends QueryError {
  override name = "ExecError";
  /** The command's exit code. */
  readonly exitCode: number;
  /** What the command wrote to standard output. */
  readonly stdout: string;
  /** What the command wrote to standard error. */
  readonly stderr: string;
  /** The command and its arguments. */
  readonly cmd: string[];

  constructor(errors: GraphQLErrorEntry[]) {
    super(errors);
    const extensions = errors[0]?.extensions ?? {};
    const exitCode = Number(extensions["exitCode"] ?? -1);
    this.exitCode = Number.isInteger(exitCode) ? exitCode : -1;
    this.stdout = String(extensions["stdout"] ?? "");
    this.stderr = String(extensions["stderr"] ?? "");
    const cmd = extensions["cmd"];
    this.cmd = Array.isArray(cmd) ? cmd.map(String) : [];
    let text = this.message;
    if (!text.includes(`exit code: ${this.exitCode}`)) text += `\nexit code: ${this.exitCode}`;
    if (this.stdout) text += `\nstdout:\n${this.stdout.trimEnd()}`;
    if (this.stderr) text += `\nstderr:\n${this.stderr.trimEnd()}`;
    this.message = text;
  }
}

/** Throws the error a GraphQL response carries, if any. */
export function throwForErrors(response: Record<string, unknown>): void {
  const errors = response["errors"];
  if (errors === undefined || errors === null) return;
  if (!Array.isArray(errors) || !errors.every((e) => e !== null && typeof e === "object")) {
    throw new TransportError("the engine sent a malformed GraphQL error list");
  }
  if (errors.length === 0) return;
  const entries = errors as GraphQLErrorEntry[];
  if (entries[0]?.extensions?.["_type"] === "EXEC_ERROR") throw new ExecError(entries);
  throw new QueryError(entries);
}
