"""Evaluating the expressions of a spec (`c*2`, `num_classes`, `3x3`) in a scope of values."""

from __future__ import annotations

from typing import Any

from ..diagnostics import DiagnosticError, Span, did_you_mean, error
from ..layers.types import show
from ..syntax import BinOp, Name, Neg, Num, ShapeLit

TOO_LARGE = 10**15


class Word(str):
    """A bare word that names no parameter: `same`, `reflect`, `nobias`, `k3`, `true`."""


def evaluate(e, env: dict[str, Any], words_ok: bool = False):
    """The value of expression `e`; a bare word is a Word where `words_ok`, else an error."""
    if isinstance(e, Num):
        return e.value
    if isinstance(e, ShapeLit):
        return e.dims
    if isinstance(e, Name):
        return _name(e, env, words_ok)
    if isinstance(e, Neg):
        v = evaluate(e.operand, env)
        _need_number(v, e.operand.span)
        return -v
    if isinstance(e, BinOp):
        return _binary(e, evaluate(e.left, env), evaluate(e.right, env))
    raise AssertionError(f"unknown expression {e!r}")


def try_evaluate(e, env: dict[str, Any]):
    """The value of `e`, or None where it has an error (for estimates)."""
    try:
        return evaluate(e, env, words_ok=True)
    except DiagnosticError:
        return None


def _name(e: Name, env, words_ok: bool):
    if e.name in env:
        return env[e.name]
    if e.name in ("true", "false"):
        return e.name == "true"
    if words_ok:
        return Word(e.name)
    raise DiagnosticError(error("E-UNKNOWN-NAME", f"unknown name `{e.name}`", e.span,
                                hint=did_you_mean(e.name, env) or
                                (f"names in scope: {', '.join(sorted(env))}" if env
                                 else "no parameters are in scope here")))


def _binary(e: BinOp, left, right):
    _need_number(left, e.left.span)
    _need_number(right, e.right.span)
    if e.op in ("/", "//", "%") and right == 0:
        raise DiagnosticError(error("E-EXPR", "division by zero", e.right.span))
    if e.op == "+":
        return left + right
    if e.op == "-":
        return left - right
    if e.op == "*":
        result = left * right
        if abs(result) > TOO_LARGE:
            raise DiagnosticError(error("E-EXPR", "this value is too large", e.span))
        return result
    if e.op == "//":
        return left // right
    if e.op == "%":
        return left % right
    if isinstance(left, int) and isinstance(right, int) and left % right == 0:
        return left // right
    return left / right


def _need_number(v, span: Span):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DiagnosticError(error("E-EXPR", f"`{show(v)}` is not a number, so it cannot be used "
                                    "in arithmetic", span))
