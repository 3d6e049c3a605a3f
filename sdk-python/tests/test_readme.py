"""The README's example runs and type-checks as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import SDK, Engine, script_env


def readme_example() -> str:
    text = (SDK / "README.md").read_text()
    match = re.search(r"## Example\n\n```python\n(.*?)```", text, re.S)
    assert match, "README.md has a python block under '## Example'"
    return match.group(1)


def test_readme_example_runs(engine: Engine, tmp_path: Path) -> None:
    script = tmp_path / "ci.py"
    script.write_text(readme_example())
    for name in ("a", "b", "c"):
        (tmp_path / name).write_text(name)
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "4 entries\n"  # a, b, c and ci.py


def test_readme_example_type_checks(tmp_path: Path) -> None:
    script = tmp_path / "ci.py"
    script.write_text(readme_example())
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
