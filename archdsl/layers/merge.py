"""Merges: where the branches of a combinator (`residual`, `add`, `mul`, `concat`) meet again.

A merge kind is a layer kind with several inputs, one per branch in branch order. Its entry
is the one place that knows it: how shapes combine, how receptive fields do, the tensor
operation (torch), the Python expression (codegen), its drawing symbol. Registering a merge
kind also makes it a combinator of the same name (`name< a | b >`, branches `branch1`, …).
`residual< body | shortcut >` is the one combinator with a merge of another name (add), its
own branch roles, and a shortcut that archdsl makes when it is left out.
"""

from __future__ import annotations

import functools
import operator
from typing import ClassVar

from .base import REGISTRY, LayerError, LayerKind, fmt_shape, layer


def broadcast(shapes: list[tuple]) -> tuple | None:
    """PyTorch's broadcasting over shapes of equal rank, or None when they do not broadcast."""
    if len({len(s) for s in shapes}) != 1:
        return None
    out = []
    for dims in zip(*shapes):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


class MergeKind(LayerKind):
    """A layer with several inputs, one per branch, in branch order."""

    family = "merge"
    fresh_output = True
    merges = True
    symbol: ClassVar[str] = "?"  # the drawing's merge node
    round: ClassVar[bool] = True  # a circle in drawings (a box for a word such as `concat`)
    module_name: ClassVar[str] = "Merge"  # how the compiled module prints

    def combine(self, xs: list[tuple]) -> tuple:
        """The output shape for the branches' shapes, or LayerError as PyTorch would fail: the
        one rule a new merge kind needs (its `rules` show it as one step)."""
        raise NotImplementedError

    def rules(self, a, x, calc) -> None:
        """The merge of `calc.xs`, one shape per branch, as steps (base.py's LayerKind.rules);
        the receptive field of a merge is propagate.py's."""
        y = self.combine(calc.xs)
        calc.output = tuple(calc.step("output", f"{self.name}'s rule over the branches",
                                      f"{branches(calc)} -> {fmt_shape(y)}", list(y)))
        learns_nothing(calc)

    def bound(self, a) -> "MergeKind":
        """The merge as one node runs it, with that node's arguments `a` (a merge written as
        a layer takes arguments: `x, ref; resize mode=bilinear`): an object with this kind's
        `merge` and `python`, which flow.py runs and codegen writes. Without arguments, the
        kind itself."""
        return self

    def merge(self, outputs: list):
        """The torch operation on the branches' output tensors."""
        raise NotImplementedError

    def python(self, names: list[str]) -> str:
        """The same operation as a Python expression over variables `names`."""
        raise NotImplementedError


class _Elementwise(MergeKind):
    infix: ClassVar[str] = "+"  # in Python source
    reduce: ClassVar = staticmethod(operator.add)  # on tensors

    def merge(self, outputs):
        return functools.reduce(self.reduce, outputs)

    def rules(self, a, x, calc):
        out = broadcast(calc.xs)
        if out is None:
            raise LayerError("E-SHAPE", self.mismatch + ", ".join(fmt_shape(x) for x in calc.xs))
        calc.output = tuple(calc.step(
            "output", "per dimension: equal in every branch, or 1 (broadcast)",
            f" {self.infix} ".join(fmt_shape(x) for x in calc.xs), list(out),
            "a size of 1 is repeated to match the other branches"
            if any(x != out for x in calc.xs) else ""))
        learns_nothing(calc)

    def python(self, names):
        return f" {self.infix} ".join(names)


@layer("add", family="merge", summary="element-wise sum of the branches (broadcasting)")
class Add(_Elementwise):
    symbol, module_name, infix, reduce = "⊕", "Add", "+", staticmethod(operator.add)
    mismatch = "add needs shapes that match or broadcast, but the branches give "

    reference = {
        "shape": "PyTorch broadcasting over branches of equal rank: along each dimension the "
                 "sizes must be equal or 1, and the output takes the size that is not 1",
        "rf": "per axis, the largest receptive-field size and the largest stride of the branches",
        "errors": "E-SHAPE (shapes neither match nor broadcast; `residual` needs equal shapes)",
    }


