"""The prelude (archdsl/prelude.arch): blocks written in the language itself, callable from
every spec by name where the spec has no block or layer kind of that name. Parsed once, and
only when a spec calls one of them, so checking a spec that does not stays as fast."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

PATH = Path(__file__).with_name("prelude.arch")
FILE = "<prelude>"  # the file name in the prelude's spans


@lru_cache(maxsize=1)
def blocks() -> dict:
    """The prelude's blocks by name (BlockDefs, spans in FILE)."""
    from .syntax import parse

    spec, diagnostics = parse(PATH.read_text(encoding="utf-8"), FILE)
    if spec is None:  # a broken install: the test suite parses it
        raise RuntimeError("archdsl's prelude does not parse: " + "; ".join(map(str, diagnostics)))
    return dict(spec.blocks)


def block(name: str):
    """The prelude's block `name`, or None."""
    return blocks().get(name)


def names() -> list[str]:
    return sorted(blocks())
