"""One node's numbers from its inputs': the kind's own rules, then the receptive field and
its bound, all through one calculator (archdsl/layers/calc.py).

Inference (infer.py, and the shortcuts pass through it) runs this with the quiet Calc and
keeps the results; `archdsl explain` runs it with a Recorder and prints the steps. Both read
the same arithmetic, so an explanation cannot disagree with `check`.

The receptive field is a (size, jump) pair per axis, by the recurrence r_out = r_in +
(K_eff - 1) * j_in, j_out = j_in * S. What `check` shows is capped at the bound B: the input's
size plus the padding read on the paths that reach the node (Facts.field).
"""

from __future__ import annotations

import math

from .graph import capped
from .layers.calc import Calc, Recorder
from .layers.merge import combinator


def work_out(graph, nid: str, recording: bool = False) -> Calc:
    """Run node `nid`'s rules on its inputs' facts (all known); the calculator holds the
    output, parameters, buffers, MACs, the receptive field `rf` and its `bound` (and, when
    `recording`, the steps). LayerError where PyTorch would fail."""
    node = graph.layer(nid)
    facts = [graph.facts[p] for p in graph.inputs(nid)]
    calc = (Recorder if recording else Calc)([f.shape for f in facts], node, graph)
    calc.rfs = [f.rf for f in facts]  # by the recurrence, never capped
    calc.bounds = [f.bound for f in facts]
    if node.merge is not None:
        combinator(node.merge.combinator).rules(node.merge, calc)
    else:
        node.kind.rules(node.args, calc.x, calc)
    # a merge (a combinator's, or one of named values: `a, b; add`) sees what its widest
    # branch sees; one that declares a window (resize, cropto) reads its first value through
    # that window, as a layer does, and the others' values not at all
    if node.kind.merges and not calc.windowed:
        _merge_field(calc)
    else:
        _layer_field(calc, graph)
    return calc


# ----------------------------------------------------------------------------- layers


def _layer_field(calc: Calc, graph) -> None:
    """The field after one layer: grown by its window on a feature map, the whole input after
    a layer that mixes every position (`global_field`: attention), else passed through; the
    bound grows by the padding its windows read."""
    rf_in, bound_in, x = calc.rfs[0], calc.bounds[0], calc.x
    calc.rf, calc.bound = rf_in, bound_in
    image = tuple(graph.input_shape[1:]) if len(graph.input_shape or ()) == 3 else None
    if calc.node.kind.global_field and image is not None and rf_in is not None:
        calc.per_axis("receptive field", lambda i: (
            "r = the input's size (every output mixes every input position)", str(image[i]),
            image[i], calc.why))
        calc.rf = (image, rf_in[1])
    elif len(x) == 3 and calc.windowed:
        _grow_field(calc)
    if len(x) != 3 or bound_in is None or rf_in is None:
        return
    out = calc.output[1:] if len(calc.output) == 3 else (1, 1)
    if calc.pads:
        calc.bound = tuple(bound_in[i] + whole(max(0, (out[i] - 1) * calc.stride[i] +
                                                   calc.kernel[i] - x[1 + i]) * rf_in[1][i])
                           for i in (0, 1))
    if calc.windowed and capped(calc.rf, calc.bound) != calc.rf:
        _limit_steps(calc, out)  # a layer that slides no window passes the cap on unchanged


def _grow_field(calc: Calc) -> None:
    """r_out = r_in + (K_eff - 1) * j_in, j_out = j_in * S."""
    (r, j), kernel, stride = calc.rfs[0], calc.kernel, calc.stride
    why = "; ".join(n for n in (calc.why, _carried_note(calc.rfs, calc.bounds)) if n)

    def size_step(i):
        reach = r[i] + (kernel[i] - 1) * j[i]
        if type(reach) is int:
            return "r_out = r_in + (K_eff - 1) * j_in", f"{r[i]} + ({kernel[i]} - 1) * {j[i]}", \
                reach, why
        return ("r_out = r_in + (K_eff - 1) * j_in", f"{r[i]} + ({kernel[i]} - 1) * {j[i]}",
                whole(reach), "; ".join(n for n in (why, "rounded up to whole input pixels")
                                        if n))

    size = calc.per_axis("receptive field", size_step)
    jump = calc.per_axis("jump", lambda i: (
        "j_out = j_in * S", f"{j[i]} * {stride[i]}", exact(j[i] * stride[i]),
        "input pixels between neighbouring outputs"))
    calc.rf = (size, jump)


