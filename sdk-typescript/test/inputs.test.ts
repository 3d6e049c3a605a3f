/** Input objects (`BuildArg`, `PortForward`) as sent to the engine: no engine here. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { Client, NetworkProtocol, type BuildArg, type PortForward } from "../src/api/client.gen.js";
import { Context, type Session } from "../src/core.js";

/** Records documents; answers every query with `data`. */
function fakeClient(data: Record<string, unknown>): { client: Client; documents: string[] } {
  const documents: string[] = [];
  const session: Session = {
    query: (document) => {
      documents.push(document);
      return Promise.resolve(data);
    },
  };
  return { client: new Client(new Context(session)), documents };
}

test("input objects are object literals with escaped strings", async () => {
  const { client, documents } = fakeClient({ directory: { dockerBuild: { stdout: "ok" } } });
  const buildArgs: BuildArg[] = [
    { name: "A", value: 'quote " and \\ é' },
    { name: "B", value: "" },
  ];
  assert.equal(await client.directory().dockerBuild({ buildArgs }).stdout(), "ok");
  assert.deepEqual(documents, [
    'query{directory{dockerBuild(buildArgs:[{name:"A",value:"quote \\" and \\\\ é"},' +
      '{name:"B",value:""}]){stdout}}}',
  ]);
});

test("input object enums are sent bare and unset optional fields are left out", async () => {
  const { client, documents } = fakeClient({ host: { service: { hostname: "h" } } });
  const ports: PortForward[] = [
    { backend: 80 },
    { frontend: 5353, backend: 53, protocol: NetworkProtocol.UDP },
  ];
  assert.equal(await client.host().service(ports).hostname(), "h");
  assert.deepEqual(documents, [
    "query{host{service(ports:[{backend:80},{frontend:5353,backend:53,protocol:UDP}]){hostname}}}",
  ]);
});

/** Compiled, never called: a `PortForward` needs its `backend`. */
export function requiredFields(client: Client): unknown {
  // @ts-expect-error backend is required
  return client.host().service([{ frontend: 80 }]);
}
