"""A fuzzing campaign: the generators of tests/fuzzgen.py, for as long as you like.

    python tools/fuzz.py --minutes 10 --out fuzz-out        (or: make fuzz MINUTES=10)

Every case is checked and drawn as archdsl does, and judged by the same oracle as
tests/test_fuzz.py (memory traced on every case here): it must end in a Network or in
located errors, within twice the work of the largest network allowed (function calls
counted) and 200 MB, without an exception, a hang or E-INTERNAL. Each failing
input is minimized and saved in OUT as `<kind>-<n>.arch` (the original beside it as
`<kind>-<n>.orig.arch`); OUT/summary.json and OUT/summary.md say how many cases ran, of
which generator, and the failures by kind. A failure found here belongs in
tests/test_fuzz.py's REGRESSIONS once fixed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fuzzgen import minimize, run_case, seeded, work_limit  # noqa: E402

GENERATORS = ("grammatical", "mutated", "valid")


def campaign(minutes: float, out: Path, seed: int = 0, max_saved: int = 20) -> dict:
    """Run cases until `minutes` have passed; write what was found into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    work_limit()  # the largest network's work, counted once before the first case
    deadline = time.monotonic() + minutes * 60
    started = time.time()
    cases: Counter = Counter()
    checked: Counter = Counter()
    failures: Counter = Counter()
    saved: list[dict] = []
    slowest = (0.0, "")
    most_work = (0, "")
    peak = (0, "")
    n = seed
    while time.monotonic() < deadline:
        kind = GENERATORS[n % len(GENERATORS)]
        text, what = seeded(kind, n // len(GENERATORS))
        n += 1
        started_case = time.perf_counter()  # reported, never judged: work_limit judges
        outcome = run_case(text)
        cases[kind] += 1
        checked[kind] += outcome.checked
        slowest = max(slowest, (time.perf_counter() - started_case, what))
        most_work = max(most_work, (outcome.calls, what))
        peak = max(peak, (outcome.peak_bytes, what))
        if outcome.failure is None:
            continue
        failures[outcome.failure] += 1
        if failures[outcome.failure] > max_saved:
            continue
        small = minimize(text, lambda t, f=outcome.failure: run_case(t).failure == f)
        name = f"{outcome.failure.replace(':', '-')}-{failures[outcome.failure]}"
        (out / f"{name}.arch").write_text(small)
        (out / f"{name}.orig.arch").write_text(text)
        saved.append({"file": f"{name}.arch", "failure": outcome.failure,
                      "detail": outcome.detail, "case": what})
        print(f"FOUND {outcome.failure}: {outcome.detail}  ({what}) -> {out / name}.arch",
              flush=True)
    summary = {
        "minutes": round((time.time() - started) / 60, 2),
        "cases": sum(cases.values()),
        "cases_by_generator": dict(cases),
        "checked_clean_by_generator": dict(checked),
        "failures": sum(failures.values()),
        "failures_by_kind": dict(failures),
        "saved": saved,
        "slowest_case": {"seconds": round(slowest[0], 3), "case": slowest[1]},
        "most_work": {"calls": most_work[0], "case": most_work[1]},
        "largest_memory_peak": {"bytes": peak[0], "case": peak[1]},
        "next_seed": n,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(_markdown(summary))
    return summary


def _markdown(s: dict) -> str:
    lines = [f"# archdsl fuzz campaign: {s['cases']:,} cases in {s['minutes']} minutes", "",
             "| generator | cases | checked clean |", "|---|---:|---:|"]
    for kind, count in s["cases_by_generator"].items():
        lines.append(f"| {kind} | {count:,} | {s['checked_clean_by_generator'].get(kind, 0):,} |")
    lines += ["", f"Failures: {s['failures']}", ""]
    if s["failures_by_kind"]:
        lines += ["| failure | count |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(s["failures_by_kind"].items())]
        lines += ["", "| saved input | failure | detail |", "|---|---|---|"]
        lines += [f"| {x['file']} | {x['failure']} | {x['detail'][:80].replace('|', '/')} |"
                  for x in s["saved"]]
    lines += ["", f"Slowest case: {s['slowest_case']['seconds']} s ({s['slowest_case']['case']}); "
                  f"most work: {s['most_work']['calls']:,} function calls "
                  f"({s['most_work']['case']}); "
                  f"largest memory peak: {s['largest_memory_peak']['bytes'] / 2**20:.1f} MiB "
                  f"({s['largest_memory_peak']['case']}).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10, help="how long to run (default 10)")
    parser.add_argument("--out", default="fuzz-out", help="folder for findings and the summary")
    parser.add_argument("--seed", type=int, default=0,
                        help="first case number (a later campaign can go on from `next_seed`)")
    args = parser.parse_args(argv)
    s = campaign(args.minutes, Path(args.out), args.seed)
    kinds = f" {s['failures_by_kind']}" if s["failures_by_kind"] else ""
    print(f"{s['cases']:,} cases in {s['minutes']} minutes, {s['failures']} failures{kinds}; "
          f"summary in {args.out}/summary.md")
    return 1 if s["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
