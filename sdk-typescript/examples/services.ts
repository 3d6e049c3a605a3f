/**
 * A service in TypeScript: test a client against a web server the pipeline starts.
 *
 *     node build/examples/services.js
 *
 * The server (busybox httpd) runs as a service bound to the client container under the
 * alias `www`; gantry starts it when the client's step runs, waits until its exposed port
 * accepts connections, and stops it when no step needs it any more. Services run on both
 * runtimes (native and Docker).
 */

import { connect, type Client, type Service } from "@gantry/sdk";

export const BUSYBOX = process.env["SERVICES_IMAGE"] ?? "127.0.0.1:5000/gantry-fixtures/busybox:latest";

/** An HTTP server on port 8080 serving `page` at /. */
export function webServer(client: Client, page: string): Service {
  return client
    .container()
    .from(BUSYBOX)
    .withNewFile("/www/index.html", page)
    .withExposedPort(8080)
    .asService({ args: ["httpd", "-f", "-p", "8080", "-h", "/www"] });
}

/** What a client container reads from the server, by its alias. */
export async function fetchPage(client: Client, page: string): Promise<string> {
  return client
    .container()
    .from(BUSYBOX)
    .withServiceBinding("www", webServer(client, page))
    .withExec(["wget", "-qO-", "http://www:8080/"])
    .stdout();
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  await connect(async (client) => {
    process.stdout.write(await fetchPage(client, "hello from a service\n"));
  });
}
