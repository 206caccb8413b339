"""Print docs/zoo.md's table: every model of specs/torchvision.toml with its spec file,
parameters, multiply-accumulates per sample at the model's own input size, and the number of
lines of its spec (lines that are neither blank nor only a comment).

    .venv/bin/python tools/zoo_table.py > table.md
"""

from __future__ import annotations

import sys
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as a package
    import tomli as tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archdsl  # noqa: E402

SPECS = ROOT / "specs"


def spec_lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines()
               if line.strip() and not line.lstrip().startswith("#"))


def rows():
    zoo = tomllib.loads((SPECS / "torchvision.toml").read_text())
    for name, entry in zoo.items():
        path = SPECS / entry["spec"]
        input_shape = tuple(int(d) for d in entry["input"].split("x"))
        net = archdsl.load(path, input_shape=input_shape, **entry.get("set", {}))
        yield name, entry["spec"], entry["input"], net.params, net.macs, spec_lines(path)


def main() -> None:
    print("| model | spec file | input | params | MACs per sample | spec lines |")
    print("|---|---|---|--:|--:|--:|")
    for name, spec, input_, params, macs, lines in rows():
        print(f"| {name} | specs/{spec} | {input_} | {params:,} | {macs:,} | {lines} |")


if __name__ == "__main__":
    main()
