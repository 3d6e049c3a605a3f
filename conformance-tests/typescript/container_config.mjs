import { connect } from "@gantry/sdk";
import { BUSYBOX, MARKER } from "./common.mjs";

await connect(async (client) => {
  const ctr = client
    .container()
    .from(BUSYBOX)
    .withEnvVariable("MARKER", MARKER)
    .withEnvVariable("GREETING", "hi")
    .withWorkdir("/work")
    .withUser("nobody")
    .withEntrypoint(["sh", "-c"]);
  console.log(`envVariable GREETING: ${await ctr.envVariable("GREETING")}`);
  console.log(`workdir: ${await ctr.workdir()}`);
  console.log(`user: ${await ctr.user()}`);
  console.log(`entrypoint: ${(await ctr.entrypoint()).join(" ")}`);
  const out = await ctr
    .withExec(['echo "$GREETING from $(pwd) as uid $(id -u)"'], { useEntrypoint: true })
    .stdout();
  console.log(`exec: ${out.trim()}`);
});
