"""The work of expanding one spec, counted and bounded.

The layer limit (walk.MAX_NODES) bounds what a spec makes, not what making it costs: a `def`
that calls itself twice is exponential without making a layer, and `repeat 10000000 { }`
makes none either. Each unit of work is counted here — a group (block call, repeat,
iteration, combinator, branch), a layer, a statement the size estimate looks at, and two for
a `def` call (its arguments and its body) — and expansion stops with a located E-TOO-BIG when
a spec needs more than MAX_STEPS.
check, draw, the notebook and the language server all expand through here.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from ..diagnostics import Diagnostic, Span, error

# specs/ takes at most 6,196 steps (efficientnet_b7) and the 5,000-layer limit's largest
# network about 5,000; a 50 x 50 indexed repeat calling a block, 17,600. A step costs a few
# microseconds, so a runaway spec is stopped within a few tenths of a second.
MAX_STEPS = 50_000


class WorkLimit(Exception):
    """Expansion needs more than its budget of steps: nothing sensible is left to check.
    Not a DiagnosticError, so that no helper that recovers from a spec's errors (a default
    that fails, an estimate) can swallow it: it ends the expansion."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


@dataclass
class Budget:
    limit: int
    used: int = 0


_BUDGET: ContextVar[Budget | None] = ContextVar("archdsl_budget", default=None)


@contextmanager
def bounded(limit: int = MAX_STEPS):
    """Count the expansion's steps inside the block, stopping it beyond `limit`."""
    token = _BUDGET.set(Budget(limit))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def spend(span: Span | None, steps: int = 1) -> None:
    """Count `steps` of work done at `span`; WorkLimit, located there, beyond the budget."""
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.used += steps
    if budget.used > budget.limit:
        raise WorkLimit(_too_much(span, f"expanding the spec takes more than {budget.limit:,} "
                                        "steps"))


def afford(span: Span | None, steps: int, what: str) -> None:
    """WorkLimit now, at `span`, when `steps` more would exceed the budget: `what` (a repeat
    of ten million empty iterations) is refused before its first step."""
    budget = _BUDGET.get()
    if budget is not None and budget.used + steps > budget.limit:
        raise WorkLimit(_too_much(span, f"{what} would take expanding the spec past "
                                        f"{budget.limit:,} steps"))


def _too_much(span: Span | None, message: str) -> Diagnostic:
    return error("E-TOO-BIG", f"{message} (block calls, repeat iterations, function calls and "
                 "layers), far beyond any published network", span,
                 hint="check the `repeat` counts, and any `def` or block that calls itself more "
                      "than once")
