"""Numbers as archdsl writes them for people: counts (`1,000,001`, `11.69M`), sizes in bytes
(`1.5 GiB`) and a drawing's parameter line, each in scientific notation where it would be too
long to read. Shared by expansion's messages and the output stages (report, draw, infer)."""

from __future__ import annotations

from .layers.types import scientific


def human_bytes(n: int) -> str:
    """`1.5 GiB`; sizes beyond any memory in scientific notation (`8.1e+22 B`)."""
    if n >= 1 << 60:
        return f"{float(n):.2g} B" if n < 10**300 else f"{scientific(n, 1)} B"
    for unit, size in (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20),
                       ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def human_count(n: int) -> str:
    """`11.69M`; counts beyond 10^15 in scientific notation."""
    if n >= 10**15:
        return scientific(n, 2)
    for unit, size in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def count_text(n: int) -> str:
    """`1,000,001`, or `1.0e+300` for a count too long to read."""
    return f"{n:,}" if n < 10**15 else scientific(n, 1)


def grouped(n: int) -> str:
    """`1,000,001`: every digit of a count, as the table shows it, unless it has more than a
    thousand (then `1.00e+1200`)."""
    return f"{n:,}" if n < _THOUSAND_DIGITS else scientific(n, 2)


_THOUSAND_DIGITS = 10**1000


def params_label(n: int) -> str:
    """A drawing's parameter line: `156 params`, `36.9k params`, `2.36M params`."""
    if n >= 10**15:
        return f"{scientific(n, 2)} params"
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M params"
    if n >= 10_000:
        return f"{n / 1e3:.1f}k params"
    return f"{n:,} params"


def plain(value):
    """A number for JSON: a Fraction (a jump after upsampling) as a float, others as they are."""
    return float(value) if is_fraction(value) else value


def is_fraction(value) -> bool:
    """Whether `value` is a Fraction (without importing `fractions` on the check path: only
    upsampling makes one)."""
    return type(value).__name__ == "Fraction"


def jump_text(jump) -> str:
    """A receptive field's jump as the rf column writes it: `8`, or `0.5` after upsampling."""
    return f"{float(jump):g}" if is_fraction(jump) else str(jump)