def whole(value) -> int:
    """A size in input pixels, rounded up where a fractional jump (after upsampling) made it
    a fraction: an output that reads part of a pixel sees that pixel."""
    return value if type(value) is int else math.ceil(value)


def exact(value):
    """A jump: an int where it is whole, else the Fraction (after upsampling)."""
    if type(value) is int:
        return value
    return int(value) if value.denominator == 1 else value  # a Fraction


def _limit_steps(calc: Calc, out: tuple) -> None:
    """Where the recurrence passes the bound: how the bound grew, and the capped size."""
    b, j, kernel, stride = calc.bounds[0], calc.rfs[0][1], calc.kernel, calc.stride
    image = tuple(calc.graph.input_shape[1:])
    calc.per_axis("field limit", lambda i: (
        "B = B_in + max(0, (O - 1) * S + K_eff - I) * j_in",
        f"{b[i]} + max(0, ({out[i]} - 1) * {stride[i]} + {kernel[i]} - {calc.x[1 + i]}) * {j[i]}",
        calc.bound[i], f"the input plus the padding read on the paths here, in input pixels: "
                       f"B_in is the input's {image[i]} plus the padding read before this layer; "
                       "(O - 1) * S + K_eff - I is how far this layer's windows reach past its "
                       "input"))
    _cap_steps(calc)


def _cap_steps(calc: Calc) -> None:
    """The shown receptive field, min(r, B), and why."""
    size, bound = calc.rf[0], calc.bound
    calc.per_axis("receptive field shown", lambda i: (
        "r_shown = min(r, B)", f"min({size[i]}, {bound[i]})", min(size[i], bound[i]),
        "capped: no output sees more than the input plus the padding its paths read; after a "
        "global pool or gate the recurrence (equal windows, shifted by j) overshoots that, and "
        "the next layer's r_in is still the recurrence's"
        if size[i] > bound[i] else ""))


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


# ----------------------------------------------------------------------------- merges


def _merge_field(calc: Calc) -> None:
    """A merge sees what its widest branch sees; its grid is that of the branches at the
    output's resolution (a broadcast 1x1 gate's coarse jump is not the output's: taking it
    would make every later field explode); its bound is the widest branch's."""
    rfs, bounds, y = calc.rfs, calc.bounds, calc.output
    size = calc.per_axis("receptive field", lambda i: (
        "r = max(r of each branch)", _max_of(r[0][i] for r in rfs), max(r[0][i] for r in rfs),
        "; ".join(n for n in ("the output sees what its widest branch sees",
                              _carried_note(rfs, bounds)) if n)))
    full = [r for r, x in zip(rfs, calc.xs) if len(x) == 3 and x[1:] == tuple(y)[1:]]
    note = "" if len(full) in (0, len(rfs)) else \
        "only the branches at the output's size: a broadcast gate's grid is coarser"
    full = full or rfs
    jump = calc.per_axis("jump", lambda i: (
        "j = max(j of the full-size branches)", _max_of(r[1][i] for r in full),
        max(r[1][i] for r in full), note))
    calc.rf = (size, jump)
    if None in bounds:
        calc.bound = None
        return
    calc.bound = tuple(max(b[i] for b in bounds) for i in (0, 1))
    if capped(calc.rf, calc.bound) == calc.rf:
        return
    image = tuple(calc.graph.input_shape[1:])
    calc.per_axis("field limit", lambda i: (
        "B = max(B of each branch)", _max_of(b[i] for b in bounds), calc.bound[i],
        f"each branch's bound: the input's {image[i]} plus the padding read on the branch's "
        "paths"))
    _cap_steps(calc)


def _max_of(values) -> str:
    """`max(27, 11)`, or the one value alone (Python's max wants two or more)."""
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else f"max({', '.join(values)})"

