"""How long `archdsl draw` takes on ResNet-152, collapsed (the default) and expanded.

    python benchmarks/draw_speed.py            # prints and writes docs/benchmarks.md

Times the whole command in a fresh process (imports included), writing SVG through
Graphviz's dot, and in process the two stages: building the dot source and rendering it. The
target is under 2 s per drawing on this machine.
"""

from __future__ import annotations

import datetime
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archdsl.draw import DrawOptions, render, to_dot  # noqa: E402
from docsection import cpu_name, write_section  # noqa: E402
from archdsl.network import analyse_graph  # noqa: E402

SPEC = ROOT / "specs" / "resnet152.arch"
REPEATS = 5


def whole_process(collapse: str, out: Path) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "archdsl", "draw", str(SPEC), "-o", str(out),
                        "--force", "--collapse", collapse], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def in_process(collapse: str) -> tuple[float, float, int]:
    text = SPEC.read_text()
    build, draw = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        _, graph, diagnostics = analyse_graph(text, str(SPEC))
        dot = to_dot(graph, diagnostics, DrawOptions(collapse=collapse))
        middle = time.perf_counter()
        svg = render(dot, "svg")
        build.append(middle - start)
        draw.append(time.perf_counter() - middle)
    return statistics.median(build), statistics.median(draw), len(svg)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for collapse, label in (("auto", "collapsed (default)"), ("none", "expanded")):
            total = whole_process(collapse, Path(tmp) / "r.svg")
            build, draw, size = in_process(collapse)
            rows.append((label, total, build, draw, size))
            print(f"{label:22s} whole process {total:.2f} s  (check + dot source {build * 1e3:.0f} "
                  f"ms, Graphviz layout and SVG {draw * 1e3:.0f} ms, {size / 1e3:.0f} kB)")
    dot_version = subprocess.run(["dot", "-V"], capture_output=True, text=True).stderr.strip()
    lines = [
        "## Drawing ResNet-152",
        "",
        f"`python benchmarks/draw_speed.py` on {datetime.date.today()}: {cpu_name()}, "
        f"Python {platform.python_version()}, {dot_version}. Medians of {REPEATS} runs of "
        "`archdsl draw specs/resnet152.arch -o r.svg` (a fresh process each, imports included) "
        "and of the two stages in process. Target: under 2 s.",
        "",
        "| drawing | whole command | check + dot source | Graphviz layout + SVG | SVG size |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, total, build, draw, size in rows:
        lines.append(f"| {label} | {total:.2f} s | {build * 1e3:.0f} ms | {draw * 1e3:.0f} ms | "
                     f"{size / 1e3:.0f} kB |")
    write_section("\n".join(lines) + "\n", "draw_speed")


if __name__ == "__main__":
    main()
