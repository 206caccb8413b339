"""The calculator a kind's rules compute with, so that a number and its explanation are one
code path.

A kind's `rules(a, x, calc)` (base.py) works out its output shape, parameters, buffers, MACs
and receptive-field window through `calc.step(what, formula, substituted, value, note)`,
which returns `value`. The checker runs the rules with a plain Calc, which keeps the results
and drops the words; `archdsl explain` runs the very same rules with a Recorder, which also
writes every step down. So explain prints the arithmetic check did, not a second derivation.

Substituted expressions are written so that Python evaluates them (`floor(217 / 4) + 1`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Step:
    """One line of arithmetic: what it computes, the formula, the formula with this layer's
    numbers in it, the result, and a remark (rounding, padding, where a number comes from)."""

    what: str
    formula: str
    substituted: str
    value: Any
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The step's JSON record."""
        value = [plain(v) for v in self.value] if isinstance(self.value, (list, tuple)) else \
            plain(self.value)
        return {"what": self.what, "formula": self.formula, "substituted": self.substituted,
                "value": value, "note": self.note}


class Calc:
    """The checker's calculator: what one layer reads (its inputs' shapes; the node and the
    graph, for a merge's branches) and what its rules find. It keeps no words."""

    recording = False

    def __init__(self, xs: list[tuple], node=None, graph=None):
        self.xs = list(xs)
        self.x = self.xs[0]
        self.node, self.graph = node, graph
        self.output = self.x
        self.params = self.buffers = self.macs = 0
        # how the layer grows the receptive field: its effective kernel and stride along
        # (H, W), and why they are those (a remark for explain)
        self.kernel, self.stride, self.why = (1, 1), (1, 1), ""
        self.windowed = False  # whether the rules declared a window (explain shows its field)
        self.pads = True  # whether its windows may read padding (upsampling clamps instead)

    def step(self, what: str, formula: str, substituted: str, value, note: str = ""):
        """One step of arithmetic; returns `value`, for the next step."""
        return value

    def per_axis(self, what: str, rule: Callable[[int], tuple]) -> tuple:
        """A step for H and W, `rule(axis)` giving (formula, substituted, value, note); returns
        the (H, W) values."""
        return rule(0)[2], rule(1)[2]

    def note(self, text: str) -> None:
        """A further remark on the last step."""

    def window(self, kernel, stride, why: str = "") -> None:
        """Declare the effective kernel and stride that grow the receptive field (a stride
        below 1, a Fraction, for upsampling: outputs closer together than input pixels)."""
        self.kernel, self.stride, self.why = tuple(kernel), tuple(stride), why
        self.windowed = True

    def same(self, note: str = "") -> None:
        """The step of a layer whose output has its input's shape."""
        self.step("output", "output = input", _shape(self.x), list(self.x), note)


class Recorder(Calc):
    """explain's calculator: the checker's, writing every step down."""

    recording = True

    def __init__(self, xs: list[tuple], node=None, graph=None):
        super().__init__(xs, node, graph)
        self.steps: list[Step] = []

    def step(self, what, formula, substituted, value, note=""):
        self.steps.append(Step(what, formula, substituted, value, note))
        return value

    def per_axis(self, what, rule):
        """One step when H and W work out alike, else one each."""
        h, w = rule(0), rule(1)
        if h == w:
            self.step(f"{what} (H and W)", *h)
        else:
            self.step(f"{what} (H)", *h)
            self.step(f"{what} (W)", *w)
        return h[2], w[2]

    def note(self, text):
        if self.steps and text:
            last = self.steps[-1]
            last.note = "; ".join(n for n in (last.note, text) if n)


def plain(value):
    """A step's value for JSON: a Fraction (a jump after upsampling) as a float."""
    return float(value) if type(value).__name__ == "Fraction" else value


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape)


# ----------------------------------------------------------------------------- shared steps


