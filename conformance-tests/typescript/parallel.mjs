import { connect } from "@gantry/sdk";
import { BUSYBOX, MARKER } from "./common.mjs";

await connect(async (client) => {
  const base = client.container().from(BUSYBOX).withEnvVariable("MARKER", MARKER);
  const start = performance.now();
  const outputs = await Promise.all(
    [1, 2, 3, 4].map((n) => base.withExec(["sh", "-c", `sleep 2; echo branch ${n}: done`]).stdout()),
  );
  const elapsed = (performance.now() - start) / 1000;
  for (const out of outputs) console.log(out.trim());
  console.error(`elapsed: ${elapsed.toFixed(2)} s`);
  console.log(`4 x sleep 2 finished in under 8 s: ${elapsed < 8}`);
});