@layer("mul", family="merge", nonlinear=True,
       summary="element-wise product of the branches (a 1x1 gate broadcasts)")
class Mul(_Elementwise):
    symbol, module_name, infix, reduce = "⊗", "Mul", "*", staticmethod(operator.mul)
    aliases = {"multiply": ""}
    mismatch = "mul needs shapes that match or broadcast (a Cx1x1 gate), but the branches give "

    reference = {
        "shape": "as add: broadcasting, so a C×1×1 gate scales a C×H×W map",
        "rf": "as add",
        "errors": "E-SHAPE",
    }


@layer("sub", family="merge",
       summary="element-wise difference: the first branch minus the others (broadcasting)")
class Sub(_Elementwise):
    symbol, module_name, infix, reduce = "⊖", "Sub", "-", staticmethod(operator.sub)
    aliases = {"subtract": ""}
    mismatch = "sub needs shapes that match or broadcast, but the branches give "

    reference = {
        "shape": "as add: broadcasting over branches of equal rank",
        "rf": "as add",
        "errors": "E-SHAPE",
    }


@layer("div", family="merge", nonlinear=True,
       summary="element-wise quotient: the first branch divided by the others (broadcasting)")
class Div(_Elementwise):
    symbol, module_name, infix, reduce = "⊘", "Div", "/", staticmethod(operator.truediv)
    aliases = {"divide": ""}
    mismatch = "div needs shapes that match or broadcast, but the branches give "

    reference = {
        "shape": "as add: broadcasting over branches of equal rank",
        "rf": "as add",
        "errors": "E-SHAPE",
    }


@layer("concat", family="merge", summary="the branches joined along channels (features for vectors)")
class Concat(MergeKind):
    symbol, round, module_name = "concat", False, "Concat"
    aliases = {"concatenate": "", "cat": ""}

    reference = {
        "shape": "channels (or features) summed; every branch must have the same rank and the "
                 "same H×W",
        "rf": "as add",
        "errors": "E-CONCAT",
    }

    def rules(self, a, x, calc):
        xs = calc.xs
        if len({len(x) for x in xs}) != 1 or len({x[1:] for x in xs}) != 1:
            raise LayerError("E-CONCAT", "concat needs the same spatial size in every branch, but they "
                             "give " + ", ".join(fmt_shape(x) for x in xs),
                             hint="give every branch the same stride and padding")
        what = "channels" if len(xs[0]) == 3 else "features"
        channels, rest = [x[0] for x in xs], xs[0][1:]
        joined = calc.step(what, f"C = sum of the branches' {what}", " + ".join(map(str, channels)),
                           sum(channels), branches(calc))
        if rest:
            calc.step("spatial size", "H x W equal in every branch", fmt_shape(rest), list(rest),
                      "concat joins along channels only: every branch must keep the same H x W")
        calc.output = (joined, *rest)
        learns_nothing(calc)

    def merge(self, outputs):
        import torch

        return torch.cat(outputs, dim=1)

    def python(self, names):
        return f"torch.cat([{', '.join(names)}], dim=1)"


def branches(calc) -> str:
    """`body 64x56x56, shortcut 64x56x56`: the branches' roles and shapes."""
    site = calc.node.merge if calc.node is not None else None
    how = combinator(site.combinator) if site is not None else None
    roles = how.roles(len(calc.xs)) if how is not None else \
        [f"branch{i + 1}" for i in range(len(calc.xs))]
    return ", ".join(f"{role} {fmt_shape(x)}" for role, x in zip(roles, calc.xs))


def learns_nothing(calc) -> None:
    calc.step("parameters", "none: a merge learns nothing", "0", 0)


# ----------------------------------------------------------------------------- combinators


