import { connect, ExecError } from "@gantry/sdk";
import { BUSYBOX, MARKER } from "./common.mjs";

const HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"];
// Mounting a filesystem needs root's capabilities (insecureRootCapabilities).
const MOUNT = "mkdir -p /m && mount -t tmpfs tmpfs /m && echo mounted || echo refused";

await connect(async (client) => {
  const web = client
    .container()
    .from(BUSYBOX)
    .withNewFile("/www/index.html", "hello from the service\n")
    .withExposedPort(8080)
    .asService({ args: HTTPD });
  const clientCtr = client.container().from(BUSYBOX).withEnvVariable("MARKER", MARKER);
  const page = await clientCtr
    .withServiceBinding("www", web)
    .withExec(["wget", "-qO-", "http://www:8080/"])
    .stdout();
  console.log(`page: ${page.trim()}`);
  for (const port of await web.ports()) {
    console.log(`port: ${await port.port()}/${await port.protocol()}`);
  }
  const hostname = await web.hostname();
  const endpoint = await web.endpoint({ scheme: "http" });
  console.log(`endpoint is http://HOSTNAME:8080: ${endpoint === `http://${hostname}:8080`}`);
  const broken = client
    .container()
    .from(BUSYBOX)
    .withExposedPort(8080)
    .asService({ args: ["sh", "-c", "echo broken service; exit 3"] });
  try {
    await clientCtr.withServiceBinding("db", broken).withExec(["true"]).sync();
    console.log("no error");
  } catch (error) {
    if (!(error instanceof ExecError)) throw error;
    console.log("caught ExecError");
    console.log(`exit code: ${error.exitCode}`);
    console.log(`stdout: ${error.stdout.trim()}`);
  }
  const mount = ["sh", "-c", MOUNT];
  const privileged = await clientCtr.withExec(mount, { insecureRootCapabilities: true }).stdout();
  console.log(`privileged exec: ${privileged.trim()}`);
  console.log(`plain exec: ${(await clientCtr.withExec(mount).stdout()).trim()}`);
  const capable = client
    .container()
    .from(BUSYBOX)
    .withExposedPort(8080)
    .asService({
      args: ["sh", "-c", `mkdir -p /www; (${MOUNT}) > /www/index.html; exec ${HTTPD.join(" ")}`],
      insecureRootCapabilities: true,
    });
  const answer = await clientCtr
    .withServiceBinding("capable", capable)
    .withExec(["wget", "-qO-", "http://capable:8080/"])
    .stdout();
  console.log(`privileged service: ${answer.trim()}`);
});
