import { connect } from "@gantry/sdk";
import { BUSYBOX, MARKER } from "./common.mjs";

const dirId = await connect(async (client) => {
  const ctr = client.container().from(BUSYBOX).withNewFile("/marker.txt", MARKER);
  const ctrId = await ctr.id();
  console.log(`container id: ${typeof ctrId === "string" && ctrId ? "non-empty string" : ctrId}`);
  const loaded = client.loadContainerFromID(ctrId);
  console.log(`loaded container: ${await loaded.withExec(["cat", "/marker.txt"]).stdout()}`);
  return client.directory().withNewFile("m.txt", MARKER).id();
});

await connect(async (second) => {
  const loadedDir = second.loadDirectoryFromID(dirId);
  console.log(`loaded directory in a second connection: ${await loadedDir.file("m.txt").contents()}`);
  const out = await second
    .container()
    .from(BUSYBOX)
    .withDirectory("/d", loadedDir)
    .withExec(["cat", "/d/m.txt"])
    .stdout();
  console.log(`loaded directory as an argument: ${out}`);
});
