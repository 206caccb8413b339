"""Writes the layer-kind reference of docs/language.md from the layer registry.

    .venv/bin/python docs/gen_layers.py          # rewrite the section
    .venv/bin/python docs/gen_layers.py --check  # exit 1 if the section is out of date

Everything a layer kind declares is read from `archdsl.layers.REGISTRY`: its arguments, how
each is written, types, defaults, ranges, words, family, whether lints treat it as nonlinear,
its one-line summary, and the rules that live in its code (shape, parameters, buffers, MACs,
receptive field, errors) written out in words in its class's `reference` (see
`LayerKind.reference` in archdsl/layers/base.py). The script refuses a kind that overrides
`rules` (or is a merge) but keeps the identity's default `reference`, or whose `reference`
has a key it does not know, so a new layer cannot be added without documenting it.

The section lies between `<!-- gen_layers:start -->` and `<!-- gen_layers:end -->`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archdsl import layers  # noqa: E402
from archdsl.layers.base import (BOOL, CHOICE, FLOAT, INT, PADDING, PAIR,  # noqa: E402
                                 UNCHANGED_FIELD, LayerKind)
from archdsl.layers.merge import MergeKind, combinator, combinator_names  # noqa: E402

DOC = ROOT / "docs" / "language.md"
START, END = "<!-- gen_layers:start -->", "<!-- gen_layers:end -->"

FAMILIES = [
    ("conv", "Convolution"),
    ("linear", "Fully connected"),
    ("norm", "Normalisation"),
    ("pool", "Pooling"),
    ("activation", "Activations"),
    ("shape", "Flatten, dropout, identity"),
    ("merge", "Merges (written as combinators)"),
    ("arith", "Arithmetic"),
]

REFERENCE_KEYS = {"input", "shape", "params", "buffers", "macs", "rf", "errors"}


def type_text(arg) -> str:
    if hasattr(arg.type, "doc"):  # a type declared beside its kinds (archdsl/layers/reshape.py)
        return arg.type.doc
    return {
        INT: "whole number", FLOAT: "number", BOOL: "`true` / `false`", PAIR: "`N` or `HxW`",
        PADDING: "`N`, `HxW`, `same` or `valid`",
        CHOICE: " / ".join(f"`{c}`" for c in arg.choices),
    }[arg.type]


def value_text(v) -> str:
    if isinstance(v, bool):
        return "`true`" if v else "`false`"
    if isinstance(v, float):
        return f"`{v:g}`"
    return f"`{v}`"


def default_text(arg) -> str:
    if arg.required:
        return "required"
    if arg.default is None:
        return getattr(arg.type, "default_doc", "the kernel")
    return value_text(arg.default)


def range_text(arg) -> str:
    lo, hi = arg.min, arg.max
    if lo is not None and hi is not None:
        return f"{lo:g} … {hi:g}"
    if lo is not None:
        return f"≥ {lo:g}"
    if hi is not None:
        return f"≤ {hi:g}"
    return ""


def written_text(kind, arg) -> str:
    forms = []
    if arg.name in kind.positional:
        i = kind.positional.index(arg.name)
        forms.append(f"positional{'' if len(kind.positional) == 1 else f' #{i + 1}'}: "
                     f"`{kind.name} {_example(arg)}`")
    if arg.flag:
        forms.append(f"`{arg.flag}N`" + (" / `{0}HxW`".format(arg.flag) if arg.type in (PAIR, PADDING)
                                          else ""))
        forms.append(f"`{arg.flag}=…`")
    forms.append(f"`{arg.name}=…`")
    return ", ".join(forms)


def _example(arg) -> str:
    return {"out": "64", "kernel": "3", "size": "7" if arg.type == PAIR else "5", "p": "0.5",
            "slope": "0.2", "alpha": "1.0", "groups": "32"}.get(arg.name, "…")


def summary_sentence(summary: str) -> str:
    """The summary as a sentence. One that starts with maths (`max(0, x)`, `x·sigmoid(x)`,
    `x for x > 0, …`) keeps its case, after `Output: `; words get a capital."""
    first = summary.split(" ", 1)[0]
    if first in ("x", "y") or any(c in first for c in "()·/^+"):
        return f"Output: {summary}."
    return f"{summary[0].upper()}{summary[1:]}."


def render_kind(kind) -> list[str]:
    rules = kind.reference
    out = [f"#### `{kind.name}`", "", summary_sentence(kind.summary)]
    out.append("")
    facts = []
    if not kind.merges:
        facts.append(f"Input: {rules.get('input', 'a feature map or a vector')}.")
    lint_role = []
    if kind.weighted:
        lint_role.append("weighted (W-NO-NONLINEARITY, W-BIAS-BEFORE-BN and W-DEEP-PLAIN count it)")
    lint_role.append("nonlinear (it breaks a chain of linear maps)" if kind.nonlinear
                     else "not nonlinear")
    if kind.normalises:
        lint_role.append("normalisation (it resets W-DEEP-PLAIN's count)")
    facts.append("For the lints: " + "; ".join(lint_role) + ".")
    out += [" ".join(facts), ""]
    if kind.args:
        out += ["| argument | written as | type | default | range | meaning |",
                "|---|---|---|---|---|---|"]
        for a in kind.args:
            out.append(f"| `{a.name}` | {written_text(kind, a)} | {type_text(a)} | "
                       f"{default_text(a)} | {range_text(a)} | {a.doc} |")
        out.append("")
    elif not kind.merges:
        out += ["No arguments.", ""]
    if kind.words:
        words = ", ".join(f"`{w}` = `{target}={value_text(v).strip('`')}`"
                          for w, (target, v) in kind.words.items())
        out += [f"Words: {words}.", ""]
    out.append(f"- **Shape:** {rules['shape']}.")
    out.append(f"- **Parameters:** {rules.get('params', '0')}.")
    out.append(f"- **Buffers:** {rules.get('buffers', '0')}.")
    out.append(f"- **MACs:** {rules.get('macs', '0')}.")
    out.append(f"- **Receptive field:** {rules.get('rf', UNCHANGED_FIELD)}.")
    if "errors" in rules:
        out.append(f"- **Errors:** {rules['errors']}.")
    out.append("")
    return out


def check_reference(kind) -> None:
    """Refuse a kind whose `reference` was forgotten (a shape rule of its own, or a merge's,
    documented as the identity's default), lacks the shape, or has keys this script does not
    write."""
    where = f"layer kind {kind.name!r} ({type(kind).__name__})"
    own_shape = type(kind).rules is not LayerKind.rules or isinstance(kind, MergeKind)
    if own_shape and kind.reference is LayerKind.reference:
        raise SystemExit(f"{where} has a shape rule of its own but no `reference`: describe its "
                         "rules in its class (see LayerKind.reference in archdsl/layers/base.py)")
    unknown = sorted(set(kind.reference) - REFERENCE_KEYS)
    if unknown:
        raise SystemExit(f"{where}: `reference` has unknown keys {unknown}; the keys are "
                         f"{sorted(REFERENCE_KEYS)}")
    if "shape" not in kind.reference:
        raise SystemExit(f"{where}: `reference` has no \"shape\"")


def merge_sentence() -> str:
    """Which combinators the merge kinds close, and which merge with a kind of another name."""
    names = combinator_names()
    borrowed: dict[str, list[str]] = {}
    for name in names:
        merge = combinator(name).merge_name
        if merge != name:
            borrowed.setdefault(merge, []).append(name)
    return (f"These kinds are where the branches of {_and(f'`{n}< >`' for n in names)} meet; "
            "they cannot be written as layers (`add 3` is E-COMBINATOR). "
            + " ".join(f"{_and(f'`{n}< >`' for n in users)} merge{'s' if len(users) == 1 else ''} "
                       f"with `{merge}`." for merge, users in borrowed.items()))


def _and(items) -> str:
    """`a`, `a and b`, `a, b and c`."""
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def render() -> str:
    registry = layers.REGISTRY
    for kind in registry.values():
        check_reference(kind)
    known = {f for f, _ in FAMILIES}
    odd = sorted({k.family for k in registry.values()} - known)
    if odd:
        raise SystemExit(f"docs/gen_layers.py knows no family {odd}")
    out = ["<!-- Generated by docs/gen_layers.py from archdsl/layers/: edit the code or the "
           "script, not this section. -->", "",
           "### All layer kinds at a glance", "",
           "| kind | family | positional | flags | words | what it is |", "|---|---|---|---|---|---|"]
    for family, _ in FAMILIES:
        for kind in registry.values():
            if kind.family != family:
                continue
            flags = " ".join(f"`{f}`" for f in kind.flags()) or ""
            pos = " ".join(f"`{p}`" for p in kind.positional)
            words = " ".join(f"`{w}`" for w in kind.words)
            name = f"`{kind.name}`" if family != "merge" else f"`{kind.name}<…>`"
            out.append(f"| {name} | {family} | {pos} | {flags} | {words} | {kind.summary} |")
    out.append("")
    for family, title in FAMILIES:
        out += [f"### {title}", ""]
        if family == "merge":
            out += [merge_sentence(), ""]
        for kind in registry.values():
            if kind.family == family:
                out += render_kind(kind)
    out += render_prelude()
    return "\n".join(out).rstrip("\n") + "\n"


def render_prelude() -> list[str]:
    """The prelude's blocks (archdsl/prelude.arch): each one's comment, header and body."""
    from archdsl import prelude

    out = ["### Prelude blocks", "",
           "Blocks written in the language itself (archdsl/prelude.arch), callable from any spec "
           "by name where the spec has no block or layer kind of that name. A layer or an error "
           "inside one is reported at the call.", ""]
    lines = prelude.PATH.read_text().splitlines()
    for name, block in sorted(prelude.blocks().items()):
        start, end = block.span.line - 1, block.span.end_line
        comment = []
        for line in reversed(lines[:start]):
            if not line.startswith("#"):
                break
            comment.insert(0, line[1:].strip())
        params = ", ".join(f"`{p.name}`" for p in block.params) or "none"
        out += [f"#### `{name}`", "", " ".join(comment), "", f"Parameters: {params}.", "",
                "```", *lines[start:end], "```", ""]
    return out


def splice(doc: str, section: str) -> str:
    if START not in doc or END not in doc:
        raise SystemExit(f"{DOC} has no {START} … {END} markers")
    before, rest = doc.split(START, 1)
    after = rest.split(END, 1)[1]
    return f"{before}{START}\n{section}{END}{after}"


def main(argv: list[str]) -> int:
    doc = DOC.read_text()
    new = splice(doc, render())
    if "--check" in argv:
        if new != doc:
            print(f"{DOC.relative_to(ROOT)} is out of date: run .venv/bin/python docs/gen_layers.py")
            return 1
        print(f"{DOC.relative_to(ROOT)} is up to date")
        return 0
    DOC.write_text(new)
    print(f"wrote the layer reference into {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
