"""The names a spec declares, checked before it expands: a parameter list that names one
parameter twice (`arch a(c=4, c=16)`: the last silently won), a keyword used as a name
(`block repeat(c)`: every call is then a syntax error), and a name that hides one of the
language's own (`def max(…)`, a parameter `true`)."""

from __future__ import annotations

import re

from .diagnostics import Diagnostic, Span, error, warning
from .syntax_tree import Param, Spec

VALUES = ("true", "false")


def declaration_problems(spec: Spec, functions: dict) -> list[Diagnostic]:
    """Duplicate parameters (errors) and names that hide the language's own (warnings):
    `functions` are the built-in ones, name -> (…, usage)."""
    found: list[Diagnostic] = []
    lists = [("the `arch` header", spec.arch.params if spec.arch else ())]
    lists += [(f"block `{b.name}`", b.params) for b in spec.blocks.values()]
    lists += [(f"`def {f.name}`", f.params) for f in spec.functions.values()]
    for owner, params in lists:
        found += _twice(owner, params)
        found += [warning("W-HIDDEN-NAME", f"the parameter `{p.name}` of {owner} hides the "
                          f"value {p.name}: where the parameter is in scope, `{p.name}` is its "
                          "value", p.span,
                          hint=f"rename the parameter, e.g. `{p.name}_value`")
                  for p in params if p.name in VALUES]
    found += [warning("W-HIDDEN-NAME", f"`def {f.name}` hides the built-in function "
                      f"`{f.name}` ({functions[f.name][3]}) everywhere in the spec", f.name_span,
                      hint=f"rename it, e.g. `my_{f.name}`")
              for f in spec.functions.values() if f.name in functions]
    return found


def _twice(owner: str, params: tuple[Param, ...]) -> list[Diagnostic]:
    first: dict[str, Param] = {}
    found = []
    for p in params:
        if p.name in first:
            found.append(error(
                "E-DUPLICATE", f"{owner} declares the parameter `{p.name}` twice", p.span,
                hint=f"the first is at column {first[p.name].span.column}; give each "
                     "parameter a name of its own"))
        else:
            first[p.name] = p
    return found


def keyword_names(source: str, file: str, terminals) -> list[Diagnostic]:
    """`block repeat(c) { … }`, `def if(x) = …`: a keyword (a word among the parser's
    `terminals`) declared as a name, found in the text, so that the learner is told about the
    definition before the syntax errors of its calls."""
    words = "|".join(sorted(t.pattern.value for t in terminals
                            if t.pattern.type == "str" and t.pattern.value.isalpha()))
    found = []
    for m in re.finditer(rf"(?m)^[ \t]*(block|def)[ \t]+({words})\b", source):
        line = source.count("\n", 0, m.start(2)) + 1
        column = m.start(2) - (source.rfind("\n", 0, m.start(2)) + 1) + 1
        found.append(error(
            "E-DUPLICATE", f"`{m.group(2)}` is a keyword of the language, so a {m.group(1)} "
            "cannot take that name", Span(file, line, column, line, column + len(m.group(2))),
            hint=f"rename it, e.g. `my_{m.group(2)}`: each use of `{m.group(2)}` reads as the "
                 "keyword"))
    return found
