#!/usr/bin/env python3
"""Calls a seed-pipeline module through `gantry call`, as the use case runs it.

    module_call.py GANTRY MODULE_DIR

The module (in any SDK) exports `test`, `build` and `publish`. This lists its
functions, reads `test --help`, runs `test --src=SEED_APP`, `build -o
image.tar`, `build ... file --path=/server size`, `publish` to the
authenticated registry with `--registry-token=env:...`, a second `test` (it
must be served from cache), and one usage error. It prints one line per step
(the scenario's expected output, conformance-tests/expected/module.txt) and
exits 1 on the first step that fails, with the call's output on stderr. The
registry password must appear in no output.

Used by run.py (the `module` scenario, one module per gantry SDK under
examples/modules/) and by dagger/run.sh (modules written for Dagger's SDKs).
Environment: GANTRY_STATE_DIR (gantry call's own engine state),
GANTRY_TEST_AUTH_REGISTRY(_USER/_PASSWORD), CONFORMANCE_MARKER (the tag),
CONFORMANCE_OUT (where the tarball goes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED_APP = ROOT / "examples" / "seed-app"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    gantry, module = argv[0], str(Path(argv[1]).resolve())
    registry = os.environ.get("GANTRY_TEST_AUTH_REGISTRY", "127.0.0.1:5001")
    user = os.environ.get("GANTRY_TEST_AUTH_REGISTRY_USER", "gantry")
    password = os.environ.get("GANTRY_TEST_AUTH_REGISTRY_PASSWORD", "gantry-test-password")
    marker = os.environ.get("CONFORMANCE_MARKER") or f"m{int(time.time())}"
    out_dir = Path(os.environ.get("CONFORMANCE_OUT") or tempfile.mkdtemp())
    env = dict(os.environ, MODULE_REGISTRY_TOKEN=password, GANTRY_PROGRESS="plain")
    src = f"--src={SEED_APP}"

    def call(*args: str, expect: int = 0) -> str:
        cmd = [gantry, *args[:1], "-m", module, *args[1:]]
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=600)
        sys.stderr.write(f"$ {' '.join(cmd)}  (exit {result.returncode})\n{result.stderr}")
        if password in result.stdout + result.stderr:
            raise SystemExit(f"the registry password appears in the output of {args}")
        if result.returncode != expect:
            sys.stderr.write(result.stdout)
            raise SystemExit(f"{' '.join(args)}: exit {result.returncode}, expected {expect}")
        return result.stdout

    names = [line.split()[0] for line in call("functions").splitlines()[2:] if line.strip()]
    print(f"functions: {', '.join(sorted(names))}")
    print(f"help: {call('call', 'test', '--help').splitlines()[0]}")
    tested = call("call", "test", src)
    print(f"test: {tested.split()[0] if tested.strip() else '(no output)'}")
    tarball = out_dir / "image.tar"
    saved = call("call", "build", src, "-o", str(tarball)).strip()
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    # An OCI layout (index.json), with `docker load`'s manifest.json beside it on both
    # runtimes; a tarball with manifest.json alone is Docker's own `docker save` format.
    layout = "OCI image" if "index.json" in names else "docker image" if "manifest.json" in names else "?"
    print(f"build -o: {layout} tarball, path printed: {saved == str(tarball)}")
    size = int(call("call", "build", src, "file", "--path=/server", "size").strip())
    print(f"build file --path=/server size: {'over 1 MB' if size > 1_000_000 else size}")
    ref = call(
        "call",
        "publish",
        src,
        f"--registry={registry}/conformance-module",
        f"--tag={marker}",
        f"--registry-user={user}",
        "--registry-token=env:MODULE_REGISTRY_TOKEN",
    ).strip()
    print(f"publish: {ref}")
    again = call("call", "test", src)
    print(f"test again: same output: {again == tested}")
    error = subprocess.run(
        [gantry, "call", "-m", module, "tset"], capture_output=True, text=True, env=env, check=False
    )
    hint = "did you mean \"test\"" in error.stderr
    print(f"unknown function: exit {error.returncode}, suggests test: {hint}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
