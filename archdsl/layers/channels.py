"""Channel-wise layers torch.nn has no class for: a chunk of the channels and the channel
shuffle (ShuffleNetV2), layer norm over the channels at each position, a linear map over the
channels at each position and a learnt per-channel scale (ConvNeXt). Their modules are
archdsl's own (archdsl/nn/channels.py). None slides a window: the receptive field is kept."""

from __future__ import annotations

from .base import (BOOL, FLOAT, INT, UNCHANGED_SHAPE, Arg, LayerError, LayerKind, call, fmt_shape,
                   layer, need_map)
from .calc import affine_steps

NO_WINDOW = "no window slides: the receptive field is kept"

_NN = "archdsl.nn.channels:"


@layer("split", family="shape", positional=("index", "chunks"), reshapes=True,
       summary="the index-th of `chunks` channel chunks, as x.chunk(chunks, dim=1)[index]")
class Split(LayerKind):
    args = (Arg("index", INT, min=0, doc="which chunk, counting from 0"),
            Arg("chunks", INT, 2, min=1, doc="number of chunks"))

    reference = {
        "input": "a feature map or a vector; C is its first dimension",
        "shape": "`torch.chunk`'s chunk `index`: chunks of `ceil(C/chunks)` channels, the last "
                 "one smaller; the other dimensions unchanged",
        "errors": "E-ARG-RANGE (`index` past the last chunk torch.chunk makes)",
    }

    def rules(self, a, x, calc):
        c = x[0]
        # torch.chunk: chunks of ceil(C / chunks), the last smaller
        size = calc.step("chunk size", "ceil(C / chunks)  (torch.chunk)", f"ceil({c} / {a.chunks})",
                         -(-c // a.chunks), "chunks of this size, the last one smaller when they "
                                            "do not divide C")
        made = calc.step("chunks made", "ceil(C / chunk size)", f"ceil({c} / {size})",
                         -(-c // size), "" if -(-c // size) == a.chunks else
                         f"fewer than the {a.chunks} asked for: torch.chunk makes only these")
        if a.index >= made:
            raise LayerError("E-ARG-RANGE", f"split {a.index} {a.chunks} asks for chunk "
                             f"{a.index}, but {c} channels make only {made} chunk"
                             f"{'s' if made != 1 else ''} of {size} (x.chunk({a.chunks}))",
                             hint=f"use an index from 0 to {made - 1}", arg="index")
        out = calc.step("channels", "min(chunk size, C - index * chunk size)",
                        f"min({size}, {c} - {a.index} * {size})", min(size, c - a.index * size),
                        f"chunk {a.index} of {made}: channels {a.index * size} to "
                        f"{min((a.index + 1) * size, c) - 1}, as "
                        f"x.chunk({a.chunks}, dim=1)[{a.index}]")
        calc.output = (out,) + tuple(x[1:])
        calc.step("parameters", "none: channels are only picked", "0", 0, NO_WINDOW)

    def describe(self, a):
        return f"split {a.index}/{a.chunks}"

    def torch(self, a, x):
        return call(_NN + "ChannelChunk", a.chunks, a.index)


@layer("shuffle", family="shape", positional=("groups",), reshapes=True,
       summary="channel shuffle: the channels read as groups x C/groups, transposed "
               "(torchvision's channel_shuffle)")
class Shuffle(LayerKind):
    aliases = {"channelshuffle": ""}
    args = (Arg("groups", INT, 2, min=1, doc="number of channel groups"),)

    reference = {
        "input": "a C×H×W feature map",
        "shape": UNCHANGED_SHAPE,
        "errors": "E-RANK, E-GROUPS (groups must divide C)",
    }

    def rules(self, a, x, calc):
        c = need_map("shuffle", x)[0]
        if c % a.groups:
            raise LayerError("E-GROUPS", f"shuffle {a.groups} does not divide the {c} "
                             "channels", hint="the group count must divide the channel count",
                             arg="groups")
        per = calc.step("channels per group", "C / groups (groups must divide C)",
                        f"{c} / {a.groups}", c // a.groups)
        calc.same(f"the {c} channels read as {a.groups} x {per}, transposed to {per} x "
                  f"{a.groups}: output channel i * groups + g is input channel g * (C / groups) "
                  "+ i (torchvision's channel_shuffle)")
        calc.step("parameters", "none: channels are only re-ordered", "0", 0, NO_WINDOW)

    def describe(self, a):
        return f"shuffle {a.groups}"

    def torch(self, a, x):
        return call(_NN + "ChannelShuffle", a.groups)


@layer("layernorm2d", family="norm", words={"noaffine": ("affine", False)}, nonlinear=True,
       fresh_output=True, normalises=True,
       summary="layer normalisation over the channels at each position (torchvision's "
               "LayerNorm2d)")
class LayerNorm2d(LayerKind):
    args = (Arg("eps", FLOAT, 1e-5, min=0, doc="added to the variance for stability"),
            Arg("affine", BOOL, True,
                doc="learn a per-channel scale and shift (`noaffine` turns it off)"))

    reference = {
        "input": "a C×H×W feature map",
        "shape": UNCHANGED_SHAPE,
        "params": "`2C` when affine, else 0",
        "errors": "E-RANK",
    }

    def rules(self, a, x, calc):
        c, h, w = need_map("layernorm2d", x)
        calc.params = affine_steps(calc, "C: one scale per channel", "C: one shift per channel",
                                   str(c), c, a.affine)
        calc.same(f"the {c} values at each of the {h} x {w} positions are normalised together "
                  "(torchvision's LayerNorm2d); no buffers: statistics come from each position; "
                  "0 MACs counted, as for every norm")

    def torch(self, a, x):
        return call(_NN + "LayerNorm2d", x[0], eps=a.eps, elementwise_affine=a.affine)


@layer("pointwise", family="linear", positional=("out",), words={"nobias": ("bias", False)},
       fresh_output=True,
       summary="a linear layer over the channels at each position (ConvNeXt's "
               "Permute; Linear; Permute)")
class Pointwise(LayerKind):
    weights = ("weight",)
    args = (Arg("out", INT, min=1, doc="output channels"),
            Arg("bias", BOOL, True, doc="learn an additive bias (`nobias` turns it off)"))

    reference = {
        "input": "a C×H×W feature map",
        "shape": "out × H × W",
        "params": "`C·out`, plus `out` with a bias",
        "macs": "`H·W·C·out`",
        "errors": "E-RANK",
    }

    def rules(self, a, x, calc):
        c, h, w = need_map("pointwise", x)
        calc.output = (a.out, h, w)
        calc.step("output", "C_out x H x W (the same Linear at every position)",
                  fmt_shape(calc.output), list(calc.output))
        calc.params = calc.step(
            "parameters", "weight + bias" if a.bias else "weight (nobias)",
            f"{c} * {a.out}" + (f" + {a.out}" if a.bias else ""), c * a.out + (a.out if a.bias else 0),
            "nn.Linear(C_in, C_out): weight C_out x C_in, bias C_out; the parameters of "
            "`conv out k1`")
        calc.macs = calc.step("MACs", "H * W * C_in * C_out (one Linear per position)",
                              f"{h} * {w} * {c} * {a.out}", h * w * c * a.out,
                              "bias additions are not counted")

    def describe(self, a):
        return f"pointwise {a.out}"

    def torch(self, a, x):
        return call(_NN + "PointwiseLinear", x[0], a.out, bias=a.bias)


@layer("layerscale", family="norm", positional=("init",), fresh_output=True, normalises=True,
       summary="a learnt scale per channel, starting at `init` (ConvNeXt's layer_scale)")
class LayerScale(LayerKind):
    args = (Arg("init", FLOAT, 1e-6, doc="the scale's starting value"),)

    reference = {
        "input": "a C×H×W feature map",
        "shape": UNCHANGED_SHAPE,
        "params": "`C`",
        "errors": "E-RANK",
    }

    def rules(self, a, x, calc):
        c = need_map("layerscale", x)[0]
        calc.params = calc.step("parameters", "C: one learnt scale per channel (a C x 1 x 1 tensor)",
                                str(c), c, f"each starts at {a.init:g} (ConvNeXt's layer_scale)")
        calc.same("each channel multiplied by its scale; an element-wise product: 0 MACs counted")

    def describe(self, a):
        return f"layerscale {a.init:g}"

    def torch(self, a, x):
        return call(_NN + "LayerScale", x[0], a.init)
