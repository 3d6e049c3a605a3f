/**
 * `@gantry/sdk`: the TypeScript SDK for the gantry CI/CD pipeline engine.
 *
 * ```ts
 * import { connect } from "@gantry/sdk";
 *
 * await connect(async (client) => {
 *   const out = await client
 *     .container()
 *     .from("127.0.0.1:5000/gantry-fixtures/busybox:latest")
 *     .withExec(["echo", "hello"])
 *     .stdout();
 *   console.log(out);
 * });
 * ```
 *
 * Chained calls build one query and send nothing; awaiting a leaf (`stdout()`, `sync()`,
 * `publish()`, ...) sends it. The classes `Client`, `Container`, `Directory`, ... are
 * generated from the engine's schema (`api/client.gen.ts`); the connection rules are in
 * {@link connect}, the errors are {@link GantryError}'s subclasses.
 *
 * @packageDocumentation
 */

export * from "./api/client.gen.js";
export { VERSION } from "./api/env.gen.js";
export { connect, type ConnectOptions } from "./connection.js";
export { BaseObject } from "./core.js";
export {
  ConnectError,
  ExecError,
  GantryError,
  QueryError,
  TransportError,
  type GraphQLErrorEntry,
} from "./errors.js";
