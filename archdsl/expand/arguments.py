"""A layer statement's written arguments -> the kind's declared ones (Args), with a located
diagnostic for each that does not fit. Each argument type coerces its own values."""

from __future__ import annotations

import re
from typing import Any

from .. import layers
from ..diagnostics import Diagnostic, DiagnosticError, Span, did_you_mean, error
from ..layers.base import Arg, Args
from ..layers.merge import MergeKind
from ..layers.types import ArgumentError
from ..syntax import LITERAL_RANGE, Keyword, Layer, Name, literal_value
from .expressions import Word, evaluate, outside_index_hint

_FLAG = re.compile(r"([a-z])([0-9]+(?:x[0-9]+)?)")


class _Resolution:
    """The arguments of one statement being resolved."""

    def __init__(self, kind, scope: dict[str, Any], diagnostics: list[Diagnostic]):
        self.kind, self.scope, self.diagnostics = kind, scope, diagnostics
        self.values: dict[str, Any] = {}
        self.spans: dict[str, Span] = {}
        self.ok = True
        self.by_name = {a.name: a for a in kind.args}
        self.held: dict[str, tuple[str, str]] = {}  # argument -> (parameter, the word it held)
        self.positional: list = []  # the positional values written, in order

    def fail(self, diagnostic: Diagnostic) -> None:
        self.ok = False
        self.diagnostics.append(diagnostic)

    def put(self, arg_name: str, value, span: Span, value_span: Span | None = None,
            via: str | None = None) -> None:
        """Give argument `arg_name` its value; `via` is the parameter the value was read from
        when it was written as one (`k=mode`)."""
        arg, kind = self.by_name[arg_name], self.kind
        if isinstance(value, Word) and arg.type.numeric and value not in arg.type.takes_words:
            message = f"unknown name `{value}`"
            hint = layer_hint(value) or outside_index_hint(value) or \
                did_you_mean(value, self.scope) or (
                f"names in scope: {', '.join(sorted(self.scope))}" if self.scope
                else f"{kind.name} {arg_name} takes a number here")
            if via is not None:
                message = (f"the parameter `{via}` holds the word `{value}`, but {kind.name} "
                           f"{arg_name} takes a number")
                hint = f"give `{via}` a number, or write a number here"
            self.fail(error("E-UNKNOWN-NAME", message, value_span or span, hint=hint))
            return
        if arg_name in self.values:
            self.fail(error("E-ARG-DUPLICATE", f"`{arg_name}` is given twice", span,
                            hint=f"the first value is at column {self.spans[arg_name].column}"))
            return
        try:
            self.values[arg_name] = arg.type.coerce(arg, value, kind.name)
            self.spans[arg_name] = span
        except ArgumentError as exc:
            hint = (layer_hint(value) if isinstance(value, Word) else None) or exc.hint
            self.fail(error(exc.code, exc.message, span, hint=hint))


def resolve(kind, st: Layer, scope: dict[str, Any], diagnostics: list[Diagnostic],
            blocks=()) -> tuple[Args, dict[str, Span], bool]:
    """Map a layer's written arguments onto its declared ones; report what does not fit.
    `blocks` are the spec's block names (a stray one among the arguments is a missing `;`)."""
    r = _Resolution(kind, scope, diagnostics)
    positional = list(kind.positional)
    for a in st.args:
        try:
            if isinstance(a, Keyword):
                _keyword(r, a)
                continue
            value = evaluate(a, scope, words_ok=True)
            if isinstance(value, Word):
                _word(r, str(value), a.span, blocks, _parameter(a, scope))
                continue
            r.positional.append(value)
            if not positional:
                raise DiagnosticError(error(
                    "E-ARG-COUNT", f"{kind.name} takes no more positional values", a.span,
                    hint=_inferred_size_hint(kind, r.positional) or argument_list(kind)))
            r.put(positional.pop(0), value, a.span)
        except DiagnosticError as exc:
            r.fail(exc.diagnostic)
    for arg in kind.args:
        if arg.name not in r.values:
            if arg.required:
                if r.ok:
                    diagnostics.append(error(
                        "E-ARG-MISSING", f"{kind.name} needs {arg.doc or arg.name}", st.span,
                        hint=_held_hint(r, arg) or _missing_hint(kind, arg)))
                r.ok = False
            else:
                r.values[arg.name] = arg.type.default(arg)
    return Args(r.values, frozenset(r.spans)), r.spans, r.ok


