import { connect, QueryError } from "@gantry/sdk";
import { AUTH_PASSWORD, AUTH_REGISTRY, AUTH_USER, BUSYBOX, MARKER } from "./common.mjs";

await connect(async (client) => {
  const password = client.setSecret("registry-password", AUTH_PASSWORD);
  const image = client.container().from(BUSYBOX).withNewFile("/marker.txt", MARKER);
  const address = `${AUTH_REGISTRY}/gantry-conformance/publish:${MARKER}`;
  try {
    await image.publish(address);
    console.log("without credentials: published?!");
  } catch (error) {
    if (!(error instanceof QueryError)) throw error;
    console.log(`without credentials: ${error.code}`);
  }
  const ref = await image.withRegistryAuth(AUTH_REGISTRY, AUTH_USER, password).publish(address);
  console.log(`published: ${ref}`);
  const pulled = await client
    .container()
    .withRegistryAuth(AUTH_REGISTRY, AUTH_USER, password)
    .from(ref)
    .withExec(["cat", "/marker.txt"])
    .stdout();
  console.log(`pulled back: ${pulled}`);
});
