// Git as Dagger scripts use it: a local repository (made here, `file://`) read at a
// branch, an annotated tag and a commit, and a tree mounted into a container.
import assert from "node:assert/strict"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connection, dag } from "@dagger.io/dagger"

const BUSYBOX = "127.0.0.1:5000/gantry-fixtures/busybox:latest"

function makeRepository(root) {
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: "Dagger SDK test",
    GIT_AUTHOR_EMAIL: "sdk@example.invalid",
    GIT_COMMITTER_NAME: "Dagger SDK test",
    GIT_COMMITTER_EMAIL: "sdk@example.invalid",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_CONFIG_NOSYSTEM: "1",
  }
  const git = (...args) => execFileSync("git", args, { cwd: root, env, stdio: "pipe" })
  git("init", "-q", "-b", "main")
  writeFileSync(join(root, "README.md"), "version one\n")
  git("add", "-A")
  git("commit", "-q", "-m", "first")
  git("tag", "-a", "v1.0.0", "-m", "release 1.0.0")
  writeFileSync(join(root, "README.md"), "version two\n")
  git("commit", "-q", "-am", "second")
  return `file://${root}`
}

const root = mkdtempSync(join(tmpdir(), "dagger-ts-git-"))
try {
  const url = makeRepository(root)
  await connection(
    async () => {
      const repo = dag.git(url)
      assert.deepEqual(await repo.branches(), ["main"])
      assert.deepEqual(await repo.tags(), ["v1.0.0"])
      const mainTree = repo.branch("main").tree({ discardGitDir: true })
      assert.equal(await mainTree.file("README.md").contents(), "version two\n")
      assert.deepEqual(await mainTree.entries(), ["README.md"])
      const tag = repo.tag("v1.0.0")
      assert.equal(await tag.ref(), "refs/tags/v1.0.0")
      const commit = await tag.commit()
      assert.match(commit, /^[0-9a-f]{40}$/)
      const old = repo.commit(commit).tree()
      assert.equal(await old.file("README.md").contents(), "version one\n")
      assert.equal(await repo.head().commit(), await repo.branch("main").commit())
      const out = await dag
        .container()
        .from(BUSYBOX)
        .withDirectory("/src", mainTree)
        .withExec(["cat", "/src/README.md"])
        .stdout()
      assert.equal(out, "version two\n")
    },
    { LogOutput: process.stderr },
  )
} finally {
  rmSync(root, { recursive: true, force: true })
}
console.log("git: ok")
