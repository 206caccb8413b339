"""Write tests/golden/: `check --format json`, `draw --format dot` and `export --to python` of
every spec in specs/ and tests/fixtures/, as the compiler gives them now. tests/test_golden.py
compares against these files; regenerate only for a change of output that is meant (name the
kinds to regenerate: `python tools/make_golden.py dot`)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
SPECS = sorted((ROOT / "specs").glob("*.arch")) + sorted((ROOT / "tests" / "fixtures").glob("*.arch"))
COMMANDS = {
    "json": ["check", "{spec}", "--format", "json"],
    "dot": ["draw", "{spec}", "-o", "{out}"],
    "py": ["export", "{spec}", "--to", "python", "-o", "{out}"],
}


def output(kind: str, spec: Path) -> str:
    """What the command prints (check) or writes (draw, export), after its exit code."""
    rel = spec.relative_to(ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{spec.stem}.{kind}"
        argv = [a.format(spec=rel, out=out) for a in COMMANDS[kind]]
        r = subprocess.run([sys.executable, "-m", "archdsl", *argv], cwd=ROOT,
                           capture_output=True, text=True)
        text = r.stdout if kind == "json" else (out.read_text() if out.exists() else "")
    return f"exit {r.returncode}\n{text}"


# the exported source is kept as text: with its exit-code line first it is not Python
SUFFIX = {"json": "json", "dot": "dot", "py": "py.txt"}


def golden_path(kind: str, spec: Path) -> Path:
    return GOLDEN / f"{spec.parent.name}-{spec.stem}.{SUFFIX[kind]}"


if __name__ == "__main__":  # python tools/make_golden.py [json|dot|py ...]: those kinds only
    GOLDEN.mkdir(exist_ok=True)
    kinds = sys.argv[1:] or list(COMMANDS)
    for spec in SPECS:
        for kind in kinds:
            golden_path(kind, spec).write_text(output(kind, spec))
            print(golden_path(kind, spec).relative_to(ROOT))