def window_step(size: int, k: int, s: int, pl: int, pr: int, d: int, ceil: bool) -> tuple:
    """A sliding window's output size along one axis, PyTorch's rule, as (formula,
    substituted, value, note): O = floor((I - K_eff + P_l + P_r) / S) + 1, or ceil with
    PyTorch's last-window rule (pooling_output_shape_pad_lr)."""
    reach = d * (k - 1) + 1
    pad, pad_v = ("2P", f"2*{pl}") if pl == pr else ("P_l + P_r", f"{pl} + {pr}")
    rounding = "ceil" if ceil else "floor"
    formula = f"O = {rounding}((I - {'K_eff' if d != 1 else 'K'} + {pad}) / S) + 1"
    span = size - reach + pl + pr
    q = -(-span // s) if ceil else span // s
    out = q + 1
    text = f"{rounding}(({size} - {reach} + {pad_v}) / {s}) + 1"
    if s != 1:
        text += f" = {rounding}({span} / {s}) + 1 = {q} + 1"
    notes = []
    if span % s and not ceil:
        left = span % s
        lines = "row/column" if left == 1 else "rows/columns"
        notes.append(f"floor: {span} / {s} = {span / s:g} rounds down, so the last {left} "
                     f"{lines} of the padded input fit no whole window and are never read")
    elif span % s:
        notes.append(f"ceil: {span} / {s} = {span / s:g} rounds up: one more window, which "
                     "hangs over the bottom/right edge")
    elif ceil:
        notes.append(f"ceil: {span} / {s} is whole, so ceil and floor agree here")
    if ceil and (out - 1) * s >= size + pl:
        notes.append(f"PyTorch's last-window rule: the last window would start at {(out - 1) * s}"
                     f" >= I + P_l = {size + pl}, in the padding alone, so it is dropped")
        text += " - 1"
        out -= 1
    return formula, text, out, "; ".join(notes)


def dilation_steps(calc: Calc, kernel: tuple, dilation: tuple) -> tuple:
    """The effective kernel along (H, W), K_eff = D * (K - 1) + 1, with a step when dilated."""
    if tuple(dilation) == (1, 1):
        return tuple(kernel)
    return calc.per_axis("kernel reach", lambda i: (
        "K_eff = D * (K - 1) + 1", f"{dilation[i]} * ({kernel[i]} - 1) + 1",
        dilation[i] * (kernel[i] - 1) + 1,
        f"dilation {dilation[i]} spaces the {kernel[i]} taps {dilation[i]} apart: the window "
        f"reaches {dilation[i] * (kernel[i] - 1) + 1} inputs with still {kernel[i]} weights"))


def linear_parts(calc: Calc, what: str, c_in: int, c_out: int, bias: bool, note: str = "",
                 times: int = 1) -> list[int]:
    """One Linear's weight (C_out x C_in) and bias (C_out) as steps, C_out = times * c_out
    (`3 * C` for q, k and v stacked); returns their counts."""
    out, out_text = times * c_out, (f"{times} * {c_out}" if times != 1 else str(c_out))
    formula = "C_out * C_in" if times == 1 else f"{times} * C * C"
    parts = [calc.step(f"{what} weight", formula, f"{out_text} * {c_in}", out * c_in, note)]
    if bias:
        parts.append(calc.step(f"{what} bias", "C_out" if times == 1 else f"{times} * C",
                               out_text, out))
    return parts


def total(calc: Calc, parts: list[int]) -> int:
    """The parameters: the sum of the parts listed above it."""
    return calc.step("parameters", "the sum of the parts above", " + ".join(map(str, parts)),
                     sum(parts))


def affine_steps(calc: Calc, scale: str, shift: str, shown: str, count: int,
                 affine: bool) -> int:
    """A norm's learnt scale (gamma) and shift (beta), `count` of each (formulas `scale` and
    `shift`), or none; returns the parameters."""
    if not affine:
        return calc.step("parameters", "none (noaffine)", "0", 0)
    calc.step("weight (gamma)", scale, shown, count)
    calc.step("bias (beta)", shift, shown, count)
    return calc.step("parameters", "gamma + beta", f"{count} + {count}", 2 * count)
