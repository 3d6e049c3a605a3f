// The same work as the module's `step`, as a script for `gantry run`.
import { connect } from "@gantry/sdk";

const out = await connect((client) =>
  client.container().from(process.env.BENCH_IMAGE).withExec(["echo", "cached step"]).stdout(),
);
process.stdout.write(out);
