"""Does a finished distributed training always exit 0? Runs `archdsl train … --nproc-per-node 2`
(two gloo workers on this CPU) N times in a row while other processes keep every core busy,
and counts the runs that did not exit 0 or printed gloo's shutdown abort ("terminate called
without an active exception"). Writes its section of docs/benchmarks.md.

    python benchmarks/distributed_exit.py            # 50 runs under load
    python benchmarks/distributed_exit.py --runs 5 --no-doc
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docsection import cpu_name, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ABORT = "terminate called"


def _spin(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--load", type=int, default=os.cpu_count() or 2,
                        help="busy processes competing for the cores (default: one per core)")
    parser.add_argument("--no-doc", action="store_true", help="print only")
    args = parser.parse_args()

    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
                for _ in range(args.load)]
    for p in spinners:
        p.start()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    failures, aborts, seconds = [], 0, []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.runs):
                out = Path(tmp) / f"run{i}"
                start = time.perf_counter()
                r = subprocess.run([sys.executable, "-m", "archdsl", "train",
                                    str(ROOT / "specs" / "lenet5.arch"), "digits", "--epochs",
                                    str(args.epochs), "--nproc-per-node", "2", "--quiet",
                                    "--out", str(out)],
                                   env=env, capture_output=True, text=True, timeout=600)
                seconds.append(time.perf_counter() - start)
                aborted = ABORT in r.stderr + r.stdout
                aborts += aborted
                if r.returncode != 0 or aborted:
                    failures.append((i, r.returncode, r.stderr[-400:]))
                print(f"run {i + 1}/{args.runs}: exit {r.returncode}"
                      f"{' ABORT' if aborted else ''}  {seconds[-1]:.1f} s", flush=True)
    finally:
        stop.set()
        for p in spinners:
            p.join(timeout=5)
    for i, code, tail in failures:
        print(f"--- run {i + 1} exit {code}:\n{tail}")
    section = "\n".join([
        "## Distributed training exits cleanly (benchmarks/distributed_exit.py)",
        "",
        f"{args.runs} consecutive `archdsl train specs/lenet5.arch digits --epochs {args.epochs} "
        f"--nproc-per-node 2` runs (two gloo workers) while {args.load} busy processes compete "
        f"for the cores, on {cpu_name()} ({os.cpu_count()} cores):",
        "",
        "| runs | exit 0 | failed | gloo aborts | median time per run |",
        "|---:|---:|---:|---:|---:|",
        f"| {args.runs} | {args.runs - len(failures)} | {len(failures)} | {aborts} | "
        f"{sorted(seconds)[len(seconds) // 2]:.1f} s |",
        "",
        "A worker leaves the process group at the end of its run (a barrier, then "
        "`destroy_process_group`) and exits with `os._exit` once its output is flushed, so "
        "gloo's threads are never torn down by the interpreter's shutdown.",
    ])
    print(section)
    if not args.no_doc:
        write_section(section, "distributed-exit")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
