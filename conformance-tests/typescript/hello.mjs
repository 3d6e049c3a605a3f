import { connect } from "@gantry/sdk";
import { BUSYBOX, MARKER } from "./common.mjs";

await connect(async (client) => {
  const ctr = client.container().from(BUSYBOX).withEnvVariable("MARKER", MARKER).withExec(["echo", "hello from gantry"]);
  console.log(`stdout: ${(await ctr.stdout()).trim()}`);
  console.log(`exit code: ${await ctr.exitCode()}`);
});
