/**
 * One `POST /query` with Node's own `node:http`.
 *
 * Why no HTTP library: the engine speaks plain HTTP/1.1 on a Unix socket or on loopback TCP,
 * and the SDK sends one kind of request. `http.request` does both transports (`socketPath`
 * for the socket). `fetch` (undici) cannot reach a Unix socket without undici's own `Agent`,
 * which would be a dependency. Each request has its own connection (`agent: false`), so
 * concurrent queries need no pooling and nothing keeps the process alive afterwards.
 *
 * @module
 */

import { request } from "node:http";

import * as env from "./api/env.gen.js";
import { TransportError } from "./errors.js";

/** Where the engine listens: a Unix socket path, or a loopback TCP port. */
export interface Endpoint {
  socket?: string;
  port?: number;
  headers: Record<string, string>;
}

export function describe(endpoint: Endpoint): string {
  return endpoint.socket !== undefined
    ? `unix://${endpoint.socket}`
    : `http://127.0.0.1:${endpoint.port ?? 0}`;
}

/** A response: its status, the engine's version header (if any) and its body. */
export interface Response {
  status: number;
  /** `X-Gantry-Version`, which every engine response carries. */
  engineVersion?: string;
  body: string;
}

/** Sends `POST path` with a JSON body; resolves to the response. */
export function post(endpoint: Endpoint, path: string, body: string): Promise<Response> {
  const payload = Buffer.from(body, "utf8");
  const target =
    endpoint.socket !== undefined
      ? { socketPath: endpoint.socket }
      : { host: "127.0.0.1", port: endpoint.port };
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...target,
        method: "POST",
        path,
        agent: false,
        headers: {
          Host: "gantry",
          "Content-Type": "application/json",
          Accept: "application/json",
          "Content-Length": String(payload.length),
          Connection: "close",
          ...endpoint.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", (error) => reject(failure(endpoint, error)));
        res.on("end", () => {
          const version = res.headers[env.VERSION_HEADER.toLowerCase()];
          resolve({
            status: res.statusCode ?? 0,
            engineVersion: typeof version === "string" ? version : undefined,
            body: Buffer.concat(chunks).toString("utf8"),
          });
        });
      },
    );
    req.on("error", (error) => reject(failure(endpoint, error)));
    req.end(payload);
  });
}

function failure(endpoint: Endpoint, error: Error): TransportError {
  return new TransportError(
    `the connection to the gantry engine at ${describe(endpoint)} failed: ${error.message}`,
    { cause: error },
  );
}
