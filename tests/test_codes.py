"""The table of diagnostic codes (archdsl/codes.py) against the code that reports them, the
docs that list them and the language server's hover."""

import re
from pathlib import Path

from archdsl.codes import CODES, ERROR, WARNING, explain_code
from archdsl.lsp.features import hover
from archdsl.lsp.index import check

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [p for p in sorted((ROOT / "archdsl").rglob("*.py")) if p != ROOT / "archdsl/codes.py"]
CODE = r"[EW]-[A-Z][A-Z0-9-]*[A-Z0-9]"


def _found(pattern: str) -> set[str]:
    return {m for p in SOURCES for m in re.findall(pattern, p.read_text(encoding="utf-8"))}


def _documented() -> dict[str, str]:
    """Each code in docs/language.md's tables, with the heading of its table."""
    found, heading = {}, None
    for line in (ROOT / "docs/language.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("### "):
            heading = line[4:].strip()
        elif re.match(r"\| [EW]-", line):
            code = line.split("|")[1].strip()
            assert code not in found, f"{code} has two rows in docs/language.md"
            found[code] = heading
    return found


def test_every_code_the_source_names_is_declared():
    undeclared = _found(rf"\b{CODE}\b") - set(CODES)
    assert not undeclared, f"declare these in archdsl/codes.py: {sorted(undeclared)}"


def test_every_declared_code_is_reported_somewhere():
    stale = set(CODES) - _found(rf"[\"']({CODE})[\"']")
    assert not stale, f"no code reports these: {sorted(stale)}"


def test_each_code_is_declared_with_its_prefixs_severity_and_a_meaning():
    for name, code in CODES.items():
        assert code.name == name
        assert code.severity == {"E": ERROR, "W": WARNING}[name[0]], name
        assert code.meaning.endswith(".") and len(code.meaning) > 20, name


def test_the_docs_tables_list_exactly_the_declared_codes():
    documented = _documented()
    assert sorted(documented) == sorted(CODES)
    assert {code: CODES[code].severity for code in documented} == {
        code: {"Errors": ERROR, "Warnings": WARNING}[heading]
        for code, heading in documented.items()}


def test_hover_on_an_empty_pooling_window_explains_e_empty():
    doc = check("input 3x3x3\nmaxpool 5\n", "net.arch")
    [empty] = doc.diagnostics
    assert empty.code == "E-EMPTY"
    text = hover(doc, empty.span.line, empty.span.column)  # on the `5`
    assert f"**E-EMPTY**: {explain_code('E-EMPTY')}" in text
    assert "pooling window" in text


def test_explain_code_knows_nothing_of_an_unknown_code():
    assert explain_code("E-NOPE") is None
