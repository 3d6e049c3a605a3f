import { connect, ExecError, ReturnType } from "@gantry/sdk";
import { BUSYBOX, MARKER } from "./common.mjs";

const SCRIPT = "echo out; echo err >&2; exit 3";

await connect(async (client) => {
  const base = client.container().from(BUSYBOX).withEnvVariable("MARKER", MARKER);
  try {
    await base.withExec(["sh", "-c", SCRIPT]).sync();
    console.log("no error");
  } catch (error) {
    if (!(error instanceof ExecError)) throw error;
    console.log("caught ExecError");
    console.log(`exit code: ${error.exitCode}`);
    console.log(`stdout: ${error.stdout.trim()}`);
    console.log(`stderr: ${error.stderr.trim()}`);
    console.log(`cmd: ${error.cmd.join(" ")}`);
  }
  const code = await base.withExec(["sh", "-c", SCRIPT], { expect: ReturnType.ANY }).exitCode();
  console.log(`expect ANY, exit code: ${code}`);
});
