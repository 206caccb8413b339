"""docs/zoo.md's tables: every model of specs/torchvision.toml with its spec file, parameters,
multiply-accumulates per sample at the model's own input size, the number of lines of its spec
(lines that are neither blank nor only a comment), and the time `archdsl.load` takes to check
it (parse, expand, infer, lints: the median of five, on the machine that runs this). The
classifiers are one table, the segmentation models (`task = "segment"`) another, which also
names each one's outputs.

    .venv/bin/python tools/zoo_table.py            print the tables
    .venv/bin/python tools/zoo_table.py --write    replace the tables in docs/zoo.md

The second table lists the families beyond torchvision (BEYOND) with the receptive field of
each one's last map.

tests/test_zoo.py checks every column of docs/zoo.md's tables but the time against the specs.
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


def rows(timed: bool = True, segment: bool = False):
    """(model, spec, input, params, MACs, spec lines, check ms or None) for every classifier
    entry, or with `segment` every segmentation entry."""
    zoo = tomllib.loads((SPECS / "torchvision.toml").read_text())
    for name, entry in zoo.items():
        if (entry.get("task") == "segment") != segment:
            continue
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


SEGMENT_HEADER = ("| segmentation model | spec file | input | outputs | params | MACs per sample | "
                  "spec lines | check ms |\n"
                  "|---|---|---|---|--:|--:|--:|--:|")


def outputs(entry: dict) -> str:
    """A segmentation entry's outputs as the spec names them: `out`, or `out, aux ×0.5`."""
    net = archdsl.load(SPECS / entry["spec"], **entry.get("set", {}))
    return ", ".join(o.name if o.aux is None else f"{o.name} ×{o.aux:g}"
                     for o in net.graph.outputs)


def segment_rows(timed: bool = True):
    """(model, spec, input, outputs, params, MACs, spec lines, check ms or None) for every
    segmentation entry."""
    zoo = tomllib.loads((SPECS / "torchvision.toml").read_text())
    for name, spec, input_, params, macs, count, ms in rows(timed, segment=True):
        yield name, spec, input_, outputs(zoo[name]), params, macs, count, ms


def segment_table() -> str:
    lines = [SEGMENT_HEADER]
    for name, spec, input_, outs, params, macs, count, ms in segment_rows():
        lines.append(f"| {name} | specs/{spec} | {input_} | {outs} | {params:,} | {macs:,} | "
                     f"{count} | {ms:.1f} |")
    return "\n".join(lines) + "\n"


# Families beyond torchvision: spec, the reference the tests compare it with, its input
BEYOND = {
    "dla34": ("dla34.arch", "timm `dla34`"),
    "hrnet_w18_small": ("hrnet_w18_small.arch", "timm `hrnet_w18_small`"),
    "poolformer_s12": ("poolformer_s12.arch", "timm `poolformer_s12`"),
    "mixer_b16": ("mixer_b16.arch", "timm `mixer_b16_224`"),
    "nf_resnet50": ("nf_resnet50.arch", "timm `nf_resnet50`"),
    "unet": ("unet.arch", "the 2015 paper, padding 1 (tests/unet_reference.py)"),
}
BEYOND_HEADER = ("| model | spec file | compared with | input | params | MACs per sample | "
                 "receptive field of the last map /jump | spec lines |\n"
                 "|---|---|---|---|--:|--:|--:|--:|")


def field(net) -> str:
    """`size /jump` of the last layer whose output is still a map of several positions (or a
    sequence of several tokens): how much of the image one of its positions sees, and how far
    apart its positions are (before a global pooling, whose window is the whole map)."""
    last = [r for r in net.layers() if len(r["output"]) == 3 and r["output"][1] * r["output"][2]
            > 1 or len(r["output"]) == 2 and r["output"][0] > 1][-1]
    size, jump = last["rf"]["size"][0], last["rf"]["stride"][0]
    return f"{size} /{jump:g}"


def beyond_rows():
    for name, (spec, reference) in BEYOND.items():
        net = archdsl.load(SPECS / spec)
        yield (name, spec, reference, "x".join(map(str, net.input_shape)), net.params, net.macs,
               field(net), spec_lines(SPECS / spec))


def beyond_table() -> str:
    lines = [BEYOND_HEADER]
    for name, spec, reference, input_, params, macs, rf, count in beyond_rows():
        lines.append(f"| {name} | specs/{spec} | {reference} | {input_} | {params:,} | {macs:,} "
                     f"| {rf} | {count} |")
    return "\n".join(lines) + "\n"


def write(text: str, header: str = HEADER) -> None:
    """Replace the table in docs/zoo.md that starts with `header` (to its last row)."""
    doc = DOC.read_text().splitlines(keepends=True)
    first = header.splitlines()[0]
    start = next(i for i, line in enumerate(doc) if line.startswith(first))
    end = start
    while end < len(doc) and doc[end].startswith("|"):
        end += 1
    DOC.write_text("".join(doc[:start]) + text + "".join(doc[end:]))


def main(argv: list[str]) -> None:
    text, segment, beyond = table(), segment_table(), beyond_table()
    if "--write" in argv:
        write(text)
        write(segment, SEGMENT_HEADER)
        write(beyond, BEYOND_HEADER)
        print(f"wrote {DOC.relative_to(ROOT)}")
    else:
        print(text, end="")
        print(segment, end="")
        print(beyond, end="")


if __name__ == "__main__":
    main(sys.argv[1:])
