"""A layer statement's written arguments -> the kind's declared ones (Args), with a located
diagnostic for each that does not fit. Each argument type coerces its own values."""

from __future__ import annotations

import re
from typing import Any

from .. import layers
from ..diagnostics import Diagnostic, DiagnosticError, Span, did_you_mean, error, span_text
from ..layers import habits
from ..layers.base import Arg, Args
from ..layers.merge import MergeKind
from ..layers.types import ArgumentError
from ..syntax import LITERAL_RANGE, Keyword, Layer, Name, literal_value
from .expressions import Word, evaluate, outside_index_hint

_FLAG = re.compile(r"([a-z])([0-9]+(?:x[0-9]+)?)")


class _Resolution:
    """The arguments of one statement being resolved."""

    def __init__(self, kind, scope: dict[str, Any], diagnostics: list[Diagnostic], st: Layer,
                 source: str | None):
        self.kind, self.scope, self.diagnostics = kind, scope, diagnostics
        self.st, self.source = st, source  # the statement and its file's text, for hints
        self.values: dict[str, Any] = {}
        self.spans: dict[str, Span] = {}
        self.ok = True
        self.by_name = {a.name: a for a in kind.args}
        self.held: dict[str, tuple[str, str]] = {}  # argument -> (parameter, the word it held)
        self.positional: list = []  # the positional values written: (expression, value)

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
            hint = (layer_hint(value) or _python_boolean(kind, arg, value)
                    if isinstance(value, Word) else None) or exc.hint
            self.fail(error(exc.code, exc.message, span, hint=hint))

    def text(self, node) -> str | None:
        """The written text of an argument or value (None without the file's text)."""
        return None if self.source is None else span_text(self.source, node.span)

    def rewritten(self, words: dict[int, str | None], after: int | None = None,
                  insert: str | None = None) -> str | None:
        """The statement as written, with the argument at index i replaced by `words[i]`
        (left out where that is None), and `insert` put after the argument at index `after`
        (-1: first); None without the file's text."""
        if self.source is None:
            return None
        out = [span_text(self.source, self.st.op_span)]
        if after == -1 and insert:
            out.append(insert)
        for i, a in enumerate(self.st.args):
            word = words[i] if i in words else span_text(self.source, a.span)
            if word:
                out.append(word)
            if i == after and insert:
                out.append(insert)
        return " ".join(out)


def resolve(kind, st: Layer, scope: dict[str, Any], diagnostics: list[Diagnostic],
            blocks=(), source: str | None = None) -> tuple[Args, dict[str, Span], bool]:
    """Map a layer's written arguments onto its declared ones; report what does not fit.
    `blocks` are the spec's block names (a stray one among the arguments is a missing `;`);
    `source` is the file's text, from which a hint writes the statement corrected."""
    r = _Resolution(kind, scope, diagnostics, st, source)
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
            r.positional.append((a, value))
            if positional:
                r.put(positional.pop(0), value, a.span)
        except DiagnosticError as exc:
            r.fail(exc.diagnostic)
    if len(r.positional) > len(kind.positional):
        r.fail(_too_many(r))
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


def _too_many(r: _Resolution) -> Diagnostic:
    """E-ARG-COUNT for more positional values than the kind takes, read as other frameworks
    order them (`kind.orders`): `linear 8192 10` as nn.Linear(in, out) leaves out 8192, `conv 64
    3 p1` as Keras's Conv2D(filters, kernel_size) writes the kernel as a flag. The caret is under
    the first value to leave out or to move, and the hint writes the statement corrected."""
    kind, exprs = r.kind, [e for e, _ in r.positional]
    own = kind.positional[:len(exprs)]
    given = set(r.spans) - set(own)
    found = habits.readings(kind, [v for _, v in r.positional], given)
    message = f"{kind.name} takes no more positional values"
    first_extra = exprs[len(kind.positional)].span
    hidden = next((e for e in exprs if isinstance(e, Name) and (
        e.name in kind.words or _FLAG.fullmatch(e.name) and e.name[0] in kind.flags())), None)
    if hidden is not None:  # `conv 8 k3 same` where a parameter is named `same`
        return error("E-ARG-COUNT", message, hidden.span, hint=(
            f"the parameter `{hidden.name}` hides {kind.name}'s own `{hidden.name}`, and its value "
            "is read as a positional value: rename the parameter"))
    if len(found) == 1 and r.source is not None:
        (reading,) = found
        at = next((i for i, name in enumerate(reading.names)
                   if name == habits.INPUT or name not in kind.positional), len(kind.positional))
        return error("E-ARG-COUNT", message, exprs[at].span, hint=_reading_hint(r, reading))
    if found and r.source is not None:
        hint = "; ".join(f"in the order of {reading.framework}: `{_read(r, reading)[0]}`"
                         for reading in found)
        return error("E-ARG-COUNT", message, first_extra, hint=hint)
    return error("E-ARG-COUNT", message, first_extra, hint=argument_list(kind))


