"""What every benchmark script shares: the machine's name and its own section of
docs/benchmarks.md, which it replaces and leaves the other scripts' sections alone."""

from __future__ import annotations

import platform
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def write_section(section: str, key: str, path: Path = DOC) -> None:
    """Put `section` between `<!-- key:start -->` and `<!-- key:end -->` in the doc."""
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    block = f"{start}\n{section.rstrip()}\n{end}\n"
    if path.exists():
        text = path.read_text()
        if start in text and end in text:
            before, rest = text.split(start, 1)
            after = rest.split(end, 1)[1].lstrip("\n")
            text = before + block + ("\n" + after if after else "")
        else:
            text = text.rstrip("\n") + "\n\n" + block
    else:
        text = ("# Benchmarks\n\nEach section below is written by the script it names; rerun the "
                "script to refresh it.\n\n" + block)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
