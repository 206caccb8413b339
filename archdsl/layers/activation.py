"""Activations: element-wise nonlinearities, and softmax over channels."""

from __future__ import annotations

from .base import UNCHANGED_SHAPE, call, BOOL, CHOICE, FLOAT, Arg, LayerKind, fmt_shape, layer


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


@layer("softmax", family="activation", nonlinear=True, activation=True,
       scores_to_probabilities=True, gives_probabilities=True,
       summary="softmax over the channel (or feature) dimension")
class Softmax(LayerKind):
    reference = {"shape": UNCHANGED_SHAPE + "; over dimension 1 (channels, or features)"}

    def torch(self, a, x):
        return call("Softmax", dim=1)


@layer("logsoftmax", family="activation", nonlinear=True, activation=True,
       scores_to_probabilities=True,
       summary="log-softmax over the channel (or feature) dimension")
class LogSoftmax(LayerKind):
    reference = {"shape": UNCHANGED_SHAPE + "; over dimension 1 (channels, or features)"}

    def torch(self, a, x):
        return call("LogSoftmax", dim=1)
