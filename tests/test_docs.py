"""The reference docs stay in step with the code."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_layer_reference_is_generated_from_the_registry():
    run = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_layers.py"), "--check"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_diagnostic_code_is_documented():
    source = "".join(p.read_text() for p in (ROOT / "archdsl").rglob("*.py"))
    codes = set(re.findall(r'"([EW]-[A-Z-]+[A-Z])"', source))
    doc = (ROOT / "docs" / "language.md").read_text()
    assert {c for c in codes if f"| {c} |" not in doc} == set()
