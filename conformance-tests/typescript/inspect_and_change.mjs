import { connect, ExistsType } from "@gantry/sdk";
import { BUSYBOX, MARKER } from "./common.mjs";

await connect(async (client) => {
  const old = client.directory().withNewFile("a.txt", "alpha\n").withNewFile("b/c.txt", "beta\n");
  const next = old
    .withNewFile("a.txt", "alpha\nalphabet\n")
    .withoutDirectory("b")
    .withSymlink("a.txt", "link");
  const changes = next.changes(old);
  console.log(`added: ${(await changes.addedPaths()).join(" ")}`);
  console.log(`modified: ${(await changes.modifiedPaths()).join(" ")}`);
  console.log(`removed: ${(await changes.removedPaths()).join(" ")}`);
  const link = await next.exists("link", {
    expectedType: ExistsType.SYMLINK_TYPE,
    doNotFollowSymlinks: true,
  });
  console.log(`link is a symlink: ${link}`);
  const stat = next.stat("link");
  console.log(`link stat: ${await stat.fileType()} ${await stat.size()}`);
  const found = [];
  for (const result of await next.search("alpha")) {
    found.push(`${await result.filePath()}:${await result.lineNumber()}`);
  }
  console.log(`search alpha: ${found.join(" ")}`);
  const patched = old.withPatch(await changes.asPatch().contents());
  console.log(`patch reproduces the new directory: ${(await patched.digest()) === (await next.digest())}`);

  const items = await client.json().withContents('{"k": [1, 2]}').field(["k"]).asArray();
  console.log(`json: ${items.length} items, last ${await items[items.length - 1].asInteger()}`);
  const env = client.envFile().withVariable("A", "1").withVariable("B", "${A}-2");
  console.log(`env B: ${await env.get("B")}`);

  const ctr = client
    .container()
    .from(BUSYBOX)
    .withEnvVariable("MARKER", MARKER)
    .withExec(["sh", "-c", "echo x > /made"])
    .withoutFile("/made");
  console.log(`removed from the image: ${!(await ctr.exists("/made"))}`);
  const out = await ctr.withExec(["sh", "-c", "echo out; sleep 0.2; echo err >&2"]).combinedOutput();
  console.log(`combined: ${out.split(/\s+/).filter(Boolean).join(" ")}`);
  console.log(`default platform is linux: ${(await client.defaultPlatform()).startsWith("linux/")}`);
});
