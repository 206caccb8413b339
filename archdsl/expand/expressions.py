"""Evaluating the expressions of a spec (`c*2`, `num_classes`, `3x3`) in a scope of values."""

from __future__ import annotations

import math
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from ..diagnostics import DiagnosticError, Span, did_you_mean, error
from ..layers.types import out_of_range, show
from ..syntax import (NUMBER_RANGE, BinOp, Call, Compare, IfElse, Logic, Name, Neg, Num, Running,
                      ShapeLit)
from .budget import spend

TOO_LARGE = 10**15
MAX_CALL_DEPTH = 50  # `def` functions calling each other; beyond this one calls itself

# The built-in functions: name -> (least, most values taken or None, the function, its usage).
FUNCTIONS = {
    "min": (2, None, min, "min(a, b, …): the smallest"),
    "max": (2, None, max, "max(a, b, …): the largest"),
    "round": (1, 1, round, "round(x): the nearest whole number, halves to even (as Python's "
                           "round and torch.round)"),
    "floor": (1, 1, math.floor, "floor(x): the whole number at or below x"),
    "ceil": (1, 1, math.ceil, "ceil(x): the whole number at or above x"),
    "sqrt": (1, 1, lambda x: math.sqrt(x) if x >= 0 else math.nan,
             "sqrt(x): the square root of x (NF-ResNet's 1 / sqrt(1 + i * alpha * alpha))"),
}
_COMPARE = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}

# The spec's own functions (`def`) and the arch parameters they read, while a spec expands.
_DEFINED: ContextVar[tuple[dict, dict, int]] = ContextVar("archdsl_functions", default=({}, {}, 0))


@contextmanager
def defined(functions: dict, arch_values: dict):
    """Make the spec's `def` functions callable (reading `arch_values`, filled as the arch
    parameters are evaluated) for the expressions evaluated inside the block."""
    token = _DEFINED.set((functions, arch_values, 0))
    try:
        yield
    finally:
        _DEFINED.reset(token)


# The repeat indices the spec names (`repeat n as i`), name -> where the first is named: a use
# outside its repeat is then told where the name lives.
_INDICES: ContextVar[dict[str, Span]] = ContextVar("archdsl_indices", default={})


@contextmanager
def repeat_indices(names: dict[str, Span]):
    """Make `outside_index_hint` know the spec's repeat indices while it expands."""
    token = _INDICES.set(names)
    try:
        yield
    finally:
        _INDICES.reset(token)


def outside_index_hint(name: str) -> str | None:
    """For a name that is a repeat's index, used where that index is not in scope."""
    span = _INDICES.get().get(name)
    if span is None:
        return None
    return (f"`{name}` is the index of the `repeat` on line {span.line}, and exists only inside "
            f"that repeat's `{{ … }}` (a block called there does not see it: pass it as an "
            f"argument)")


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
    if isinstance(e, Compare):
        return _compare(e, evaluate(e.left, env), evaluate(e.right, env))
    if isinstance(e, IfElse):
        return evaluate(e.then if _condition(e.condition, env) else e.other, env, words_ok)
    if isinstance(e, Call):
        return _call(e, [evaluate(a, env) for a in e.args])
    if isinstance(e, Logic):
        if e.op == "not":
            return not _condition(e.operands[0], env)
        first = _condition(e.operands[0], env)  # `and`/`or` stop early, as Python's do
        if first == (e.op == "or"):
            return first
        return _condition(e.operands[1], env)
    if isinstance(e, Running):
        raise DiagnosticError(error("E-EXPR", "an operator at the start applies to the running "
                                    "tensor, and a number is wanted here", e.span,
                                    hint="write the whole calculation in numbers"))
    raise AssertionError(f"unknown expression {e!r}")


def try_evaluate(e, env: dict[str, Any]):
    """The value of `e`, or None where it has an error (for estimates)."""
    try:
        return evaluate(e, env, words_ok=True)
    except DiagnosticError:
        return None


def _name(e: Name, env, words_ok: bool):
    if e.name in env:
        value = env[e.name]
        problem = out_of_range(value)
        if problem is not None:  # a value given from outside: the spec computes none
            raise DiagnosticError(error(
                "E-PARAM", f"the value of `{e.name}` is {problem}: {show(value)}", e.span,
                hint=f"give `{e.name}` a finite number: {NUMBER_RANGE}"))
        return value
    if e.name in ("true", "false"):
        return e.name == "true"
    if words_ok:
        return Word(e.name)
    raise DiagnosticError(error("E-UNKNOWN-NAME", f"unknown name `{e.name}`", e.span,
                                hint=outside_index_hint(e.name) or did_you_mean(e.name, env) or
                                (f"names in scope: {', '.join(sorted(env))}" if env
                                 else "no parameters are in scope here")))


