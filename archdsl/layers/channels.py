"""Channel-wise layers torch.nn has no class for: a chunk of the channels and the channel
shuffle (ShuffleNetV2), layer norm over the channels at each position, a linear map over the
channels at each position and a learnt per-channel scale (ConvNeXt). Their modules are
archdsl's own (archdsl/nn/channels.py). None slides a window: the receptive field is kept."""

from __future__ import annotations

from .base import (BOOL, FLOAT, INT, UNCHANGED_SHAPE, Arg, LayerError, LayerKind, call, layer,
                   need_map)

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

    def shape(self, a, x):
        c = x[0]
        size = -(-c // a.chunks)  # torch.chunk: chunks of ceil(C / chunks), the last smaller
        made = -(-c // size)
        if a.index >= made:
            raise LayerError("E-ARG-RANGE", f"split {a.index} {a.chunks} asks for chunk "
                             f"{a.index}, but {c} channels make only {made} chunk"
                             f"{'s' if made != 1 else ''} of {size} (x.chunk({a.chunks}))",
                             hint=f"use an index from 0 to {made - 1}", arg="index")
        return (min(size, c - a.index * size),) + tuple(x[1:])

    def describe(self, a):
        return f"split {a.index}/{a.chunks}"

    def torch(self, a, x):
        return call(_NN + "ChannelChunk", a.chunks, a.index)


@layer("shuffle", family="shape", positional=("groups",), reshapes=True,
       summary="channel shuffle: the channels read as groups x C/groups, transposed "
               "(torchvision's channel_shuffle)")
class Shuffle(LayerKind):
    args = (Arg("groups", INT, 2, min=1, doc="number of channel groups"),)

    reference = {
        "input": "a C×H×W feature map",
        "shape": UNCHANGED_SHAPE,
        "errors": "E-RANK, E-GROUPS (groups must divide C)",
    }

    def shape(self, a, x):
        need_map("shuffle", x)
        if x[0] % a.groups:
            raise LayerError("E-GROUPS", f"shuffle {a.groups} does not divide the {x[0]} "
                             "channels", hint="the group count must divide the channel count",
                             arg="groups")
        return x

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

    def shape(self, a, x):
        need_map("layernorm2d", x)
        return x

    def params(self, a, x, y):
        return 2 * x[0] if a.affine else 0

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

    def shape(self, a, x):
        need_map("pointwise", x)
        return (a.out,) + tuple(x[1:])

    def params(self, a, x, y):
        return x[0] * a.out + (a.out if a.bias else 0)

    def macs(self, a, x, y):
        return x[1] * x[2] * x[0] * a.out  # one Linear per position

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

    def shape(self, a, x):
        need_map("layerscale", x)
        return x

    def params(self, a, x, y):
        return x[0]

    def describe(self, a):
        return f"layerscale {a.init:g}"

    def torch(self, a, x):
        return call(_NN + "LayerScale", x[0], a.init)
