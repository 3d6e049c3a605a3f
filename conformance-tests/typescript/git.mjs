import { connect } from "@gantry/sdk";
import { BUSYBOX, MARKER } from "./common.mjs";

const URL = process.env.CONFORMANCE_GIT_URL;

await connect(async (client) => {
  const repo = client.git(URL);
  console.log(`branches: ${(await repo.branches()).join(" ")}`);
  console.log(`tags: ${(await repo.tags()).join(" ")}`);
  const mainTree = repo.branch("main").tree({ discardGitDir: true });
  console.log(`main README: ${(await mainTree.file("README.md").contents()).trim()}`);
  console.log(`main entries: ${(await mainTree.entries()).join(" ")}`);
  const tag = repo.tag("v1.0.0");
  console.log(`tag ref: ${await tag.ref()}`);
  console.log(`tag README: ${(await tag.tree().file("README.md").contents()).trim()}`);
  const commit = await tag.commit();
  console.log(`tag commit is 40 hex: ${/^[0-9a-f]{40}$/.test(commit)}`);
  const byCommit = repo.commit(commit).tree({ discardGitDir: true });
  console.log(`commit app: ${(await byCommit.file("src/app.txt").contents()).trim()}`);
  console.log(`commit entries: ${(await byCommit.entries()).join(" ")}`);
  const feature = repo.branch("feature").tree({ discardGitDir: true });
  console.log(`feature entries: ${(await feature.entries()).join(" ")}`);
  const head = await repo.head().commit();
  const mainCommit = await repo.branch("main").commit();
  console.log(`head is main: ${head === mainCommit}`);
  const out = await client
    .container()
    .from(BUSYBOX)
    .withEnvVariable("MARKER", MARKER)
    .withDirectory("/src", feature)
    .withExec(["cat", "/src/feature.txt", "/src/README.md"])
    .stdout();
  console.log(`in a container: ${out.trim().split("\n").join(" | ")}`);
});
