"""The per-kind explanations of `archdsl explain` (explain.py): for each layer kind that changes
shapes or has parameters, a small function that writes out its arithmetic as Steps with the
layer's own numbers, keyed by kind name in EXPLAINERS (`@explains("conv")`); merges by their
merge kind; every other kind gets `generic` (output = input, no parameters, or whatever the
kind's own rules give). An explainer computes from the layer's Args and its inputs' facts and
records its results on the Work; explain.py compares them with the checker's facts.

Substituted expressions are written so that Python evaluates them (`floor(217 / 4) + 1`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .layers.base import fmt_shape
from .layers.merge import combinator


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
        return {"what": self.what, "formula": self.formula, "substituted": self.substituted,
                "value": self.value, "note": self.note}


class Work:
    """What an explainer reads (the node, its Args, its inputs' shapes and receptive fields)
    and what it fills in (steps, and the numbers it computed)."""

    def __init__(self, graph, nid: str):
        self.graph, self.nid = graph, nid
        self.node = graph.layer(nid)
        self.a = self.node.args
        inputs = graph.inputs(nid)
        self.xs = [graph.facts[p].shape for p in inputs]
        self.rfs = [graph.facts[p].rf for p in inputs]  # by the recurrence, never capped
        self.bounds = [graph.facts[p].bound for p in inputs]
        self.x, self.rf_in, self.bound_in = self.xs[0], self.rfs[0], self.bounds[0]
        self.steps: list[Step] = []
        self.output, self.rf, self.bound = self.x, self.rf_in, self.bound_in
        self.params = self.buffers = self.macs = 0

    @property
    def field(self) -> tuple | None:
        """The receptive field as `check` shows it: the recurrence's, capped at the bound."""
        return capped(self.rf, self.bound)

    def step(self, what: str, formula: str, substituted: str, value, note: str = ""):
        """Record one step; return its value, for the next step's arithmetic."""
        self.steps.append(Step(what, formula, substituted, value, note))
        return value

    def per_axis(self, what: str, rule: Callable[[int], tuple]) -> tuple:
        """One step for H and W when `rule(axis)` (formula, substituted, value, note) is the
        same for both, else one each; returns the (H, W) values."""
        h, w = rule(0), rule(1)
        if h == w:
            self.step(f"{what} (H and W)", *h)
        else:
            self.step(f"{what} (H)", *h)
            self.step(f"{what} (W)", *w)
        return h[2], w[2]


EXPLAINERS: dict[str, Callable[[Work], None]] = {}


def explains(*kinds: str):
    """Register an explainer for the layer kinds named."""
    def register(fn):
        for kind in kinds:
            EXPLAINERS[kind] = fn
        return fn
    return register


def capped(rf, bound) -> tuple | None:
    """A receptive field (size, jump) with its size never over `bound` (infer.py's Facts.field)."""
    if rf is None or bound is None:
        return rf
    return (tuple(min(s, b) for s, b in zip(rf[0], bound)), rf[1])


def _carried_note(rfs: list, bounds: list) -> str:
    """Why an r_in differs from the size the layer before it showed (it was capped there)."""
    over = [(r[0], b) for r, b in zip(rfs, bounds) if r and b and capped(r, b) != r]
    if not over:
        return ""
    r, b = over[0]
    return (f"r_in is the recurrence's {_hw(r)}, not the {_hw(capped((r, r), b)[0])} shown "
            "before: the cap applies to what is shown, the recurrence carries on")


def _hw(pair) -> str:
    """`60` for 60x60, `60x62` otherwise (as check's rf column writes a size)."""
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def field_steps(w: Work, kernel: tuple, stride: tuple, why: str = "") -> None:
    """The receptive-field recurrence, r_out = r_in + (K_eff - 1) * j_in, j_out = j_in * S,
    then the cap check shows: never more than the input plus the padding its paths read."""
    if len(w.x) != 3:
        w.rf = w.rf_in
        return
    (r, j) = w.rf_in
    why = "; ".join(n for n in (why, _carried_note([w.rf_in], [w.bound_in])) if n)
    size = w.per_axis("receptive field", lambda i: (
        "r_out = r_in + (K_eff - 1) * j_in", f"{r[i]} + ({kernel[i]} - 1) * {j[i]}",
        r[i] + (kernel[i] - 1) * j[i], why))
    jump = w.per_axis("jump", lambda i: (
        "j_out = j_in * S", f"{j[i]} * {stride[i]}", j[i] * stride[i],
        "input pixels between neighbouring outputs"))
    w.rf = (size, jump)
    _grow_bound(w, kernel, stride)
    if w.field == w.rf:
        return
    b, out = w.bound_in, w.output[1:] if len(w.output) == 3 else (1, 1)
    w.per_axis("field limit", lambda i: (
        "B = B_in + max(0, (O - 1) * S + K_eff - I) * j_in",
        f"{b[i]} + max(0, ({out[i]} - 1) * {stride[i]} + {kernel[i]} - {w.x[1 + i]}) * {j[i]}",
        w.bound[i], f"the input plus the padding read on the paths here, in input pixels: B_in "
                    f"is the input's {_image(w)[i]} plus the padding read before this layer; "
                    "(O - 1) * S + K_eff - I is how far this layer's windows reach past its input"))
    _cap_steps(w)


def _grow_bound(w: Work, kernel: tuple, stride: tuple) -> None:
    """The bound after this layer (infer.py's grow_bound): the input's padded extent grows by
    the padding this layer's windows read, (O - 1) * S + K_eff - I when positive, times j_in."""
    if w.bound_in is None or len(w.x) != 3:
        return
    out = w.output[1:] if len(w.output) == 3 else (1, 1)
    w.bound = tuple(w.bound_in[i] + max(0, (out[i] - 1) * stride[i] + kernel[i] - w.x[1 + i])
                    * w.rf_in[1][i] for i in (0, 1))


def keep_field(w: Work) -> None:
    """A layer that slides no window: the receptive field passes through (or is what the
    explainer set), and the bound grows only where the output's H x W outgrows the input's."""
    _grow_bound(w, (1, 1), (1, 1))


def _image(w: Work) -> tuple:
    """The input image's (H, W)."""
    return tuple(w.graph.input_shape[1:])


def _cap_steps(w: Work) -> None:
    """The shown receptive field, min(r, B), and why, where the recurrence passes the bound."""
    size, bound = w.rf[0], w.bound
    w.per_axis("receptive field shown", lambda i: (
        "r_shown = min(r, B)", f"min({size[i]}, {bound[i]})", min(size[i], bound[i]),
        "capped: no output sees more than the input plus the padding its paths read; after a "
        "global pool or gate the recurrence (equal windows, shifted by j) overshoots that, and "
        "the next layer's r_in is still the recurrence's"
        if size[i] > bound[i] else ""))
def _window(size: int, k: int, s: int, pl: int, pr: int, d: int, ceil: bool):
    """O = floor((I - K + 2P) / S) + 1 (or ceil, with PyTorch's last-window rule) as
    (formula, substituted, value, note)."""
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


def _dilation_steps(w: Work, kernel: tuple, dilation: tuple) -> tuple:
    if dilation == (1, 1):
        return tuple(kernel)
    return w.per_axis("kernel reach", lambda i: (
        "K_eff = D * (K - 1) + 1", f"{dilation[i]} * ({kernel[i]} - 1) + 1",
        dilation[i] * (kernel[i] - 1) + 1,
        f"dilation {dilation[i]} spaces the {kernel[i]} taps {dilation[i]} apart: the window "
        f"reaches {dilation[i] * (kernel[i] - 1) + 1} inputs with still {kernel[i]} weights"))


def _conv_padding(w: Work, a) -> list[tuple[int, int]]:
    """(left, right) padding per axis, explained where it is not a plain number."""
    if a.padding == "valid":
        w.step("padding", "valid: no padding", "0", 0)
        return [(0, 0), (0, 0)]
    if a.padding != "same":
        return [(p, p) for p in a.padding]
    pads = []
    for i in (0, 1):
        total = a.dilation[i] * (a.kernel[i] - 1)
        pads.append((total // 2, total - total // 2))
    w.per_axis("padding", lambda i: (
        "same: P_l + P_r = K_eff - 1, P_l = floor((K_eff - 1) / 2)",
        f"P_l = floor({sum(pads[i])} / 2) = {pads[i][0]}, P_r = {sum(pads[i])} - {pads[i][0]} = "
        f"{pads[i][1]}",
        list(pads[i]), "`same` keeps H and W at stride 1; an even kernel pads one more on "
                       "the bottom/right" if pads[i][0] != pads[i][1] else
        "`same` keeps H and W at stride 1"))
    return pads


@explains("conv")
def _conv(w: Work) -> None:
    a, (c, h, wd) = w.a, w.x
    pads = _conv_padding(w, a)
    reach = _dilation_steps(w, a.kernel, a.dilation)
    mode = "" if a.padding_mode == "zeros" else (
        f"padding_mode {a.padding_mode} fills the padded border from the input instead of with "
        "zeros; the sizes are the same")
    out = w.per_axis("output size", lambda i: _window(
        (h, wd)[i], a.kernel[i], a.stride[i], *pads[i], a.dilation[i], False))
    if mode:
        w.steps[-1].note = "; ".join(n for n in (w.steps[-1].note, mode) if n)
    w.step("channels", "C_out = out", str(a.out), a.out)
    per_group = c // a.groups
    group_note = "" if a.groups == 1 else (
        f"groups {a.groups}: each output channel sees only {c} / {a.groups} = {per_group} of "
        f"the {c} input channels" + (" (depthwise)" if a.groups == c else ""))
    weight = w.step("weight", "C_out * (C_in / groups) * K_h * K_w",
                    f"{a.out} * ({c} / {a.groups}) * {a.kernel[0]} * {a.kernel[1]}",
                    a.out * per_group * a.kernel[0] * a.kernel[1], group_note)
    bias = w.step("bias", "C_out (one per output channel)", str(a.out), a.out) if a.bias else \
        w.step("bias", "none (nobias)", "0", 0, "usual before a batch norm, whose shift "
               "would cancel a bias")
    w.params = w.step("parameters", "weight + bias", f"{weight} + {bias}", weight + bias)
    w.macs = w.step("MACs", "C_out * H_out * W_out * (C_in / groups) * K_h * K_w",
                    f"{a.out} * {out[0]} * {out[1]} * ({c} / {a.groups}) * {a.kernel[0]} * "
                    f"{a.kernel[1]}", a.out * out[0] * out[1] * per_group * a.kernel[0] *
                    a.kernel[1], "one multiply-add per weight per output position; bias "
                                 "additions are not counted")
    w.output = (a.out, *out)
    field_steps(w, reach, a.stride)


@explains("maxpool", "avgpool")
def _pool(w: Work) -> None:
    a, (c, h, wd) = w.a, w.x
    stride = a.kernel if a.stride is None else a.stride
    if a.stride is None:
        w.step("stride", "S = K (not given: a window's size)", fmt_shape(a.kernel), list(stride),
               "pooling windows do not overlap unless a stride is given")
    dilation = getattr(a, "dilation", (1, 1))
    reach = _dilation_steps(w, a.kernel, dilation)
    out = w.per_axis("output size", lambda i: _window(
        (h, wd)[i], a.kernel[i], stride[i], a.padding[i], a.padding[i], dilation[i], a.ceil))
    if a.padding != (0, 0):
        w.steps[-1].note = "; ".join(n for n in (w.steps[-1].note, (
            "PyTorch allows a padding of at most half the window"
            + ("; padded values count as zeros in the average" if getattr(
                a, "count_include_pad", False) else "")
            + ("; padded values never win the max" if w.node.op == "maxpool" else ""))) if n)
    w.step("channels", "C_out = C_in (each channel pooled alone)", str(c), c)
    w.step("parameters", "none: a fixed max or average, nothing learnt", "0", 0,
           "and 0 MACs: archdsl counts the multiply-adds of conv and linear layers only")
    w.output = (c, *out)
    field_steps(w, reach, stride)


def _adaptive_window(size: int, out: int) -> tuple:
    """The widest of PyTorch's windows, window o covering floor(o*I/O) .. ceil((o+1)*I/O), as
    (formula, substituted, value, note)."""
    formula = "K = ceil((o + 1) * I / O) - floor(o * I / O), the widest window o"
    if size % out == 0:
        return formula, f"{size} / {out}", size // out, "I / O is whole: equal windows"
    widths = [-(-(o + 1) * size // out) - (o * size) // out for o in range(out)]
    o = widths.index(max(widths))
    return (formula, f"ceil(({o} + 1) * {size} / {out}) - floor({o} * {size} / {out})",
            widths[o], "I / O is not whole: the windows differ in width, and some overlap")


@explains("adaptiveavgpool", "adaptivemaxpool")
def _adaptive(w: Work) -> None:
    a, (c, h, wd) = w.a, w.x
    w.per_axis("output size", lambda i: (
        "O = size (whatever the input size)", str(a.size[i]), a.size[i], ""))
    w.step("parameters", "none: a fixed average or max, nothing learnt", "0", 0)
    if max(a.size) > 4096:  # a bound instead of a scan over millions of windows
        kernel, stride = w.node.kind.receptive(a, w.x)
    else:
        kernel = w.per_axis("widest window", lambda i: _adaptive_window((h, wd)[i], a.size[i]))
        stride = w.per_axis("window step", lambda i: (
            "S = max(floor(I / O), 1)", f"max(floor({(h, wd)[i]} / {a.size[i]}), 1)",
            max((h, wd)[i] // a.size[i], 1), ""))
    w.output = (c, *a.size)
    field_steps(w, kernel, stride, "the widest window and the average step count as K and S")


@explains("linear")
def _linear(w: Work) -> None:
    a, features = w.a, w.x[-1]
    weight = w.step("weight", "I * O (one per input per output)", f"{features} * {a.out}",
                    features * a.out)
    bias = w.step("bias", "O (one per output)", str(a.out), a.out) if a.bias else \
        w.step("bias", "none (nobias)", "0", 0)
    w.params = w.step("parameters", "weight + bias", f"{weight} + {bias}", weight + bias)
    if len(w.x) == 2:  # a sequence: the same Linear on each token
        n = w.x[0]
        w.output = (n, a.out)
        w.macs = w.step("MACs", "N * I * O (one multiply-add per weight, for each of N tokens)",
                        f"{n} * {features} * {a.out}", n * features * a.out,
                        "the same weights at every token: nn.Linear acts on the last dimension")
        return
    w.macs = w.step("MACs", "I * O (one multiply-add per weight)", f"{features} * {a.out}",
                    features * a.out)
    w.output = (a.out,)


@explains("bn")
def _batch_norm(w: Work) -> None:
    a, c = w.a, w.x[0]
    what = "C (channels)" if len(w.x) == 3 else "C (features)"
    if a.affine:
        w.step("weight (gamma)", f"{what}: one scale each", str(c), c)
        w.step("bias (beta)", f"{what}: one shift each", str(c), c)
        w.params = w.step("parameters", "gamma + beta", f"{c} + {c}", 2 * c)
    else:
        w.step("parameters", "none (noaffine)", "0", 0)
    w.buffers = w.step("buffers", "running_mean C + running_var C + num_batches_tracked 1",
                       f"{c} + {c} + 1", 2 * c + 1,
                       "buffers are saved with the weights but not trained")
    w.step("output", "output = input", fmt_shape(w.x), list(w.x),
           "0 MACs counted: at inference it folds into the layer before it")


@explains("groupnorm", "layernorm")
def _norm(w: Work) -> None:
    a, x = w.a, w.x
    if w.node.op == "groupnorm":
        w.step("channels per group", "C / G (G must divide C)", f"{x[0]} / {a.groups}",
               x[0] // a.groups)
        count, what = x[0], "C"
        shown = str(x[0])
    elif len(x) == 2:
        count, what, shown = x[1], "C (each token's C values are normalised together)", str(x[1])
    else:
        count, what = 1, "C * H * W (every value of a sample)"
        for d in x:
            count *= d
        shown = " * ".join(str(d) for d in x)
    if a.affine:
        w.step("weight (gamma)", what, shown, count)
        w.step("bias (beta)", what, shown, count)
        w.params = w.step("parameters", "gamma + beta", f"{count} + {count}", 2 * count)
    else:
        w.step("parameters", "none (noaffine)", "0", 0)
    w.step("output", "output = input", fmt_shape(x), list(x), "no buffers: statistics are "
           "computed from each " + ("token" if len(x) == 2 else "sample"))


@explains("prelu")
def _prelu(w: Work) -> None:
    c = w.x[0]
    if w.a.per_channel:
        w.params = w.step("parameters", "C slopes (perchannel)", str(c), c)
    else:
        w.params = w.step("parameters", "1 slope shared by all channels", "1", 1)
    w.step("output", "output = input", fmt_shape(w.x), list(w.x))


@explains("flatten")
def _flatten(w: Work) -> None:
    x = w.x
    n = 1
    for d in x:
        n *= d
    w.step("output", "C * H * W features" if len(x) == 3 else "output = input",
           " * ".join(str(d) for d in x), n, "no parameters: values are only re-arranged")
    w.output = (n,)
    if len(x) == 3:
        field_steps(w, (x[1], x[2]), (1, 1),
                 "whatever reads the vector sees the whole map: a window of H x W")


def generic(w: Work) -> None:
    """Any other kind: what its own rules say; for most, output = input and nothing else."""
    kind, facts = w.node.kind, w.graph.facts[w.nid]
    y = facts.shape
    kernel, stride = kind.receptive(w.a, w.x) if len(w.x) == 3 else ((1, 1), (1, 1))
    quiet = not (facts.params or facts.buffers or facts.macs)
    note = f"{kind.name}: {kind.summary}" if kind.summary else kind.name
    if quiet:
        note += "; no parameters" + ("; receptive field unchanged"
                                     if (kernel, stride) == ((1, 1), (1, 1)) else "")
    if y == w.x:
        w.step("output", "output = input", fmt_shape(y), list(y), note)
    else:
        w.step("output", f"{kind.name}'s shape rule", f"{fmt_shape(w.x)} -> {fmt_shape(y)}",
               list(y), note)
    for what, value in (("parameters", facts.params), ("buffers", facts.buffers),
                        ("MACs", facts.macs)):
        if value:
            w.step(what, f"{kind.name}'s {what} rule", str(value), value)
    w.output, w.params, w.buffers, w.macs = y, facts.params, facts.buffers, facts.macs
    if (kernel, stride) != ((1, 1), (1, 1)):
        field_steps(w, kernel, stride)
    else:
        _grow_bound(w, kernel, stride)


# ----------------------------------------------------------------------------- merges


def _roles(w: Work) -> list[str]:
    site = w.node.merge
    comb = combinator(site.combinator) if site is not None else None
    return comb.roles(len(w.xs)) if comb is not None else \
        [f"branch{i + 1}" for i in range(len(w.xs))]


def _merge_rf(w: Work) -> None:
    """A merge sees what its widest branch sees; its grid is that of the branches at the
    output's resolution (a broadcast 1x1 gate's coarse jump is not the output's); its size is
    capped like a layer's, at the widest branch's bound."""
    size = w.per_axis("receptive field", lambda i: (
        "r = max(r of each branch)", _max_of(r[0][i] for r in w.rfs),
        max(r[0][i] for r in w.rfs),
        "; ".join(n for n in ("the output sees what its widest branch sees",
                              _carried_note(w.rfs, w.bounds)) if n)))
    y = w.graph.shape(w.nid)
    full = [r for r, x in zip(w.rfs, w.xs) if len(x) == 3 and x[1:] == tuple(y)[1:]]
    note = "" if len(full) in (0, len(w.rfs)) else \
        "only the branches at the output's size: a broadcast gate's grid is coarser"
    full = full or w.rfs
    jump = w.per_axis("jump", lambda i: (
        "j = max(j of the full-size branches)", _max_of(r[1][i] for r in full),
        max(r[1][i] for r in full), note))
    w.rf = (size, jump)
    if None in w.bounds:
        w.bound = None
        return
    w.bound = tuple(max(b[i] for b in w.bounds) for i in (0, 1))
    if w.field == w.rf:
        return
    w.per_axis("field limit", lambda i: (
        "B = max(B of each branch)", _max_of(b[i] for b in w.bounds),
        w.bound[i], f"each branch's bound: the input's {_image(w)[i]} plus the padding read "
                    "on the branch's paths"))
    _cap_steps(w)


def _max_of(values) -> str:
    """`max(27, 11)`, or the one value alone (Python's max wants two or more)."""
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else f"max({', '.join(values)})"


def _branches(w: Work) -> str:
    return ", ".join(f"{role} {fmt_shape(x)}" for role, x in zip(_roles(w), w.xs))


@explains("add", "mul")
def _elementwise(w: Work) -> None:
    site = w.node.merge
    if site is not None and getattr(combinator(site.combinator), "equal_shapes", False):
        w.output = w.step("output", " + ".join(_roles(w)) + ": equal shapes, no broadcasting",
                          _branches(w), list(w.xs[0]), _shortcut_note(w))
    else:
        sign = " + " if w.node.op == "add" else " * "
        out = tuple(max(dims) if min(dims) == 1 else dims[0] for dims in zip(*w.xs))
        w.output = w.step("output", "per dimension: equal in every branch, or 1 (broadcast)",
                          sign.join(fmt_shape(x) for x in w.xs),
                          list(out), "a size of 1 is repeated to match the other branches"
                          if any(x != out for x in w.xs) else "")
    w.output = tuple(w.output)
    w.step("parameters", "none: a merge learns nothing", "0", 0)
    _merge_rf(w)


def _shortcut_note(w: Work) -> str:
    site = w.node.merge
    if site.combinator == "shortcut_first":
        return ("shortcut_first: the same sum as residual, with the shortcut's modules "
                "registered first (torchvision's `proj` before `f`), so weights load in order")
    if not site.projection:
        return ("no shortcut written: it is the input x itself (identity)" if site.auto_shortcut
                else "the shortcut is written out in the spec")
    first = w.graph.layer(site.projection[0])
    stride = first.args.stride
    return (f"the body changes the input's shape, so archdsl's shortcut is torchvision's "
            f"projection: a 1x1 conv with stride {fmt_shape(stride)} and a batch norm "
            f"({', '.join('.'.join(p.split('.')[-2:]) for p in site.projection)})")


@explains("concat")
def _concat(w: Work) -> None:
    channels = [x[0] for x in w.xs]
    rest = w.xs[0][1:]
    what = "channels" if len(w.xs[0]) == 3 else "features"
    total = w.step(what, f"C = sum of the branches' {what}", " + ".join(map(str, channels)),
                   sum(channels), _branches(w))
    if rest:
        w.step("spatial size", "H x W equal in every branch", fmt_shape(rest), list(rest),
               "concat joins along channels only: every branch must keep the same H x W")
    w.output = (total, *rest)
    w.step("parameters", "none: a merge learns nothing", "0", 0)
    _merge_rf(w)


def generic_merge(w: Work) -> None:
    """A merge kind registered elsewhere: its own combine rule."""
    y = w.graph.facts[w.nid].shape
    w.output = tuple(w.step("output", f"{w.node.op}'s rule over the branches",
                            f"{_branches(w)} -> {fmt_shape(y)}", list(y)))
    w.step("parameters", "none: a merge learns nothing", "0", 0)
    _merge_rf(w)
