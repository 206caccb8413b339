"""A layer statement's written arguments -> the kind's declared ones (Args), with a located
diagnostic for each that does not fit. Each argument type coerces its own values."""

from __future__ import annotations

import re
from typing import Any

from ..diagnostics import Diagnostic, DiagnosticError, Span, did_you_mean, error
from ..layers.base import Arg, Args
from ..layers.types import ArgumentError
from ..syntax import Keyword, Layer
from .expressions import Word, evaluate

_FLAG = re.compile(r"([a-z])([0-9]+(?:x[0-9]+)?)")


class _Resolution:
    """The arguments of one statement being resolved."""

    def __init__(self, kind, scope: dict[str, Any], diagnostics: list[Diagnostic]):
        self.kind, self.scope, self.diagnostics = kind, scope, diagnostics
        self.values: dict[str, Any] = {}
        self.spans: dict[str, Span] = {}
        self.ok = True
        self.by_name = {a.name: a for a in kind.args}

    def fail(self, diagnostic: Diagnostic) -> None:
        self.ok = False
        self.diagnostics.append(diagnostic)

    def put(self, arg_name: str, value, span: Span, value_span: Span | None = None) -> None:
        arg, kind = self.by_name[arg_name], self.kind
        if isinstance(value, Word) and arg.type.numeric and value not in arg.type.takes_words:
            self.fail(error("E-UNKNOWN-NAME", f"unknown name `{value}`", value_span or span,
                            hint=did_you_mean(value, self.scope) or (
                                f"names in scope: {', '.join(sorted(self.scope))}" if self.scope
                                else f"{kind.name} {arg_name} takes a number here")))
            return
        if arg_name in self.values:
            self.fail(error("E-ARG-DUPLICATE", f"`{arg_name}` is given twice", span,
                            hint=f"the first value is at column {self.spans[arg_name].column}"))
            return
        try:
            self.values[arg_name] = arg.type.coerce(arg, value, kind.name)
            self.spans[arg_name] = span
        except ArgumentError as exc:
            self.fail(error(exc.code, exc.message, span, hint=exc.hint))


def resolve(kind, st: Layer, scope: dict[str, Any],
            diagnostics: list[Diagnostic]) -> tuple[Args, dict[str, Span], bool]:
    """Map a layer's written arguments onto its declared ones; report what does not fit."""
    r = _Resolution(kind, scope, diagnostics)
    positional = list(kind.positional)
    for a in st.args:
        try:
            if isinstance(a, Keyword):
                _keyword(r, a)
                continue
            value = evaluate(a, scope, words_ok=True)
            if isinstance(value, Word):
                _word(r, str(value), a.span)
                continue
            if not positional:
                raise DiagnosticError(error(
                    "E-ARG-COUNT", f"{kind.name} takes no more positional values", a.span,
                    hint=argument_list(kind)))
            r.put(positional.pop(0), value, a.span)
        except DiagnosticError as exc:
            r.fail(exc.diagnostic)
    for arg in kind.args:
        if arg.name not in r.values:
            if arg.required:
                if r.ok:
                    diagnostics.append(error(
                        "E-ARG-MISSING", f"{kind.name} needs {arg.doc or arg.name}", st.span,
                        hint=_missing_hint(kind, arg)))
                r.ok = False
            else:
                r.values[arg.name] = arg.type.default(arg)
    return Args(r.values, frozenset(r.spans)), r.spans, r.ok


def _keyword(r: _Resolution, a: Keyword) -> None:
    kind = r.kind
    flags = kind.flags()
    target = a.name if a.name in r.by_name else flags.get(a.name)
    if target is None:
        choices = [x.name for x in kind.args] + list(flags) + list(kind.words)
        raise DiagnosticError(error("E-UNKNOWN-ARG", f"{kind.name} has no argument `{a.name}`",
                                    a.span, hint=did_you_mean(a.name, choices) or
                                    argument_list(kind)))
    r.put(target, evaluate(a.value, r.scope, words_ok=True), a.span, a.value.span)


def _word(r: _Resolution, word: str, span: Span) -> None:
    """A bare word: one the kind knows (`nobias`), a flag (`k3`, `s2`, `k1x7`), or a mistake."""
    kind = r.kind
    flags = kind.flags()
    if word in kind.words:
        target, fixed = kind.words[word]
        r.put(target, fixed, span)
        return
    m = _FLAG.fullmatch(word)
    if m and m.group(1) in flags:
        dims = tuple(int(d) for d in m.group(2).split("x"))
        r.put(flags[m.group(1)], dims[0] if len(dims) == 1 else dims, span)
        return
    if m and m.group(1) not in flags:
        hint = (f"{kind.name} has no `{m.group(1)}` flag; its flags are "
                + ", ".join(f"`{f}`" for f in flags)) if flags else f"{kind.name} takes no flags"
    else:
        hint = did_you_mean(word, list(kind.words) + list(r.scope)) or argument_list(kind)
    raise DiagnosticError(error("E-UNKNOWN-NAME", f"`{word}` is not a parameter, flag or word "
                                f"that {kind.name} knows", span, hint=hint))


def argument_list(kind) -> str:
    """`conv takes: out (positional), `kN` / kernel=, …` for hints."""
    parts = []
    for a in kind.args:
        if a.name in kind.positional:
            parts.append(f"{a.name} (positional)")
        elif a.flag:
            parts.append(f"`{a.flag}N` / {a.name}=")
        else:
            parts.append(f"{a.name}=")
    parts += [f"`{w}`" for w in kind.words]
    return f"{kind.name} takes: " + ", ".join(parts) if parts else f"{kind.name} takes no arguments"


def _missing_hint(kind, arg: Arg) -> str:
    if arg.flag:
        return f"add a flag such as `{arg.flag}3`, or `{arg.name}=…`"
    if arg.name in kind.positional:
        return f"write it after the name: `{kind.name} …`"
    return f"add `{arg.name}=…`"


def defaults(kind, **given) -> Args:
    """A kind's Args from its declared defaults, with `given` values (canonical) on top: what
    archdsl uses for the layers it inserts itself."""
    values = {a.name: given[a.name] if a.name in given else a.type.default(a) for a in kind.args}
    return Args(values)
