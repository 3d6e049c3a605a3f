// A registry that runs as a service: an image published to it and pulled back from it,
// both named by the service's hostname (`registryService`).
import { realpathSync } from "node:fs";
import { connect } from "@gantry/sdk";
import { BUSYBOX, MARKER } from "./common.mjs";

// Debian's build of the distribution registry (`make setup` installs it) and the C
// library it loads, in the busybox image.
const FILES = {
  "/usr/bin/registry": "/usr/bin/docker-registry",
  "/lib/x86_64-linux-gnu/libc.so.6": "/lib/x86_64-linux-gnu/libc.so.6",
  "/lib64/ld-linux-x86-64.so.2": "/lib64/ld-linux-x86-64.so.2",
};
const CONFIG =
  "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n" +
  "http:\n  addr: :5000\n";

await connect(async (client) => {
  let registry = client.container().from(BUSYBOX);
  for (const [target, source] of Object.entries(FILES)) {
    registry = registry.withFile(target, client.host().file(realpathSync(source)));
  }
  // Started, so that its storage (the container's own) outlives the push.
  const service = await registry
    .withNewFile("/etc/registry.yml", CONFIG)
    .withExposedPort(5000)
    .asService({ args: ["/usr/bin/registry", "serve", "/etc/registry.yml"] })
    .start();
  const address = `${await service.hostname()}:5000/conformance/app:${MARKER}`;
  const published = await client
    .container()
    .from(BUSYBOX)
    .withNewFile("/marker", MARKER)
    .publish(address, { registryService: service });
  console.log(
    `published as HOSTNAME:5000/conformance/app:MARKER@sha256:…: ${published.startsWith(`${address}@sha256:`)}`,
  );
  const pulled = await client
    .container()
    .from(address, { registryService: service })
    .file("/marker")
    .contents();
  console.log(`pulled back what was published: ${pulled === MARKER}`);
  await service.stop();
});