class Combinator:
    """`name< branch | branch … >`: branches that read the same input, closed by a merge."""

    name: str = ""
    min_branches: int = 2
    max_branches: int | None = None
    equal_shapes: bool = False  # branches must agree exactly (no broadcasting)

    def __init__(self, merge: str):
        self.merge_name = merge

    @property
    def merge_kind(self) -> MergeKind:
        return REGISTRY[self.merge_name]

    def roles(self, n: int) -> list[str]:
        """The branches' names, which are also their module paths."""
        return [f"branch{i + 1}" for i in range(n)]

    def auto_shortcut(self, n: int) -> bool:
        """Whether archdsl adds a branch of its own (residual's shortcut)."""
        return False

    def too_many(self) -> tuple[str, str | None]:
        """The message and hint for more than `max_branches` branches."""
        return f"{self.name} takes at most {self.max_branches} branches", None

    # The torch module that runs the branches and merges them: a class of
    # archdsl/torch_backend.py, made with `module_args(branches)` (branches: role -> module).
    torch_module = "Branches"

    def module_args(self, branches: dict) -> tuple:
        return (self.merge_kind, branches)

    def python(self, outputs: list[str], fork: str) -> str:
        """The merge as a Python expression over the branches' variables."""
        return self.merge_kind.python(outputs)

    def rules(self, site, calc) -> None:
        """The merge at `site` of the branches' shapes `calc.xs`: the merge kind's rules, or,
        where the branches must agree exactly, that check and one step."""
        xs = calc.xs
        if not self.equal_shapes:
            self.merge_kind.rules(calc.node.args, calc.x, calc)
            return
        if any(x != xs[0] for x in xs):
            raise LayerError("E-SHAPE", f"{site.combinator} needs equal shapes")
        calc.output = tuple(calc.step(
            "output", " + ".join(self.roles(len(xs))) + ": equal shapes, no broadcasting",
            branches(calc), list(xs[0]), self.shortcut_note(site, calc.graph)))
        learns_nothing(calc)

    def shortcut_note(self, site, graph) -> str:
        """Where the shortcut of an equal-shapes merge comes from (for explain)."""
        return ""

    def culprit(self, site, xs: list[tuple], exc: LayerError, source_text):
        """Where a shape error at the merge points, as (span, label, hint, message): the first
        branch whose shape differs from the first branch's."""
        odd = next((i for i, x in enumerate(xs) if i and x != xs[0]), len(xs) - 1)
        span = site.branch_spans[odd] if odd < len(site.branch_spans) else site.keyword_span
        return span, f"gives {fmt_shape(xs[odd])}", exc.hint, exc.message


