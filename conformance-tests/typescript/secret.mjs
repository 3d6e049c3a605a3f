import { connect } from "@gantry/sdk";
import { BUSYBOX } from "./common.mjs";

await connect(async (client) => {
  const token = client.setSecret("conformance-token", process.env.CONFORMANCE_SECRET);
  const out = await client
    .container()
    .from(BUSYBOX)
    .withSecretVariable("TOKEN", token)
    .withExec(["sh", "-c", 'echo "token=$TOKEN"; echo "length=${#TOKEN}"'])
    .stdout();
  process.stdout.write(out);
});