def _parameter(expr, scope: dict[str, Any]) -> str | None:
    """The parameter an argument was written as (`mode` in `conv 8 mode`), if it was."""
    return expr.name if isinstance(expr, Name) and expr.name in scope else None


def layer_hint(word: str, blocks=()) -> str | None:
    """For a layer kind or block written among another layer's arguments: the `;` that is
    probably missing before it."""
    kind = layers.get(word)
    if (kind is None or isinstance(kind, MergeKind)) and word not in blocks:
        return None
    return f"a `;` or a new line is probably missing before `{word}`: `…; {word}`"


def _inferred_size_hint(kind, values: list) -> str | None:
    """For `linear 8192 10` or `bn 16`: input sizes are inferred, so leave them out. The kind
    says where its torch twin takes that size (`input_size_in_torch`: nn.Linear(8192, 10)
    first, nn.GroupNorm(32, 256) last)."""
    where = kind.input_size_in_torch
    if where is None or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return None
    keep = values[1:] if where == "first" else values[:-1]
    dropped = values[0] if where == "first" else values[-1]
    written = " ".join([kind.name] + [str(v) for v in keep])
    return (f"input sizes are inferred from the layer before and need not be written: "
            f"leave out `{dropped}` (`{written}`)")


def _held_hint(r: _Resolution, arg: Arg) -> str | None:
    """When a positional argument is missing because a parameter's word took another place
    (`conv mode k1` with mode=reflect is `padding_mode=reflect`): say so."""
    if arg.name not in r.kind.positional or not r.held:
        return None
    target, (param, word) = next(iter(r.held.items()))
    return (f"the parameter `{param}` holds the word `{word}`, which {r.kind.name} read as "
            f"`{target}={word}`, not as its {arg.doc or arg.name}")


def _keyword(r: _Resolution, a: Keyword) -> None:
    kind = r.kind
    flags = kind.flags()
    target = a.name if a.name in r.by_name else flags.get(a.name)
    if target is None:
        choices = [x.name for x in kind.args] + list(flags) + list(kind.words)
        stray = a.name if layer_hint(a.name) else (
            a.value.name if isinstance(a.value, Name) and a.value.name not in r.scope
            and layer_hint(a.value.name) else None)
        hint = (f"`{stray}` is a layer of its own: end this layer and write `; {stray}`"
                if stray else None)
        raise DiagnosticError(error("E-UNKNOWN-ARG", f"{kind.name} has no argument `{a.name}`",
                                    a.span, hint=hint or did_you_mean(a.name, choices) or
                                    argument_list(kind)))
    r.put(target, evaluate(a.value, r.scope, words_ok=True), a.span, a.value.span,
          via=_parameter(a.value, r.scope))


def _word(r: _Resolution, word: str, span: Span, blocks=(), via: str | None = None) -> None:
    """A bare word: one the kind knows (`nobias`), a flag (`k3`, `s2`, `k1x7`), or a mistake.
    `via` is the parameter that held the word, when it was written as one."""
    kind = r.kind
    flags = kind.flags()
    if word in kind.words:
        target, fixed = kind.words[word]
        if via is not None:
            r.held.setdefault(target, (via, word))
        r.put(target, fixed, span)
        return
    m = _FLAG.fullmatch(word)
    if m and m.group(1) in flags:
        dims = tuple(literal_value(d) for d in m.group(2).split("x"))
        if None in dims:  # digits beyond a float's range, as a literal's would be
            raise DiagnosticError(error("E-EXPR", f"the number in `{word}` is too large", span,
                                        hint=LITERAL_RANGE))
        r.put(flags[m.group(1)], dims[0] if len(dims) == 1 else dims, span)
        return
    message = f"`{word}` is not a parameter, flag or word that {kind.name} knows"
    if via is not None:
        message = (f"the parameter `{via}` holds the word `{word}`, which is not a flag or word "
                   f"that {kind.name} knows")
        hint = argument_list(kind)
    elif layer_hint(word, blocks):
        what = "a block" if word in blocks else "a layer kind"
        message = f"`{word}` is {what}, not an argument of {kind.name}"
        hint = layer_hint(word, blocks)
    elif m and m.group(1) not in flags:
        hint = (f"{kind.name} has no `{m.group(1)}` flag; its flags are "
                + ", ".join(f"`{f}`" for f in flags)) if flags else f"{kind.name} takes no flags"
    else:
        hint = outside_index_hint(word) or did_you_mean(word, list(kind.words) + list(r.scope)) \
            or argument_list(kind)
    raise DiagnosticError(error("E-UNKNOWN-NAME", message, span, hint=hint))


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