class Residual(Combinator):
    """`residual< body | shortcut >`: body(x) + shortcut(x); without a shortcut, x itself, or
    (when the body changes the shape) torchvision's projection, made by the shortcuts pass."""

    name, min_branches, max_branches, equal_shapes = "residual", 1, 2, True

    def roles(self, n):
        return ["body", "shortcut"][:n]

    def auto_shortcut(self, n):
        return n == 1

    def too_many(self):
        return ("residual takes a body and at most one shortcut",
                "write `residual< body | shortcut >`")

    torch_module = "Residual"

    def module_args(self, branches):
        return (branches["body"], branches.get("shortcut"))

    @staticmethod
    def projection_stride(body: tuple, given: tuple) -> tuple[int, int]:
        """The stride of the 1x1 projection that turns `given` into `body`'s size (the
        shortcut archdsl makes), or LayerError saying why none can."""
        if len(body) != len(given):
            raise LayerError("E-SHAPE", f"the residual body turns {fmt_shape(given)} into "
                             f"{fmt_shape(body)}, and no projection can bridge that",
                             hint="keep the body's output a feature map (or a vector) like its "
                                  "input")
        if len(body) != 3:
            return (1, 1)
        strides = []
        for axis in (1, 2):
            # a 1x1 conv with stride s gives ceil(G/s); the smallest s reaching B is ceil(G/B)
            s = -(-given[axis] // body[axis]) if body[axis] > 0 else 0
            if s < 1 or -(-given[axis] // s) != body[axis]:
                raise LayerError(
                    "E-SHAPE", f"the residual body turns {fmt_shape(given)} into "
                    f"{fmt_shape(body)}, which no strided 1x1 projection can match",
                    hint="pad the body's convolutions to keep the size (e.g. `p1` with `k3`), or "
                         "write the shortcut yourself after `|`")
            strides.append(s)
        return tuple(strides)

    def python(self, outputs, fork):
        return f"{outputs[0]} + {outputs[1] if len(outputs) > 1 else fork}"

    def rules(self, site, calc):
        if site.auto_shortcut and calc.xs[0] != calc.xs[1]:
            self.projection_stride(*calc.xs)  # says why no projection fits
        super().rules(site, calc)

    def shortcut_note(self, site, graph):
        if not site.projection:
            return ("no shortcut written: it is the input x itself (identity)" if site.auto_shortcut
                    else "the shortcut is written out in the spec")
        first = graph.layer(site.projection[0])
        what = f"a 1x1 conv with stride {fmt_shape(first.args.stride)}" \
            if first.kind.sliding_window else f"a {first.op} without bias"
        return (f"the body changes the input's shape, so archdsl's shortcut is torchvision's "
                f"projection: {what} and a batch norm "
                f"({', '.join('.'.join(p.split('.')[-2:]) for p in site.projection)})")


    def culprit(self, site, xs, exc, source_text):
        """Blame the shortcut, and say how to give it the body's stride or channels."""
        if len(site.branch_spans) < 2:
            return site.keyword_span, None, exc.hint, exc.message
        body, short = xs
        message = (f"add needs equal shapes: body gives {fmt_shape(body)}, shortcut gives "
                   f"{fmt_shape(short)}")
        written = site.branch_layers[1]
        strided = next((w for w in written if getattr(REGISTRY.get(w.op), "sliding_window",
                                                      False)), None)
        first = strided or (written[0] if written else None)
        span = first.span if first is not None else site.branch_spans[1]
        label, hint = None, exc.hint
        if len(body) == 3 and len(short) == 3:
            label = f"keeps {short[1]}x{short[2]}" if short[1:] != body[1:] else \
                f"gives {short[0]} channels"
            if short[1:] != body[1:] and body[1] and short[1] % body[1] == 0 and strided is not None:
                hint = (f"give the shortcut the body's stride: `{source_text(strided.span)} "
                        f"s={short[1] // body[1]}`")
            elif short[0] != body[0]:
                hint = f"make the shortcut produce {body[0]} channels"
        return span, label, hint, message


class ShortcutFirst(Combinator):
    """`shortcut_first< shortcut | body >`: shortcut(x) + body(x), the shortcut's modules
    registered (and its tensors saved) before the body's, as torchvision's RegNet and MaxViT
    register theirs (`proj` before `f`). Both branches are written; they must give equal
    shapes."""

    name, min_branches, max_branches, equal_shapes = "shortcut_first", 2, 2, True

    def roles(self, n):
        return ["shortcut", "body"][:n]

    def too_many(self):
        return ("shortcut_first takes a shortcut and a body",
                "write `shortcut_first< shortcut | body >`")

    def shortcut_note(self, site, graph):
        return ("shortcut_first: the same sum as residual, with the shortcut's modules "
                "registered first (torchvision's `proj` before `f`), so weights load in order")

    def culprit(self, site, xs, exc, source_text):
        """Blame the body, whose shape the shortcut has to follow."""
        short, body = xs
        message = (f"shortcut_first needs equal shapes: shortcut gives {fmt_shape(short)}, body "
                   f"gives {fmt_shape(body)}")
        return (site.branch_spans[1], f"gives {fmt_shape(body)}",
                "make the shortcut give the body's shape (e.g. a 1x1 `conv` at the body's "
                "stride, then `bn`), or write `identity` for a body that keeps it", message)


COMBINATORS: dict[str, Combinator] = {"residual": Residual("add"),
                                      "shortcut_first": ShortcutFirst("add")}


def combinator(name: str) -> Combinator | None:
    """The combinator written `name<`: residual, or any registered merge kind."""
    found = COMBINATORS.get(name)
    if found is None and isinstance(REGISTRY.get(name), MergeKind):
        found = COMBINATORS[name] = Combinator(name)
        found.name = name
    return found


def combinator_names() -> list[str]:
    return ["residual", "shortcut_first"] + [k for k, v in REGISTRY.items() if isinstance(v, MergeKind)]
