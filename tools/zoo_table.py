"""docs/zoo.md's table: every model of specs/torchvision.toml with its spec file, parameters,
multiply-accumulates per sample at the model's own input size, the number of lines of its spec
(lines that are neither blank nor only a comment), and the time `archdsl.load` takes to check
it (parse, expand, infer, lints: the median of five, on the machine that runs this).

    .venv/bin/python tools/zoo_table.py            print the table
    .venv/bin/python tools/zoo_table.py --write    replace the table in docs/zoo.md

tests/test_zoo.py checks every column of docs/zoo.md's table but the time against the specs.
"""

from __future__ import annotations

import statistics
import sys
import time
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


HEADER = ("| model | spec file | input | params | MACs per sample | spec lines | check ms |\n"
          "|---|---|---|--:|--:|--:|--:|")
DOC = ROOT / "docs" / "zoo.md"


def rows(timed: bool = True):
    """(model, spec, input, params, MACs, spec lines, check ms or None) for every entry."""
    zoo = tomllib.loads((SPECS / "torchvision.toml").read_text())
    for name, entry in zoo.items():
        path = SPECS / entry["spec"]
        input_shape = tuple(int(d) for d in entry["input"].split("x"))
        params = entry.get("set", {})
        net = archdsl.load(path, input_shape=input_shape, **params)
        ms = None
        if timed:
            times = []
            for _ in range(5):
                start = time.perf_counter()
                archdsl.load(path, input_shape=input_shape, **params)
                times.append((time.perf_counter() - start) * 1000)
            ms = statistics.median(times)
        yield name, entry["spec"], entry["input"], net.params, net.macs, spec_lines(path), ms


def table() -> str:
    lines = [HEADER]
    for name, spec, input_, params, macs, count, ms in rows():
        lines.append(f"| {name} | specs/{spec} | {input_} | {params:,} | {macs:,} | {count} | "
                     f"{ms:.1f} |")
    return "\n".join(lines) + "\n"


def write(text: str) -> None:
    """Replace the table in docs/zoo.md (from its header row to its last row)."""
    doc = DOC.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(doc) if line.startswith("| model | spec file |"))
    end = start
    while end < len(doc) and doc[end].startswith("|"):
        end += 1
    DOC.write_text("".join(doc[:start]) + text + "".join(doc[end:]))


def main(argv: list[str]) -> None:
    text = table()
    if "--write" in argv:
        write(text)
        print(f"wrote {DOC.relative_to(ROOT)}")
    else:
        print(text, end="")


if __name__ == "__main__":
    main(sys.argv[1:])
