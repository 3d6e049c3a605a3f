#!/usr/bin/env python3
"""Runs every code block in docs/ (make docs-test), so the docs stay true.

Each fenced block's info string is its language, then words that say what the test does
with it (GitHub shows only the language):

  ```sh                    a command block: run with bash, in order, one page at a time;
                           `cd` and `export` carry over to the page's next block
  ```python save=ci.py     written to ci.py in the page's current folder (the page then runs it)
  ```python same-as=PATH   must be identical to PATH (repository-relative), a file that a
                           test runs; the message names the test
  ```text expect           what the previous command block prints: every line must match a
                           line of that output, where `…` stands for any text
  ```text output           a transcript of output, not run (marked so it is not mistaken
                           for a command)
  ```text figure           a diagram, not run
  ```toml example          a snippet shown, not run: a config file's shape, a command line's
                           synopsis, a CI job to copy (any language)

A block without a language, or with one that is neither a shell nor marked, fails the check.
Pages run in a temporary HOME with their own gantry state directory and socket, images from
the local test registry (the *_IMAGE variables the examples read), and on PATH: the folder
install.sh installs into, the Python SDK's venv and the engine binary's folder ($GANTRY_BIN's,
default target/debug). The README's SDK examples are checked too
(scripts/check-readme-examples.py).

  scripts/docs-test.py [PAGE...]      (default: every docs/**/*.md)

Last line: `docs-test: N passed, M failed` (one count per block).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHELLS = {"sh", "bash", "shell"}
FENCE = re.compile(r"^```(.*)$")
TIMEOUT = 900
# Files that other test steps run, and which step: a same-as block names it on failure.
RUN_BY = {
    "conformance-tests/dagger/": "make dagger-sdk-test",
    "docs/cookbook/": "make docs-test (this page's command blocks)",
    "examples/": "make docs-test and the SDK tests",
}


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    attrs: dict[str, str]
    flags: set[str]
    text: str

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    found = []
    lines = page.read_text().splitlines(keepends=True)
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        words = match.group(1).split()
        start = i
        i += 1
        body = []
        while i < len(lines) and lines[i].rstrip("\n") != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise SystemExit(f"{page}:{start + 1}: unclosed code block")
        i += 1
        attrs = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        flags = {w for w in words[1:] if "=" not in w}
        lang = words[0] if words else ""
        found.append(Block(page, start + 1, lang, attrs, flags, "".join(body)))
    return found


def pattern(line: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in line.split("…")))


@dataclass
class Page:
    """One page's shell: its folder and exported variables carry over between blocks."""

    tmp: Path
    env: dict[str, str]
    cwd: Path = ROOT
    last_output: str | None = None
    failures: list[str] = field(default_factory=list)

    def run(self, block: Block) -> bool:
        state = self.tmp / "state.sh"
        # Carry `cd` and `export` over: save them after the block, restore before the next.
        script = (
            f"[ -f {shlex.quote(str(state))} ] && source {shlex.quote(str(state))}\n"
            "set -eo pipefail\n"
            f"{block.text}\n"
            f'{{ export -p; printf "cd %q\\n" "$PWD"; }} >{shlex.quote(str(state))}\n'
        )
        try:
            done = subprocess.run(
                ["bash", "-c", script],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            self.last_output = None
            return self.fail(block, f"still running after {TIMEOUT}s")
        self.last_output = done.stdout
        if done.returncode != 0:
            tail = "\n".join(done.stdout.splitlines()[-25:])
            return self.fail(block, f"exit status {done.returncode}:\n{tail}")
        return True

    def save(self, block: Block) -> bool:
        cwd = self.current_dir()
        target = cwd / block.attrs["save"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.text)
        return True

    def current_dir(self) -> Path:
        state = self.tmp / "state.sh"
        if state.exists():
            for line in reversed(state.read_text().splitlines()):
                if line.startswith("cd "):
                    return Path(shlex.split(line)[1])
        return self.cwd

    def expect(self, block: Block) -> bool:
        if self.last_output is None:
            return self.fail(block, "an `expect` block must follow a command block that ran")
        lines = self.last_output.splitlines()
        missing = [
            want
            for want in block.text.splitlines()
            if want.strip() and not any(pattern(want).fullmatch(got) for got in lines)
        ]
        if missing:
            shown = "\n".join(lines[-25:])
            return self.fail(
                block, "output lacks:\n  " + "\n  ".join(missing) + f"\noutput was:\n{shown}"
            )
        return True

    def fail(self, block: Block, why: str) -> bool:
        self.failures.append(f"{block.where()}: {why}")
        return False


def same_as(block: Block) -> str | None:
    path = ROOT / block.attrs["same-as"]
    if not path.is_file():
        return f"same-as={block.attrs['same-as']}: no such file"
    if path.read_text() != block.text:
        runner = next((step for prefix, step in RUN_BY.items() if block.attrs["same-as"].startswith(prefix)), "its tests")
        return (
            f"differs from {block.attrs['same-as']} (run by {runner}); copy the file into the block"
        )
    return None


def environment(tmp: Path) -> dict[str, str]:
    registry = os.environ.get("GANTRY_TEST_REGISTRY", "127.0.0.1:5000")
    fixtures = os.environ.get("GANTRY_TEST_FIXTURES", f"{registry}/gantry-fixtures")
    home = tmp / "home"
    home.mkdir()
    bin_dir = tmp / "bin"
    venv = ROOT / "sdk-python" / ".venv" / "bin"
    cargo_home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    engine_dir = Path(os.environ["GANTRY_BIN"]).parent if os.environ.get("GANTRY_BIN") else ROOT / "target" / "debug"
    path = [bin_dir, home / ".local" / "bin", venv, engine_dir, cargo_home / "bin"]
    # CARGO_PROFILE_*: `make test` builds the release archive with its own profile settings
    # (TEST_RELEASE_OPT_LEVEL); a page's `cargo install` must see the same to reuse that build.
    keep = {
        k: v
        for k, v in os.environ.items()
        if k in {"LANG", "LC_ALL", "TERM", "TMPDIR", "DOCKER_HOST"} or k.startswith("CARGO_PROFILE_")
    }
    keep.update(
        {
            "HOME": str(home),
            "PATH": ":".join(map(str, path)) + ":" + os.environ.get("PATH", "/usr/bin:/bin"),
            "GANTRY_INSTALL_DIR": str(bin_dir),
            "GANTRY_STATE_DIR": str(tmp / "state"),
            "GANTRY_SOCKET": str(tmp / "engine.sock"),
            "GANTRY_PROGRESS": "plain",
            "NO_COLOR": "1",
            # make dist in a page builds this machine's target only (make dist-test built it),
            # and `cargo install` reuses that build (same target folder, target and profile),
            # installing into the temporary folder.
            "DIST_TARGETS": "x86_64-unknown-linux-musl",
            "CARGO_BUILD_TARGET": "x86_64-unknown-linux-musl",
            # The C compiler scripts/dist.sh gives ring's build script for this target: a
            # different one (or none) would make cargo rebuild ring and all above it.
            "CC_x86_64_unknown_linux_musl": "musl-gcc",
            "CARGO_TARGET_DIR": str(ROOT / "target"),
            "CARGO_INSTALL_ROOT": str(tmp / "cargo"),
            # The real toolchains, not ones under the temporary HOME.
            "RUSTUP_HOME": os.environ.get("RUSTUP_HOME", str(Path.home() / ".rustup")),
            "CARGO_HOME": os.environ.get("CARGO_HOME", str(Path.home() / ".cargo")),
            # The images the examples read, here from the local registry.
            "BUSYBOX_IMAGE": f"{fixtures}/busybox:latest",
            "GOLANG_IMAGE": f"{fixtures}/golang:latest",
            "NODE_IMAGE": f"{fixtures}/node:latest",
            "PYTHON_IMAGE": f"{fixtures}/python:latest",
            "RUST_IMAGE": f"{fixtures}/rust:latest",
            "RUNTIME_IMAGE": f"{fixtures}/static:nonroot",
            "REGISTRY": f"{os.environ.get('GANTRY_TEST_AUTH_REGISTRY', '127.0.0.1:5001')}/gantry-docs",
            "REGISTRY_USER": os.environ.get("GANTRY_TEST_AUTH_REGISTRY_USER", "gantry"),
            "REGISTRY_PASSWORD": os.environ.get("GANTRY_TEST_AUTH_REGISTRY_PASSWORD", ""),
        }
    )
    for tool in ("go",):
        if shutil.which(tool) is None and Path("/usr/local/go/bin/go").exists():
            keep["PATH"] += ":/usr/local/go/bin"
    return keep


def run_page(page: Path) -> tuple[int, list[str]]:
    passed = 0
    with tempfile.TemporaryDirectory(prefix="gantry-docs-test.") as tmp_name:
        tmp = Path(tmp_name)
        shell = Page(tmp, environment(tmp))
        for block in blocks(page):
            ok: bool
            started = time.monotonic()
            if block.lang in SHELLS and not block.flags and not block.attrs:
                ok = shell.run(block)
            elif "save" in block.attrs:
                ok = shell.save(block)
            elif "same-as" in block.attrs:
                why = same_as(block)
                ok = why is None or shell.fail(block, why)
            elif "expect" in block.flags:
                ok = shell.expect(block)
            elif block.flags & {"output", "figure", "example"}:
                ok = True
            else:
                ok = shell.fail(
                    block,
                    f"```{block.lang or '(no language)'} block is neither a command nor marked: "
                    "add save=FILE, same-as=PATH, expect, output, figure or example (see scripts/docs-test.py)",
                )
            passed += ok
            status = "ok  " if ok else "FAIL"
            took = f" ({time.monotonic() - started:.0f}s)" if block.lang in SHELLS else ""
            print(f"  {status}  {block.where()} {block.lang} {' '.join(sorted(block.flags))}".rstrip() + took, flush=True)
    return passed, shell.failures


def main() -> int:
    pages = [Path(p).resolve() for p in sys.argv[1:]] or sorted((ROOT / "docs").rglob("*.md"))
    passed = 0
    failures: list[str] = []
    for page in pages:
        print(f"docs-test: {page.relative_to(ROOT)}", flush=True)
        ok, failed = run_page(page)
        passed += ok
        failures += failed
    for failure in failures:
        print(f"docs-test: FAIL {failure}")
    readme = subprocess.run([sys.executable, str(ROOT / "scripts" / "check-readme-examples.py")], check=False)
    print(f"docs-test: {passed} passed, {len(failures)} failed")
    return 1 if failures or readme.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
