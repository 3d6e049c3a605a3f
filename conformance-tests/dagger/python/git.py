"""Git as Dagger scripts use it: a local repository (made here, `file://`) read at a
branch, an annotated tag and a commit, and a tree mounted into a container."""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import anyio
import dagger
from dagger import dag

BUSYBOX = "127.0.0.1:5000/gantry-fixtures/busybox:latest"


def make_repository(root: Path) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="Dagger SDK test", GIT_AUTHOR_EMAIL="sdk@example.invalid",
        GIT_COMMITTER_NAME="Dagger SDK test", GIT_COMMITTER_EMAIL="sdk@example.invalid",
        GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1",
    )

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    (root / "README.md").write_text("version one\n")
    git("add", "-A")
    git("commit", "-q", "-m", "first")
    git("tag", "-a", "v1.0.0", "-m", "release 1.0.0")
    (root / "README.md").write_text("version two\n")
    git("commit", "-q", "-am", "second")
    return f"file://{root}"


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = make_repository(Path(tmp))
        async with dagger.connection(dagger.Config(log_output=sys.stderr)):
            repo = dag.git(url)
            assert await repo.branches() == ["main"], await repo.branches()
            assert await repo.tags() == ["v1.0.0"], await repo.tags()
            main_tree = repo.branch("main").tree(discard_git_dir=True)
            assert await main_tree.file("README.md").contents() == "version two\n"
            assert await main_tree.entries() == ["README.md"], await main_tree.entries()
            tag = repo.tag("v1.0.0")
            assert await tag.ref() == "refs/tags/v1.0.0"
            commit = await tag.commit()
            assert re.fullmatch("[0-9a-f]{40}", commit), commit
            old = repo.commit(commit).tree()
            assert await old.file("README.md").contents() == "version one\n"
            assert await repo.head().commit() == await repo.branch("main").commit()
            out = await (
                dag.container()
                .from_(BUSYBOX)
                .with_directory("/src", main_tree)
                .with_exec(["cat", "/src/README.md"])
                .stdout()
            )
            assert out == "version two\n", repr(out)
    print("git: ok")


anyio.run(main)
