// The seed pipeline (shared/reference/seed-pipeline.md): test, build, publish.
import { connect, ExecError } from "@gantry/sdk";
import { AUTH_PASSWORD, AUTH_REGISTRY, AUTH_USER, GOLANG, MARKER, STATIC } from "./common.mjs";

function goBase(client, src) {
  return (
    client
      .container()
      .from(GOLANG)
      .withDirectory("/src", src)
      .withWorkdir("/src")
      .withMountedCache("/root/go/pkg/mod", client.cacheVolume("go-mod"))
      .withMountedCache("/root/.cache/go-build", client.cacheVolume("go-build"))
      .withEnvVariable("GOMODCACHE", "/root/go/pkg/mod")
      .withEnvVariable("GOCACHE", "/root/.cache/go-build")
      // A new value each run, so test and build really run (on warm Go caches).
      .withEnvVariable("CONFORMANCE_MARKER", MARKER)
  );
}

const test = (client, src) =>
  goBase(client, src).withExec(["go", "test", "-count=1", "./..."]).stdout();

function build(client, src) {
  const binary = goBase(client, src)
    .withEnvVariable("CGO_ENABLED", "0")
    .withEnvVariable("GOOS", "linux")
    .withExec(["go", "build", "-ldflags=-s -w", "-o", "/out/server", "./cmd/server"])
    .file("/out/server");
  return client.container().from(STATIC).withFile("/server", binary).withEntrypoint(["/server"]);
}

async function publish(client, src, repo, tag, token) {
  try {
    await test(client, src);
  } catch (error) {
    if (error instanceof ExecError) throw new Error(`tests failed: ${error.stdout}${error.stderr}`);
    throw error;
  }
  return build(client, src).withRegistryAuth(AUTH_REGISTRY, AUTH_USER, token).publish(`${repo}:${tag}`);
}

await connect(async (client) => {
  const src = client.host().directory("../../examples/seed-app");
  for (const line of (await test(client, src)).trim().split("\n")) {
    console.log(`test: ${line.split(/\s+/).slice(0, 2).join(" ")}`);
  }
  const token = client.setSecret("registry-token", AUTH_PASSWORD);
  const ref = await publish(client, src, `${AUTH_REGISTRY}/gantry-conformance/seed-app`, MARKER, token);
  console.log(`published: ${ref}`);
  const out = await client
    .container()
    .withRegistryAuth(AUTH_REGISTRY, AUTH_USER, token)
    .from(ref)
    .withExec([], { useEntrypoint: true })
    .stdout();
  console.log(`run: ${out.trim()}`);
});