def _within_range(value, span: Span):
    """`value`, or E-EXPR at the operation that made it when it is beyond a float's range
    (`1e308 + 1e308`)."""
    problem = out_of_range(value)
    if problem is not None:
        raise DiagnosticError(error("E-EXPR", f"this value is {problem}", span, hint=NUMBER_RANGE))
    return value


def _binary(e: BinOp, left, right):
    _need_number(left, e.left.span)
    _need_number(right, e.right.span)
    if e.op in ("/", "//", "%") and right == 0:
        raise DiagnosticError(error("E-EXPR", "division by zero", e.right.span))
    try:
        result = _arithmetic(e, left, right)
    except OverflowError:  # int / int or int * float beyond a float
        result = math.inf
    return _within_range(result, e.span)


def _arithmetic(e: BinOp, left, right):
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


def _compare(e: Compare, left, right) -> bool:
    if e.op in ("==", "!="):
        for v, side in ((left, e.left), (right, e.right)):
            if isinstance(v, Word):
                raise DiagnosticError(error("E-EXPR", f"`{v}` is a word, and only numbers, shapes "
                                            "and true/false are compared", side.span))
        return _COMPARE[e.op](left, right)
    _need_number(left, e.left.span)
    _need_number(right, e.right.span)
    return _COMPARE[e.op](left, right)


def _condition(e, env) -> bool:
    value = evaluate(e, env)
    if not isinstance(value, bool):
        raise DiagnosticError(error(
            "E-EXPR", f"the condition is {show(value)}, not true or false", e.span,
            hint="write a comparison such as `c > 64`, or a parameter holding true or false"))
    return value


def _call(e: Call, args: list):
    """A built-in function, or a `def` of the spec, applied to evaluated arguments."""
    functions, arch_values, depth = _DEFINED.get()
    if e.name in functions:
        return _call_defined(e, functions[e.name], args, functions, arch_values, depth)
    if e.name not in FUNCTIONS:
        names = sorted(FUNCTIONS) + sorted(functions)
        raise DiagnosticError(error("E-UNKNOWN-NAME", f"unknown function `{e.name}`", e.name_span,
                                    hint=did_you_mean(e.name, names) or
                                    "the functions are " + ", ".join(f"`{n}`" for n in names) +
                                    "; define one with `def name(x) = …`"))
    least, most, fn, usage = FUNCTIONS[e.name]
    if len(args) < least or (most is not None and len(args) > most):
        wanted = f"{least} value{'s' if least != 1 else ''}" if least == most else \
            f"at least {least} values"
        raise DiagnosticError(error("E-ARG-COUNT", f"`{e.name}` takes {wanted}, but "
                                    f"{len(args)} {'was' if len(args) == 1 else 'were'} given",
                                    e.span, hint=usage))
    for value, written in zip(args, e.args):
        _need_number(value, written.span)
        if out_of_range(value) is not None:  # the language computes none; refused anyway
            raise DiagnosticError(error("E-EXPR", f"`{e.name}` needs a finite number, not "
                                        f"{show(value)}", written.span, hint=NUMBER_RANGE))
    return _within_range(fn(*args), e.span)


def _call_defined(e: Call, f, args: list, functions: dict, arch_values: dict, depth: int):
    spend(e.span, 2)  # binding the arguments, and evaluating the body
    names = [p.name for p in f.params]
    needed = sum(p.default is None for p in f.params)
    if not needed <= len(args) <= len(names):
        raise DiagnosticError(error(
            "E-ARG-COUNT", f"`{f.name}` takes {len(names)} value{'s' if len(names) != 1 else ''}"
            + (f" ({needed} without a default)" if needed != len(names) else "") +
            f", but {len(args)} {'was' if len(args) == 1 else 'were'} given", e.span,
            hint=f"it is defined as `{f.name}({', '.join(names)})` on line {f.span.line}"))
    if depth >= MAX_CALL_DEPTH:
        raise DiagnosticError(error("E-RECURSION", f"function `{f.name}` calls itself, or "
                                    f"functions nest more than {MAX_CALL_DEPTH} deep",
                                    e.name_span, hint="a function cannot call itself"))
    token = _DEFINED.set((functions, arch_values, depth + 1))
    try:
        scope = dict(arch_values)
        for p, value in zip(f.params, args + [None] * (len(names) - len(args))):
            scope[p.name] = value if value is not None else evaluate(p.default, scope)
        return evaluate(f.body, scope)
    except DiagnosticError as exc:
        raise DiagnosticError(exc.diagnostic.with_note(f"in `{f.name}`, called here", e.span)) \
            from None
    finally:
        _DEFINED.reset(token)
