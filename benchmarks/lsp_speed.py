"""How long the language server takes to answer each request on resnet152 (the largest
spec in specs/): the check run after an edit, and hover, completion, definition,
references, symbols, inlay hints, semantic tokens and formatting on its result. The
requests are timed as the server's handlers compute them, without the JSON-RPC transport.

    .venv/bin/python benchmarks/lsp_speed.py [--repeat N]

Prints one line per request: the median and the slowest of N runs, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "resnet152.arch"


def _position(lines: list[str], needle: str, offset: int = 0) -> tuple[int, int]:
    for i, line in enumerate(lines):
        if needle in line and not line.lstrip().startswith("#"):
            return i + 1, line.index(needle) + 1 + offset
    raise SystemExit(f"{needle!r} not in {SPEC}")


def main() -> None:
    from archdsl.fmt import format_text
    from archdsl.lsp import features, outline
    from archdsl.lsp.index import check, definition_of, references
    from archdsl.lsp.server import to_lsp_diagnostics

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    text = SPEC.read_text()
    lines = text.split("\n")
    doc = check(text, SPEC.name)
    conv = _position(lines, "conv 64 k7", 1)
    call = _position(lines, "stage 256", 1)
    requests = {
        "check (after an edit) + diagnostics": lambda: to_lsp_diagnostics(
            check(text, SPEC.name), "file:///resnet152.arch"),
        "hover on a conv": lambda: features.hover(doc, *conv),
        "hover on a block call": lambda: features.hover(doc, *call),
        "completion after `conv 64 `": lambda: outline.completion(
            _with_line(doc, "conv 64 "), len(doc.lines) + 1, 9),
        "definition of a block": lambda: definition_of(doc, doc.at(*call)),
        "references of a block": lambda: references(doc, doc.at(*call)),
        "document symbols": lambda: outline.symbols(doc),
        "inlay hints (whole file)": lambda: outline.inlay_hints(doc, 1, len(lines)),
        "semantic tokens": lambda: outline.semantic_tokens(doc),
        "formatting": lambda: format_text(text),
    }
    print(f"{SPEC.relative_to(ROOT)}: {len(doc.graph)} layers, {args.repeat} runs each")
    for name, request in requests.items():
        request()  # warm
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            request()
            times.append((time.perf_counter() - start) * 1000)
        print(f"  {name:<38} median {statistics.median(times):7.2f} ms   max {max(times):7.2f} ms")


def _with_line(doc, line: str):
    from dataclasses import replace

    return replace(doc, lines=doc.lines + [line])


if __name__ == "__main__":
    main()
