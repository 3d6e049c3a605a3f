#!/usr/bin/env python3
"""Checks that the root README's SDK examples are the tested ones.

Each SDK's test suite runs the first example of its own README (`sdk-*/README.md`).
The root README repeats those examples; this check fails when a copy drifts, so
the examples a newcomer reads first are the ones that are tested.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SDKS = {"python": "sdk-python", "ts": "sdk-typescript", "go": "sdk-go", "php": "sdk-php"}


def first_block(text: str, lang: str) -> str | None:
    match = re.search(rf"^```{lang}\n(.*?)^```$", text, re.S | re.M)
    return match.group(1) if match else None


def main() -> int:
    readme = (ROOT / "README.md").read_text()
    failures = 0
    for lang, folder in SDKS.items():
        tested = first_block((ROOT / folder / "README.md").read_text(), lang)
        if tested is None:
            print(f"readme-examples: {folder}/README.md has no ```{lang} example")
            failures += 1
        elif f"```{lang}\n{tested}```" not in readme:
            print(f"readme-examples: README.md's {lang} example differs from {folder}/README.md's tested one; copy it over")
            failures += 1
    print(f"readme-examples: {len(SDKS) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
