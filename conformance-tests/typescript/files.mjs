import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { connect } from "@gantry/sdk";
import { BUSYBOX, MARKER, OUT } from "./common.mjs";

const HOSTDIR = "../fixtures/hostdir";

// Relative path -> contents of every file under root, as sorted "path=contents" lines.
function tree(root, skipSuffix = "") {
  const files = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (!skipSuffix || !entry.name.endsWith(skipSuffix))
        files.push(`${relative(root, path)}=${readFileSync(path, "base64")}`);
    }
  };
  walk(root);
  return files.sort().join("\n");
}

await connect(async (client) => {
  const src = client.host().directory(HOSTDIR, { exclude: ["**/*.log"] });
  console.log(`exclude **/*.log: ${(await src.glob("**")).sort().join(" ")}`);
  const txt = client.host().directory(HOSTDIR, { include: ["**/*.txt"] });
  console.log(`include **/*.txt: ${(await txt.glob("**")).sort().join(" ")}`);

  const ctr = client
    .container()
    .from(BUSYBOX)
    .withEnvVariable("MARKER", MARKER)
    .withDirectory("/src", src)
    .withExec([
      "sh",
      "-c",
      "mkdir -p /out && cat /src/a.txt /src/sub/c.txt > /out/combined.txt" +
        " && ls -R /src > /out/listing.txt",
    ]);
  const combined = await ctr.file("/out/combined.txt").contents();
  console.log(`combined.txt: ${combined.split(/\s+/).filter(Boolean).join(" ")}`);

  await ctr.directory("/out").export(`${OUT}/out`);
  console.log(`exported /out: ${readdirSync(`${OUT}/out`).sort().join(" ")}`);
  await ctr.file("/out/combined.txt").export(`${OUT}/combined.txt`);
  writeFileSync(
    `${OUT}/expected.txt`,
    Buffer.concat([readFileSync(`${HOSTDIR}/a.txt`), readFileSync(`${HOSTDIR}/sub/c.txt`)]),
  );
  const same = readFileSync(`${OUT}/combined.txt`).equals(readFileSync(`${OUT}/expected.txt`));
  console.log(`exported combined.txt equals the host files: ${same}`);

  await src.export(`${OUT}/src`);
  const sameTree = tree(`${OUT}/src`) === tree(HOSTDIR, ".log");
  console.log(`exported source equals the host directory without *.log: ${sameTree}`);
});
