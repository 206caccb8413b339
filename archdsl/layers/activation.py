"""Activations: element-wise nonlinearities, and softmax over an axis or across channel groups."""

from __future__ import annotations

from .base import (UNCHANGED_SHAPE, call, BOOL, CHOICE, FLOAT, INT, Arg, LayerError, LayerKind,
                   fmt_shape, layer)


def _simple(name: str, torch_name: str, summary: str, aliases: dict[str, str] | None = None):
    """Register an activation that takes no arguments; `aliases` as LayerKind's."""

    @layer(name, family="activation", nonlinear=True, activation=True, summary=summary)
    class Simple(LayerKind):
        def torch(self, a, x):
            return call(torch_name)

    Simple.__name__ = Simple.__qualname__ = torch_name
    Simple.aliases = dict(aliases or {})
    return Simple


ReLU = _simple("relu", "ReLU", "max(0, x)")
ReLU6 = _simple("relu6", "ReLU6", "min(max(0, x), 6)")
SiLU = _simple("silu", "SiLU", "x·sigmoid(x), also called swish", {"swish": ""})
Hardswish = _simple("hardswish", "Hardswish", "x·relu6(x+3)/6 (MobileNetV3)", {"hswish": ""})
Hardsigmoid = _simple("hardsigmoid", "Hardsigmoid", "relu6(x+3)/6", {"hsigmoid": ""})
Sigmoid = _simple("sigmoid", "Sigmoid", "1/(1+e^-x)")
Tanh = _simple("tanh", "Tanh", "hyperbolic tangent")


@layer("leakyrelu", family="activation", positional=("slope",), nonlinear=True, activation=True,
       summary="x for x > 0, slope·x otherwise")
class LeakyReLU(LayerKind):
    args = (Arg("slope", FLOAT, 0.01, doc="negative slope", aliases=("negative_slope", "alpha")),)

    def describe(self, a):
        return f"leakyrelu {a.slope:g}"

    def torch(self, a, x):
        return call("LeakyReLU", a.slope)


@layer("prelu", family="activation", words={"perchannel": ("per_channel", True)}, nonlinear=True,
       activation=True,
       summary="leaky ReLU with a learnt slope (one, or one per channel with `perchannel`)")
class PReLU(LayerKind):
    args = (Arg("per_channel", BOOL, False, doc="one slope per channel"),
            Arg("init", FLOAT, 0.25, doc="initial slope"))

    reference = {"shape": UNCHANGED_SHAPE, "params": "1, or C with `perchannel`"}

    def rules(self, a, x, calc):
        if a.per_channel:
            calc.params = calc.step("parameters", "C slopes (perchannel)", str(x[0]), x[0])
        else:
            calc.params = calc.step("parameters", "1 slope shared by all channels", "1", 1)
        calc.step("output", "output = input", fmt_shape(x), list(x))

    def torch(self, a, x):
        return call("PReLU", x[0] if a.per_channel else 1, init=a.init)


@layer("elu", family="activation", positional=("alpha",), nonlinear=True, activation=True,
       summary="x for x > 0, alpha·(e^x − 1) otherwise")
class ELU(LayerKind):
    args = (Arg("alpha", FLOAT, 1.0, doc="saturation value for negative inputs"),)

    def torch(self, a, x):
        return call("ELU", a.alpha)


@layer("gelu", family="activation", words={"tanh": ("approximate", "tanh")}, nonlinear=True,
       activation=True,
       summary="Gaussian error linear unit (`tanh` for the tanh approximation)")
class GELU(LayerKind):
    args = (Arg("approximate", CHOICE, "none", choices=("none", "tanh"), doc="approximation"),)

    def torch(self, a, x):
        return call("GELU", approximate=a.approximate)


# The axes softmax may run over, per input rank (3: C×H×W, 2: N×C tokens, 1: a vector), as
# the tensor's dimensions (the batch is 0); `hw` is both spatial axes at once (own module).
# The same words as the reductions' (`mean hw`).
SOFTMAX_AXES = {
    3: {"channels": 1, "h": 2, "w": 3, "hw": (2, 3)},
    2: {"tokens": 1, "channels": 2},
    1: {"channels": 1},
}
_AXIS_WORDS = ("channels", "tokens", "h", "w", "hw")
_READS = {3: "a C×H×W map", 2: "a sequence of tokens", 1: "a vector"}
_OWN = "archdsl.nn.conv:"


