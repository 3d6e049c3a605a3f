import { connect } from "@gantry/sdk";
import { BUSYBOX, MARKER } from "./common.mjs";

const CONTEXT = "../fixtures/dockerbuild";

await connect(async (client) => {
  const context = client.host().directory(CONTEXT);
  const final = context.dockerBuild({
    buildArgs: [
      { name: "BASE", value: BUSYBOX },
      { name: "GREETING", value: "hi" },
      { name: "MARKER", value: MARKER },
    ],
    target: "final",
  });
  console.log(`final greeting: ${(await final.file("greeting.txt").contents()).trim()}`);
  console.log(`final message: ${(await final.file("/app/message.txt").contents()).trim()}`);
  console.log(`final workdir: ${await final.workdir()}`);
  console.log(`final STAGE: ${await final.envVariable("STAGE")}`);
  console.log(`final run: ${(await final.withExec(["cat", "marker.txt"]).stdout()).trim()}`);
  console.log(`final default args: ${(await final.defaultArgs()).join(" ")}`);

  const stage = context.dockerBuild({ buildArgs: [{ name: "BASE", value: BUSYBOX }], target: "build" });
  console.log(`build stage greeting: ${(await stage.file("/out/greeting.txt").contents()).trim()}`);
  console.log(`build stage has /app: ${await stage.exists("/app")}`);

  const last = context.dockerBuild({ buildArgs: [{ name: "BASE", value: BUSYBOX }] });
  console.log(`no target: ${(await last.file("/last.txt").contents()).trim()}`);
});
