import { connect } from "@gantry/sdk";
import { BUSYBOX, MARKER, RUN } from "./common.mjs";

await connect(async (client) => {
  const out = await client.container().from(BUSYBOX).withExec(["echo", `step ${MARKER}`]).stdout();
  console.log(`run ${RUN}: ${out.trim()}`);
});