class _Softmax(LayerKind):
    """softmax and log-softmax: over one axis, or across groups of the channels."""

    log = False
    args = (Arg("dim", CHOICE, "channels", choices=_AXIS_WORDS,
                doc="the axis whose values sum to 1: channels (a vector's features, a "
                    "sequence's channels), tokens, h, w, or hw (all positions of each channel)",
                aliases=("axis",)),
            Arg("groups", INT, 1, flag="g", min=1,
                doc="softmax across this many chunks of the channels at each place (split "
                    "attention's radix; timm's RadixSoftmax)", aliases=("radix",)),
            Arg("cardinality", INT, 1, min=1,
                doc="with `groups`: the channels are cardinality × groups × rest, each of the "
                    "cardinality blocks split into its own groups"))

    reference = {
        "input": "a feature map, a sequence of tokens or a vector",
        "shape": UNCHANGED_SHAPE + "; over `dim`: channels (dimension 1 of a map or vector, the "
                 "last of a token sequence), tokens, h, w or hw (each channel's H×W map); with "
                 "`groups r`, C read as cardinality × r × k and softmax across the r groups at "
                 "each place, laid out r first (timm's RadixSoftmax: `x.view(B, card, r, -1)"
                 ".transpose(1, 2)`, softmax over dimension 1, reshaped to the input's shape)",
        "errors": "E-RANK (an axis the input does not have: `tokens` on a map, `h` on a "
                  "vector), E-GROUPS (groups × cardinality must divide the channels), "
                  "E-ARG-RANGE (`groups` or `cardinality` with an axis other than channels)",
    }

    def rules(self, a, x, calc):
        axes = SOFTMAX_AXES.get(len(x), {})
        if a.dim not in axes:
            raise LayerError("E-RANK", f"{self.name} over `{a.dim}` needs another input: it reads "
                             f"{_READS.get(len(x), 'a tensor')} ({fmt_shape(x)})", arg="dim",
                             hint="on this input write " + " or ".join(
                                 f"`dim={w}`" for w in axes))
        what = {"channels": "the channels" if len(x) != 1 else "the features",
                "tokens": "the tokens", "h": "H", "w": "W",
                "hw": "all H×W positions of each channel"}[a.dim]
        if a.groups == 1 and a.cardinality == 1:
            calc.same(f"{self.name} over {what}; no parameters; receptive field unchanged")
            return
        if a.dim != "channels":
            arg = "groups" if a.groups != 1 else "cardinality"
            raise LayerError("E-ARG-RANGE", f"`{arg}` splits the channels, but this {self.name} "
                             f"runs over {what}", arg=arg,
                             hint=f"drop `dim={a.dim}`, or `{arg}=…`")
        if a.groups == 1:
            raise LayerError("E-ARG-RANGE", f"`cardinality` without `groups`: a {self.name} across "
                             "one group is constant", arg="cardinality",
                             hint="write the groups too (`groups=2`), or `sigmoid` (what timm's "
                                  "RadixSoftmax does for a radix of 1)")
        c = x[-1] if len(x) == 2 else x[0]
        blocks = a.groups * a.cardinality
        if c % blocks:
            raise LayerError("E-GROUPS", f"{a.cardinality} × {a.groups} groups do not divide the "
                             f"{c} channels", arg="groups",
                             hint="the channels must be cardinality × groups × a whole number")
        calc.step("channels per group", "k = C / (cardinality * groups)",
                  f"{c} / ({a.cardinality} * {a.groups})", c // blocks,
                  f"C read as {a.cardinality} x {a.groups} x {c // blocks}; {self.name} across the "
                  f"{a.groups} groups at each place, the output laid out groups first (timm's "
                  "RadixSoftmax)")
        calc.same("no parameters; receptive field unchanged")

    def describe(self, a):
        parts = [self.name] + ([] if a.dim == "channels" else [a.dim])
        if a.groups != 1 or a.cardinality != 1:
            parts.append(f"g{a.groups}" + (f"×{a.cardinality}" if a.cardinality != 1 else ""))
        return " ".join(parts)

    def torch(self, a, x):
        dim = SOFTMAX_AXES[len(x)][a.dim]
        if a.groups != 1 or a.cardinality != 1:
            return call(_OWN + "GroupSoftmax", a.groups, a.cardinality, dim=dim, log=self.log)
        if a.dim == "hw":
            return call(_OWN + "SpatialSoftmax", log=self.log)
        return call("LogSoftmax" if self.log else "Softmax", dim=dim)


@layer("softmax", family="activation", nonlinear=True, activation=True,
       scores_to_probabilities=True, gives_probabilities=True,
       summary="softmax over the channels (or features), or another axis, or across groups")
class Softmax(_Softmax):
    pass


@layer("logsoftmax", family="activation", nonlinear=True, activation=True,
       scores_to_probabilities=True,
       summary="log-softmax over the channels (or features), or another axis, or across groups")
class LogSoftmax(_Softmax):
    log = True
