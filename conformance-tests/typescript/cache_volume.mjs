import { connect } from "@gantry/sdk";
import { BUSYBOX, MARKER, RUN } from "./common.mjs";

await connect(async (client) => {
  const out = await client
    .container()
    .from(BUSYBOX)
    .withMountedCache("/cache", client.cacheVolume("conformance-cache"))
    .withEnvVariable("MARKER", MARKER)
    .withEnvVariable("RUN", RUN)
    .withExec(["sh", "-c", 'echo "run $RUN" >> "/cache/$MARKER"; cat "/cache/$MARKER"'])
    .stdout();
  console.log(`run ${RUN} sees: ${out.trim().split("\n").join(", ")}`);
});
