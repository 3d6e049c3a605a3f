/** Input objects (`BuildArg`, `PortForward`) as sent to the engine: no engine here. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { Client, NetworkProtocol, type BuildArg, type PortForward } from "../src/api/client.gen.js";
import { Context, enumArg, inputArg, literal, type Session } from "../src/core.js";

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

test("lists of lists of input objects are marked element by element, at every depth", () => {
  // What the generated marker of an input holding an enum does (markPortForward).
  const mark = (value: PortForward): unknown => ({ ...value, protocol: enumArg(value.protocol) });
  const nested: PortForward[][] = [
    [{ backend: 80 }, { backend: 53, protocol: NetworkProtocol.UDP }],
    [],
    [{ frontend: 8443, backend: 443, protocol: NetworkProtocol.TCP }],
  ];
  assert.equal(
    literal(inputArg(nested, mark)),
    "[[{backend:80},{backend:53,protocol:UDP}],[],[{frontend:8443,backend:443,protocol:TCP}]]",
  );
  const deeper: PortForward[][][] = [[[{ backend: 1, protocol: NetworkProtocol.UDP }]]];
  assert.equal(literal(inputArg(deeper, mark)), "[[[{backend:1,protocol:UDP}]]]");
  // One level and a single object, as before; null and undefined pass through.
  const udp = NetworkProtocol.UDP;
  assert.equal(
    literal(inputArg([{ backend: 2, protocol: udp }], mark)),
    "[{backend:2,protocol:UDP}]",
  );
  assert.equal(literal(inputArg({ backend: 3, protocol: udp }, mark)), "{backend:3,protocol:UDP}");
  assert.equal(inputArg<PortForward>(null, mark), null);
  assert.equal(inputArg<PortForward>(undefined, mark), undefined);
});

/** Compiled, never called: a `PortForward` needs its `backend`. */
export function requiredFields(client: Client): unknown {
  // @ts-expect-error backend is required
  return client.host().service([{ frontend: 80 }]);
}
