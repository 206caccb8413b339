"""Binding a block call's arguments to the block's parameters: one binder for expansion
(strict: every mistake is an error at the call) and for the size estimate (lenient)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import re

from ..diagnostics import DiagnosticError, did_you_mean, error
from ..syntax import BlockDef, Keyword, Layer
from .expressions import Word, evaluate, outside_index_hint, try_evaluate

_FLAG = re.compile(r"([A-Za-z_])([0-9]+(?:x[0-9]+)?)")


@dataclass
class Binding:
    """The values inside a block call, and what the call wrote (for its label)."""

    values: dict[str, Any]
    given: dict[str, Any] = field(default_factory=dict)
    by_keyword: set[str] = field(default_factory=set)

    def label(self, block: BlockDef) -> str:
        """The call as written, with its values resolved: `inverted 16 24 6 s=2`."""
        from ..layers.types import show

        return " ".join([block.name] + [
            f"{p.name}={show(self.given[p.name])}" if p.name in self.by_keyword
            else show(self.given[p.name]) for p in block.params if p.name in self.given])


def bind(block: BlockDef, call: Layer, scope: dict[str, Any], arch: dict[str, Any],
         strict: bool = True) -> Binding:
    """The block's scope for `call`: the arch parameters, then the call's arguments (evaluated
    in the caller's `scope`), then the defaults. Strict raises DiagnosticError at the first
    mistake; lenient (for estimates) leaves a value out or None instead."""
    value = (lambda e, env: evaluate(e, env, words_ok=True)) if strict else try_evaluate
    names = [p.name for p in block.params]
    b = Binding(dict(arch))
    positional = [a for a in call.args if not isinstance(a, Keyword)]
    if strict and len(positional) > len(names):
        extra = positional[len(names)]
        raise DiagnosticError(error("E-ARG-COUNT", f"block `{block.name}` takes {len(names)} "
                                    f"argument{'s' if len(names) != 1 else ''}, but "
                                    f"{len(positional)} were given", extra.span,
                                    hint=f"its parameters are ({', '.join(names)})"))
    for p, a in zip(block.params, positional):
        b.given[p.name] = value(a, scope)
        if strict:
            _no_flag(block, names, b.given[p.name], a)
            _no_stray_index(b.given[p.name], a)
    for a in call.args:
        if not isinstance(a, Keyword):
            continue
        if strict and a.name not in names:
            raise DiagnosticError(error(
                "E-UNKNOWN-ARG", f"block `{block.name}` has no parameter `{a.name}`", a.span,
                hint=did_you_mean(a.name, names) or f"its parameters are ({', '.join(names)})"))
        if strict and a.name in b.given:
            raise DiagnosticError(error("E-ARG-DUPLICATE", f"`{a.name}` is given twice", a.span))
        b.given[a.name] = value(a.value, scope)
        b.by_keyword.add(a.name)
        if strict:
            _no_stray_index(b.given[a.name], a.value)
    for p in block.params:
        if p.name in b.given:
            b.values[p.name] = b.given[p.name]
        elif p.default is not None:
            b.values[p.name] = value(p.default, b.values)
        elif strict:
            raise DiagnosticError(error(
                "E-ARG-COUNT", f"block `{block.name}` needs a value for `{p.name}`", call.span,
                hint=f"call it as `{block.name} {' '.join(names)}`"))
    return b


def _no_flag(block: BlockDef, names: list[str], value, written) -> None:
    """A word such as `s2` given to a block whose parameter is `s`: flags belong to layer
    kinds, so this is a mistake at the call, not a word to pass on (`s=2` was meant)."""
    m = _FLAG.fullmatch(value) if isinstance(value, Word) else None
    if m is None or m.group(1) not in names:
        return
    name, number = m.groups()
    raise DiagnosticError(error(
        "E-UNKNOWN-NAME", f"`{value}` looks like a flag, but block `{block.name}` takes no "
        f"flags", written.span, hint=f"set its parameter `{name}` with a keyword: `{name}={number}`"))


def _no_stray_index(value, written) -> None:
    """A repeat's index passed to a block outside that repeat: an error at the call, rather
    than a word that the block's body would stumble on."""
    from .. import layers

    hint = outside_index_hint(value) if isinstance(value, Word) else None
    if hint is not None and layers.get(value) is None:
        raise DiagnosticError(error("E-UNKNOWN-NAME", f"unknown name `{value}`", written.span,
                                    hint=hint))
