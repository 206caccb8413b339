"""Write editors/vscode/syntaxes/arch.tmLanguage.json, the TextMate grammar of .arch files
used by the VS Code extension (and by any editor that reads TextMate grammars).

The word lists come from archdsl.vocabulary, so that a new layer kind, combinator, flag or
keyword is coloured once this script runs again: keywords from grammars/archdsl.lark, layer
kinds, short flags and bare words from the layer registry, combinators and built-in functions
from archdsl itself.
tests/test_textmate.py fails while the committed grammar differs from what this writes.

    .venv/bin/python tools/vscode_grammar.py            # rewrite the grammar
    .venv/bin/python tools/vscode_grammar.py --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archdsl import vocabulary  # noqa: E402

GRAMMAR = ROOT / "editors" / "vscode" / "syntaxes" / "arch.tmLanguage.json"
NAME = r"[A-Za-z_][A-Za-z0-9_]*"
DECLARATIONS = {"arch": "entity.name.type.arch", "block": "entity.name.function.block.arch",
                "def": "entity.name.function.def.arch"}


def alternation(words) -> str:
    """`\\b(?:a|b|…)\\b`, longest first so that no word hides a longer one."""
    return r"\b(?:" + "|".join(sorted(set(words), key=lambda w: (-len(w), w))) + r")\b"


def statements(words: list[str]) -> list[dict]:
    """`arch`, `block` and `def` with the name they declare; the other statement words."""
    rules = [{"match": rf"\b({word})\s+({NAME})",
              "captures": {"1": {"name": f"keyword.other.{word}.arch"},
                           "2": {"name": scope}}}
             for word, scope in DECLARATIONS.items()]
    for word in words:
        kind = "control" if word in ("repeat", "as") else "other"
        rules.append({"match": rf"\b{word}\b", "name": f"keyword.{kind}.{word}.arch"})
    return rules


def repository(kinds, flags, words, statement_words) -> dict:
    not_a_call = alternation(kinds + statement_words)
    return {
        "comment": {"match": "(#).*$", "name": "comment.line.number-sign.arch",
                    "captures": {"1": {"name": "punctuation.definition.comment.arch"}}},
        "statement": {"patterns": statements(statement_words)},
        "combinator": {"patterns": [
            {"match": rf"({alternation(vocabulary.combinators())})\s*(<)",
             "captures": {"1": {"name": "keyword.control.combinator.arch"},
                          "2": {"name": "punctuation.section.combinator.begin.arch"}}},
            {"match": rf"({NAME})\s*(<)",
             "captures": {"1": {"name": "invalid.illegal.combinator.arch"},
                          "2": {"name": "punctuation.section.combinator.begin.arch"}}},
            {"match": "<", "name": "punctuation.section.combinator.begin.arch"},
            {"match": r"\|", "name": "punctuation.separator.branch.arch"},
            {"match": ">", "name": "punctuation.section.combinator.end.arch"}]},
        "parens": {"begin": r"\(", "end": r"\)", "name": "meta.parens.arch",
                   "beginCaptures": {"0": {"name": "punctuation.section.parens.begin.arch"}},
                   "endCaptures": {"0": {"name": "punctuation.section.parens.end.arch"}},
                   "patterns": [{"include": "#comment"},
                                {"match": alternation(vocabulary.expression_keywords()),
                                 "name": "keyword.control.conditional.arch"},
                                {"match": "<=|>=|==|!=|<|>",
                                 "name": "keyword.operator.comparison.arch"},
                                {"include": "#expression"}]},
        "call": {"patterns": [
            {"match": rf"{alternation(vocabulary.functions())}(?=\()",
             "name": "support.function.builtin.arch"},
            {"match": rf"\b{NAME}(?=\()", "name": "entity.name.function.call.arch"}]},
        "keyword-argument": {
            "match": rf"\b({NAME})\s*(=)(?!=)",
            "captures": {"1": {"name": "variable.parameter.keyword.arch"},
                         "2": {"name": "keyword.operator.assignment.arch"}}},
        "short-argument": {  # `k3`, `k1x7`; glued to an operator it is a name in a value
            "match": rf"(?<![-+*/%])\b([{''.join(flags)}])([0-9]+(?:x[0-9]+)*)\b(?![-+*/%])",
            "captures": {"1": {"name": "variable.parameter.short.arch"},
                         "2": {"name": "constant.numeric.integer.arch"}}},
        "layer-kind": {"match": alternation(kinds), "name": "support.function.layer.arch"},
        "block-call": {  # a name that starts a statement and is no kind nor keyword
            "match": rf"(?:^|(?<=[;{{<|]))\s*(?!{not_a_call})({NAME})\b(?!\s*[<(=])",
            "captures": {"1": {"name": "entity.name.function.call.arch"}}},
        "constant": {"patterns": [
            {"match": r"\b(?:true|false)\b", "name": "constant.language.boolean.arch"},
            {"match": alternation(words), "name": "constant.language.flag.arch"}]},
        "number": {"patterns": [
            {"match": r"\b[0-9]+(?:x[0-9]+)+(?![A-Za-z0-9_.])", "name": "constant.numeric.shape.arch"},
            {"match": r"(?:\b[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|\b[0-9]+[eE][-+]?[0-9]+",
             "name": "constant.numeric.float.arch"},
            {"match": r"\b[0-9]+", "name": "constant.numeric.integer.arch"}]},
        "operator": {"patterns": [
            {"match": "//|[-+*/%]", "name": "keyword.operator.arithmetic.arch"},
            {"match": "=", "name": "keyword.operator.assignment.arch"}]},
        "punctuation": {"patterns": [
            {"match": ";", "name": "punctuation.terminator.statement.arch"},
            {"match": ",", "name": "punctuation.separator.comma.arch"},
            {"match": r"\{", "name": "punctuation.section.block.begin.arch"},
            {"match": r"\}", "name": "punctuation.section.block.end.arch"},
            {"match": r"\)", "name": "punctuation.section.parens.end.arch"}]},
        "name": {"match": rf"\b{NAME}\b", "name": "variable.other.arch"},
        # what may stand where a value goes, inside or outside parentheses
        "expression": {"patterns": [
            {"include": "#parens"}, {"include": "#call"}, {"include": "#keyword-argument"},
            {"include": "#layer-kind"}, {"include": "#constant"}, {"include": "#name"},
            {"include": "#number"}, {"include": "#operator"}, {"include": "#punctuation"}]},
    }


def grammar() -> dict:
    """The TextMate grammar, as the JSON object VS Code reads."""
    statement_words = [w for w in vocabulary.keywords()
                       if w not in vocabulary.expression_keywords()]
    return {
        "$comment": "Generated by tools/vscode_grammar.py from archdsl's registry and "
                    "grammar; do not edit by hand.",
        "name": "archdsl",
        "scopeName": "source.arch",
        "fileTypes": ["arch"],
        "patterns": [{"include": f"#{name}"} for name in (
            "comment", "statement", "block-call", "combinator", "short-argument",
            "expression")],
        "repository": repository(vocabulary.layer_kinds(), vocabulary.flag_letters(),
                                 vocabulary.bare_words(), statement_words),
    }


def text() -> str:
    return json.dumps(grammar(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    if "--check" in argv:
        if not GRAMMAR.exists() or GRAMMAR.read_text() != text():
            print(f"{GRAMMAR.relative_to(ROOT)} is out of date: run tools/vscode_grammar.py")
            return 1
        print(f"{GRAMMAR.relative_to(ROOT)} is up to date")
        return 0
    GRAMMAR.parent.mkdir(parents=True, exist_ok=True)
    GRAMMAR.write_text(text())
    print(f"wrote {GRAMMAR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
