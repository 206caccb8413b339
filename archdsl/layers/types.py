"""Argument types: each checks a written value against an argument's declaration and returns
it in canonical form (a pair for `k3`), or raises ArgumentError with a learner's message."""

from __future__ import annotations

import math
import sys
from typing import Any


class ArgumentError(Exception):
    """A value that does not fit its argument; expansion adds the span."""

    def __init__(self, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


def show(v) -> str:
    """A value as the user would write it: `3x3`, `true`, `0.5`; a decimal that the short form
    would show as whole is shown in full (`3.0000000000000004`, not `3`)."""
    if isinstance(v, tuple):
        return "x".join(show(d) if is_int(d) else str(d) for d in v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        short = f"{v:g}"
        if math.isfinite(v) and not v.is_integer() and float(short).is_integer():
            return repr(v)
        return short
    if isinstance(v, int) and abs(v) >= _LONG:
        return scientific(v, 2)
    return str(v)


_LONG = 10**300  # a whole number from here on is shown in scientific notation


def scientific(n: int, places: int) -> str:
    """`1.50e+400`: a whole number as f"{float(n):.{places}e}" writes it, also where float()
    or str() cannot take it (beyond 1.8e308, or 4,300 digits)."""
    if abs(n) < _LONG:
        return f"{float(n):.{places}e}"
    sign, n = ("-" if n < 0 else ""), abs(n)
    exponent = int((n.bit_length() - 1) * math.log10(2))  # at most one too small
    if 10 ** (exponent + 1) <= n:
        exponent += 1
    unit = 10 ** (exponent - places)
    mantissa = (2 * n + unit) // (2 * unit)  # rounded to `places` decimals
    if mantissa >= 10 ** (places + 1):
        mantissa, exponent = mantissa // 10, exponent + 1
    digits = str(mantissa)
    return f"{sign}{digits[0]}{'.' if places else ''}{digits[1:]}e+{exponent}"


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class ArgType:
    """The base of argument types; `name` is how docs print it."""

    name = ""
    takes_words: tuple[str, ...] = ()  # bare words this type accepts as values (`same`)
    numeric = False  # a bare word given to it is an unknown name, not a value

    def coerce(self, arg, value, kind: str) -> Any:
        raise NotImplementedError

    def default(self, arg) -> Any:
        """The declared default in canonical form."""
        return arg.default

    def __repr__(self) -> str:
        return self.name

    # -- shared checks ------------------------------------------------------------------
    @staticmethod
    def whole(arg, v, kind: str) -> int:
        finite(arg, v, kind)
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if not is_int(v):
            what = arg.doc or arg.name
            if isinstance(v, float):
                if arg.name == "out" or "channels" in what or arg.name == "groups":
                    raise ArgumentError("E-CHANNELS", f"{kind} {arg.name} = {show(v)} is not a "
                                        "whole number", hint="channel counts must be whole: check "
                                        "the division (e.g. use `//` to round down)")
                raise ArgumentError("E-ARG-TYPE", f"{kind} {arg.name} must be a whole number, got "
                                    f"{show(v)}")
            raise ArgumentError("E-ARG-TYPE", f"{kind} {arg.name} must be a number, got "
                                f"`{show(v)}`", hint=choice_hint(arg))
        return v

    @staticmethod
    def in_range(arg, v, kind: str):
        for x in (v if isinstance(v, tuple) else (v,)):
            if arg.min is not None and x < arg.min:
                raise ArgumentError("E-ARG-RANGE", f"{kind} {arg.name} must be at least "
                                    f"{arg.min:g}, got {show(x)}")
            if arg.max is not None and x > arg.max:
                raise ArgumentError("E-ARG-RANGE", f"{kind} {arg.name} must be at most "
                                    f"{arg.max:g}, got {show(x)}")
        return v


class Int(ArgType):
    name, numeric = "int", True

    def coerce(self, arg, value, kind):
        return self.in_range(arg, self.whole(arg, value, kind), kind)


class Float(ArgType):
    name, numeric = "float", True

    def coerce(self, arg, value, kind):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ArgumentError("E-ARG-TYPE", f"{kind} {arg.name} must be a number, got "
                                f"`{show(value)}`")
        return self.in_range(arg, float(finite(arg, value, kind)), kind)


class Bool(ArgType):
    name = "bool"

    def coerce(self, arg, value, kind):
        if not isinstance(value, bool):
            raise ArgumentError("E-ARG-TYPE", f"{kind} {arg.name} must be true or false, got "
                                f"`{show(value)}`")
        return value


class Choice(ArgType):
    name = "choice"

    def coerce(self, arg, value, kind):
        if not isinstance(value, str) or value not in arg.choices:
            raise ArgumentError("E-ARG-TYPE", f"{kind} {arg.name} cannot be `{show(value)}`",
                                hint=choice_hint(arg, value))
        return str(value)


class Pair(ArgType):
    """One number for both axes (`k3`) or HxW (`k1x7`)."""

    name, numeric = "pair", True

    def coerce(self, arg, value, kind):
        if isinstance(value, tuple):
            if len(value) != 2:
                raise ArgumentError("E-ARG-TYPE", f"{kind} {arg.name} takes one number or HxW, "
                                    f"got {show(value)}")
            return self.in_range(arg, tuple(self.whole(arg, v, kind) for v in value), kind)
        if isinstance(value, str):
            raise ArgumentError("E-ARG-TYPE", f"{kind} {arg.name} cannot be `{value}`",
                                hint=self.word_hint)
        v = self.in_range(arg, self.whole(arg, value, kind), kind)
        return (v, v)

    word_hint = None

    def default(self, arg):
        if is_int(arg.default):
            return (arg.default, arg.default)
        return arg.default


class Padding(Pair):
    """A pair, or PyTorch's `same` / `valid`."""

    name, takes_words = "padding", ("same", "valid")
    word_hint = "write a number, or `same` / `valid`"

    def coerce(self, arg, value, kind):
        if isinstance(value, str) and value in self.takes_words:
            return str(value)
        return super().coerce(arg, value, kind)


def finite(arg, v, kind: str):
    """`v`, unless it is a number beyond a float's range, infinite or NaN (which the language
    never computes: a guard for values from elsewhere)."""
    if out_of_range(v) is not None:
        raise ArgumentError("E-ARG-RANGE", f"{kind} {arg.name} must be a finite number, got "
                            f"{show(v)}")
    return v


def out_of_range(value) -> str | None:
    """What is wrong with a value beyond the language's numbers (`too large`, `not a number
    (NaN)`), a shape's sizes included; None for a finite number within a float's range, a
    word or true/false."""
    if isinstance(value, tuple):
        return next(filter(None, map(out_of_range, value)), None)
    if isinstance(value, float) and value != value:
        return "not a number (NaN)"
    if isinstance(value, (int, float)) and not abs(value) <= sys.float_info.max:
        return "too large"
    return None


def choice_hint(arg, value=None) -> str | None:
    from ..diagnostics import did_you_mean

    if not arg.choices:
        return None
    close = did_you_mean(str(value), arg.choices) if value is not None else None
    return close or "choose one of: " + ", ".join(arg.choices)


INT, FLOAT, BOOL, PAIR, PADDING, CHOICE = Int(), Float(), Bool(), Pair(), Padding(), Choice()