def _read(r: _Resolution, reading) -> tuple[str, list[str], list[Arg]]:
    """The statement with its positional values as `reading` takes them: the statement, the
    input sizes left out, and the arguments moved out of the positional values."""
    kind = r.kind
    by_name = {a.name: a for a in kind.args}
    index = {id(e): i for i, e in enumerate(r.st.args)}
    words: dict[int, str | None] = {}
    dropped, moved = [], []
    for (expr, _), name in zip(r.positional, reading.names):
        text = r.text(expr)
        if name == habits.INPUT:
            words[index[id(expr)]] = None
            dropped.append(text)
        elif name not in kind.positional:
            words[index[id(expr)]] = habits.written(kind, by_name[name], text)
            moved.append(by_name[name])
    return r.rewritten(words), dropped, moved


def _reading_hint(r: _Resolution, reading) -> str:
    """`leave out `8192` (`linear 10`)`, `the kernel is a flag: `conv 64 k3 p1``, or both."""
    statement, dropped, moved = _read(r, reading)
    inferred = "input sizes are inferred from the layer before and need not be written"
    if not moved:
        return f"{inferred}: leave out {_listed(dropped)} (`{statement}`)"
    one = len(moved) == 1
    if all(a.flag for a in moved):
        what = _listed([f"the {a.name.replace('_', ' ')}" for a in moved], "")
        how = "is a flag" if one else "are flags"
    else:
        what, how = _listed([a.name for a in moved]), "is named" if one else "are named"
    return f"{inferred + ', and ' if dropped else ''}{what} {how}: `{statement}`"


def _listed(texts: list[str], quote: str = "`") -> str:
    """`a`, `b` and `c`."""
    quoted = [f"{quote}{t}{quote}" for t in texts]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _python_boolean(kind, arg: Arg, value: str) -> str | None:
    """For `bias=False` (Python's spelling): archdsl's, in lower case, or the kind's word."""
    if value not in ("True", "False"):
        return None
    better = habits.written(kind, arg, value)
    lower = f"`{arg.name}={value.lower()}`"
    return f"archdsl writes true and false in lower case: {lower}" + (
        f", or the word `{better}`" if "=" not in better else "")


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
                if stray else _keyword_habit(r, a))
        raise DiagnosticError(error("E-UNKNOWN-ARG", f"{kind.name} has no argument `{a.name}`",
                                    a.span, hint=hint or did_you_mean(a.name, choices) or
                                    argument_list(kind)))
    r.put(target, evaluate(a.value, r.scope, words_ok=True), a.span, a.value.span,
          via=_parameter(a.value, r.scope))


def _keyword_habit(r: _Resolution, a: Keyword) -> str | None:
    """For a keyword of another framework (`kernel_size=3`, `filters=64`, `in_channels=3`,
    `inplace=True`): how archdsl writes it, with the exact replacement; None for others."""
    kind, text = r.kind, r.text(a.value)
    if text is None:
        return None
    index = r.st.args.index(a)
    if a.name in habits.INFERRED:
        return (f"archdsl infers `{a.name}` from the layer before: leave it out "
                f"(`{r.rewritten({index: None})}`)")
    arg = habits.argument_called(kind, a.name)
    if arg is None:
        reason = habits.DECIDED.get(a.name)
        return reason and f"{reason}: leave out `{a.name}=…` (`{r.rewritten({index: None})}`)"
    if arg.name in kind.positional:
        place = kind.positional.index(arg.name)
        before = [i for i, x in enumerate(r.st.args) if _is_value(x, r.scope)]
        if place == len(before):  # the next positional value: written there, without a name
            after = before[-1] if before else -1
            return (f"archdsl writes {kind.name}'s {arg.name} as a positional value: "
                    f"`{r.rewritten({index: None}, after, text)}`")
    return f"archdsl writes `{span_text(r.source, a.span)}` as `{habits.written(kind, arg, text)}`"


def _is_value(expr, scope: dict[str, Any]) -> bool:
    """Whether a written argument is a positional value (not a keyword, flag or word)."""
    if isinstance(expr, Keyword):
        return False
    try:
        return not isinstance(evaluate(expr, scope, words_ok=True), Word)
    except DiagnosticError:
        return True


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
    elif habits.glued(kind, word) is not None:
        arg, number = habits.glued(kind, word)
        hint = (f"archdsl writes the {arg.name.replace('_', ' ')} as "
                f"`{habits.written(kind, arg, number)}`")
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
