import { connect } from "@gantry/sdk";
import { BUSYBOX, MARKER } from "./common.mjs";

// Each branch marks itself in a shared cache volume, then waits (at most 60 s) until all
// four have: only branches that run at the same time can all see four. This proves
// parallelism from inside the containers, whatever the machine's load.
const SCRIPT = 'touch /sync/$N; i=0; while [ $(ls /sync | wc -l) -lt 4 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; echo "branch $N: $(ls /sync | wc -l) of 4 running at once"';

await connect(async (client) => {
  const base = client
    .container()
    .from(BUSYBOX)
    .withEnvVariable("MARKER", MARKER)
    .withMountedCache("/sync", client.cacheVolume(`conformance-parallel-${MARKER}`));
  const outputs = await Promise.all(
    [1, 2, 3, 4].map((n) => base.withEnvVariable("N", String(n)).withExec(["sh", "-c", SCRIPT]).stdout()),
  );
  for (const out of outputs) console.log(out.trim());
});
