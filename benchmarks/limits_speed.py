"""How long the fuzz tests' hostile cases take, in seconds: the times tests/test_fuzz.py no
longer measures (it counts function calls instead, the same on any machine).

    python benchmarks/limits_speed.py            # prints and writes docs/benchmarks.md
    python benchmarks/limits_speed.py --no-write

Measures, in process and best of several runs: checking and drawing the largest network the
limits allow (the reference the fuzz oracle's work limit is twice of), the refusals of runaway
expansion, deep nesting and huge sizes, drawing 150 and 600 block calls, checking 200 and 800
residuals, and the seeded fuzz cases the test suite runs; beside each time, the function
calls counted as the tests count them.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from docsection import cpu_name, write_section  # noqa: E402
from fuzzgen import (SPEC_TEXTS, count_calls, largest_network, largest_work,  # noqa: E402
                     run_case, seeded)

REFUSALS = {
    "runaway expansion (`repeat 1000 { repeat 1000 { repeat 1000 { relu } } }`)":
        "input 8x8x8\nrepeat 1000 { repeat 1000 { repeat 1000 { relu } } }\n",
    "block recursion (`block a(c) { a c }`)": "input 8x8x8\nblock a(c) { a c }\na 1\n",
    "deep nesting (3,000 `residual<`)":
        "input 8x8x8\n" + "residual< " * 3000 + "relu" + " >" * 3000 + "\n",
    "huge sizes (`input 100000`, `linear 100000000`)": "input 100000\nlinear 100000000\n",
}


def best(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def fmt(t: float) -> str:
    return f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"


def measure(reps: int, cases: int) -> dict:
    from archdsl.draw import to_dot
    from archdsl.network import analyse, analyse_graph

    reference = largest_work()  # also does archdsl's one-time set-up
    text = largest_network()
    rows = [("largest network allowed: check and draw", best(
        lambda: run_case(text, trace_memory=False, limit=None), reps), reference)]
    for label, spec in REFUSALS.items():
        rows.append((f"refusal: {label}", best(lambda: analyse(spec), reps),
                     count_calls(analyse, spec)[1]))
    growth = []
    for blocks in (150, 600):
        spec = SPEC_TEXTS["resnet34.arch"].replace("stage 128 4 s=2", f"stage 128 {blocks} s=2")
        _, graph, diagnostics = analyse_graph(spec)
        growth.append((f"draw resnet34 with {blocks} block calls in a stage",
                       best(lambda: to_dot(graph, diagnostics).source, reps),
                       count_calls(lambda: to_dot(graph, diagnostics).source)[1]))
    for n in (200, 800):
        spec = f"input 8x8x8\nrepeat {n} {{ residual< conv 8 k3 p1; relu > }}\n"
        growth.append((f"check {n} residuals in a chain", best(lambda: analyse(spec), reps),
                       count_calls(analyse, spec)[1]))
    fuzz = {}
    for kind in ("grammatical", "mutated", "valid"):
        times, calls = [], []
        for seed in range(cases):
            text, _ = seeded(kind, seed)
            start = time.perf_counter()
            outcome = run_case(text, trace_memory=False, limit=None)
            times.append(time.perf_counter() - start)
            calls.append(outcome.calls)
        fuzz[kind] = (statistics.median(times), max(times), max(calls))
    return {"rows": rows, "growth": growth, "fuzz": fuzz, "reference": reference,
            "reps": reps, "cases": cases}


def render(m: dict) -> str:
    import archdsl

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    ref = m["reference"]
    lines = [
        "## Hostile input: times behind the fuzz tests' work limits (benchmarks/limits_speed.py)",
        "",
        f"Measured {now} on {cpu_name()}, Python {platform.python_version()}, archdsl "
        f"{getattr(archdsl, '__version__', '')}, in process, best of {m['reps']} runs. The "
        "tests count Python function calls (cProfile) instead of timing, so that no test "
        "depends on the machine's speed; this table relates the two. A fuzz case may make "
        f"twice the calls of the largest network allowed ({ref:,} calls here).",
        "",
        "| case | time | function calls | share of the largest network's calls |",
        "|---|---:|---:|---:|",
    ]
    for label, t, calls in m["rows"] + m["growth"]:
        lines.append(f"| {label} | {fmt(t)} | {calls:,} | {calls / ref:.4f} |")
    g = m["growth"]
    lines += ["", f"Four times the block calls: {g[1][1] / g[0][1]:.2f}x the time, "
              f"{g[1][2] / g[0][2]:.2f}x the calls; four times the residuals: "
              f"{g[3][1] / g[2][1]:.2f}x the time, {g[3][2] / g[2][2]:.2f}x the calls (the tests "
              "require at most 4.5x the calls; the quadratic versions these guard against made "
              "12x to 15x).", "",
              f"Seeded fuzz cases (the first {m['cases']} of each generator, checked and drawn, "
              "memory not traced):", "",
              "| generator | median time | slowest | most calls |", "|---|---:|---:|---:|"]
    for kind, (median, worst, calls) in m["fuzz"].items():
        lines.append(f"| {kind} | {fmt(median)} | {fmt(worst)} | {calls:,} |")
    lines += ["", "Regenerate with `.venv/bin/python benchmarks/limits_speed.py`."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and cases")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch the doc")
    args = parser.parse_args(argv)
    m = measure(reps=2 if args.quick else 5, cases=50 if args.quick else 300)
    section = render(m)
    print(section)
    if not args.no_write:
        write_section(section, "limits_speed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
