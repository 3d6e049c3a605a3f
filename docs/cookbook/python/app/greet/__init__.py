"""A tiny package for the cookbook's Python recipe."""

import sys


def greet(name: str) -> str:
    return f"hello, {name}"


def main() -> None:
    print(greet(sys.argv[1] if len(sys.argv) > 1 else "world"))
