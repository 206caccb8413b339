"""Channel-wise layers torch.nn has no class for: a chunk of the channels, or a piece of
given sizes or proportions (Inception-NeXt), any run of them (`slice`), zero channels
appended (ReXNet), the channel shuffle (ShuffleNetV2), layer norm over the channels at each
position, a linear map over the channels at each position and a learnt per-channel scale
(ConvNeXt; timm's LayerScale on a sequence). Their modules are archdsl's own
(archdsl/nn/channels.py). None slides a window: the receptive field is kept."""

from __future__ import annotations

from .base import (BOOL, FLOAT, INT, UNCHANGED_SHAPE, Arg, LayerError, LayerKind, call, fmt_shape,
                   layer, need_map, sequence_text)
from .calc import Calc, affine_steps
from .reshape import Dims, OptionalInt, axis_word

NO_WINDOW = "no window slides: the receptive field is kept"

_NN = "archdsl.nn.channels:"


@layer("split", family="shape", positional=("index", "chunks"), reshapes=True,
       summary="the index-th of `chunks` channel chunks, as x.chunk(chunks, dim=1)[index]; or "
               "of pieces of given `sizes=` or in a `ratio=`")
class Split(LayerKind):
    args = (Arg("index", INT, min=0, doc="which chunk, counting from 0"),
            Arg("chunks", INT, 2, min=1, doc="number of chunks"),
            Arg("sizes", Dims(default_doc="none"), None, min=1,
                doc="the pieces' channel counts, adding up to C: `sizes=60x12x12x12` "
                    "(torch.split)"),
            Arg("ratio", Dims(default_doc="none"), None, min=1,
                doc="the pieces' proportions, `ratio=5x1x1x1`: each piece after the first gets "
                    "floor(C·r/Σr) channels, the first the rest (Inception-NeXt's "
                    "split_indexes)"))

    reference = {
        "input": "a feature map or a vector; C is its first dimension",
        "shape": "`torch.chunk`'s chunk `index`: chunks of `ceil(C/chunks)` channels, the last "
                 "one smaller; with `sizes=`, piece `index` of `torch.split(x, sizes, dim=1)`; "
                 "with `ratio=`, pieces of `floor(C·r/Σr)` channels after a first that takes "
                 "the rest; the other dimensions unchanged",
        "errors": "E-ARG-RANGE (`index` past the last piece; `chunks` with `sizes=` or "
                  "`ratio=`, or both of those; a `ratio=` piece of no channel), E-SHAPE "
                  "(`sizes=` that do not add up to C)",
    }

    def rules(self, a, x, calc):
        if a.sizes is not None or a.ratio is not None:
            _pieces(a, x, calc)
            return
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
        if a.sizes is not None or a.ratio is not None:
            return f"split {a.index} of {':'.join(map(str, a.sizes or a.ratio))}"
        return f"split {a.index}/{a.chunks}"

    def torch(self, a, x):
        if a.sizes is not None or a.ratio is not None:
            start, size = piece(a, x)
            return call(_NN + "ChannelSlice", start, start + size)
        return call(_NN + "ChannelChunk", a.chunks, a.index)


def piece(a, x, calc=None) -> tuple[int, int]:
    """The first channel and the channel count of piece `a.index` of a split by `sizes=` or
    `ratio=` (as steps, when `calc` is given); LayerError as torch.split would fail."""
    calc = calc or Calc([x])
    if a.sizes is not None and a.ratio is not None:
        raise LayerError("E-ARG-RANGE", "split cuts by `sizes=` or by `ratio=`, not both",
                         hint="keep one of them", arg="ratio")
    if "chunks" in a.given:
        raise LayerError("E-ARG-RANGE", f"split cuts into `chunks` or by "
                         f"`{'sizes' if a.sizes is not None else 'ratio'}=`, not both",
                         hint="drop the chunk count", arg="chunks")
    c = x[0]
    if a.sizes is not None:
        pieces = list(a.sizes)
        total = calc.step("channels asked for", "sum of sizes", " + ".join(map(str, pieces)),
                          sum(pieces))
        if total != c:
            raise LayerError("E-SHAPE", f"split sizes {fmt_shape(a.sizes)} add up to {total}, but "
                             f"the input has {c} {axis_word(x)}", arg="sizes",
                             hint=f"sizes must add up to {c} (torch.split); `ratio=` gives "
                                  "proportions that follow the channel count")
    else:
        pieces = _ratio_pieces(a, c, calc)
    if a.index >= len(pieces):
        raise LayerError("E-ARG-RANGE", f"split {a.index} asks for piece {a.index}, but "
                         f"{fmt_shape(a.sizes or a.ratio)} makes {len(pieces)} pieces",
                         hint=f"use an index from 0 to {len(pieces) - 1}", arg="index")
    start = calc.step("first channel", "sum of the pieces before", " + ".join(
        map(str, pieces[:a.index])) or "0", sum(pieces[:a.index]))
    return start, pieces[a.index]


def _ratio_pieces(a, c: int, calc) -> list[int]:
    """Inception-NeXt's split_indexes for a ratio: floor(C·r/Σr) after the first, which takes
    the rest."""
    ratio, whole = a.ratio, sum(a.ratio)
    rest = [c * r // whole for r in ratio[1:]]
    pieces = [c - sum(rest)] + rest
    calc.step("pieces", "floor(C * r / sum(r)) after the first; the first: C - the others",
              ", ".join([f"{c} - ({' + '.join(map(str, rest))})" if rest else str(c)] +
                        [f"floor({c} * {r} / {whole})" for r in ratio[1:]]), pieces,
              "Inception-NeXt's split_indexes: (C - 3 * int(C / 8), int(C / 8), …) for 5x1x1x1")
    if 0 in pieces:
        raise LayerError("E-ARG-RANGE", f"ratio {fmt_shape(ratio)} on {c} channels leaves piece "
                         f"{pieces.index(0)} with no channel", arg="ratio",
                         hint=f"give it at least {whole} channels, or use `sizes=`")
    return pieces


def _pieces(a, x, calc) -> None:
    start, size = piece(a, x, calc)
    out = calc.step("channels", "the piece's size", str(size), size,
                    f"piece {a.index}: {axis_word(x)} {start} to {start + size - 1}, as "
                    f"x[:, {start}:{start + size}]")
    calc.output = (out,) + tuple(x[1:])
    calc.step("parameters", "none: channels are only picked", "0", 0, NO_WINDOW)


@layer("slice", family="shape", positional=("start", "end"), reshapes=True,
       summary="channels start to end − 1, as x[:, start:end]; tokens on a sequence")
class Slice(LayerKind):
    aliases = {"narrow": ""}
    args = (Arg("start", INT, min=0, doc="the first channel, counting from 0"),
            Arg("end", OptionalInt("C (to the last)"), None, min=0,
                doc="the channel after the last one taken (Python's end)"))

    reference = {
        "input": "a feature map, a sequence or a vector; the first dimension (channels, tokens "
                 "or features) is cut",
        "shape": "`end − start` along the first dimension; the others unchanged",
        "errors": "E-ARG-RANGE (`start` at or past C, `end` past C or not after `start`: "
                  "archdsl refuses what Python's slice would silently shorten)",
    }

    def rules(self, a, x, calc):
        c, what = x[0], axis_word(x)
        end = c if a.end is None else a.end
        if a.start >= c:
            raise LayerError("E-ARG-RANGE", f"slice starts at {a.start}, but the input has {c} "
                             f"{what} (0 to {c - 1})", hint=f"start from 0 to {c - 1}",
                             arg="start")
        if end > c:
            raise LayerError("E-ARG-RANGE", f"slice ends at {end}, past the input's {c} {what}",
                             hint=f"end at most at {c}, or leave the end out to go to the last",
                             arg="end")
        if end <= a.start:
            raise LayerError("E-ARG-RANGE", f"slice {a.start} {end} takes nothing: the end must "
                             "come after the start", hint=f"e.g. `slice {a.start} {c}`",
                             arg="end")
        out = calc.step(what, "end - start", f"{end} - {a.start}", end - a.start,
                        f"{what} {a.start} to {end - 1} of {c}, as x[:, {a.start}:{end}]")
        calc.output = (out,) + tuple(x[1:])
        calc.step("parameters", "none: values are only picked", "0", 0, NO_WINDOW)

    def describe(self, a):
        return f"slice {a.start}:{'' if a.end is None else a.end}"

    def torch(self, a, x):
        return call(_NN + "ChannelSlice", a.start, x[0] if a.end is None else a.end)


@layer("padchannels", family="shape", positional=("zeros",), reshapes=True,
       summary="`zeros` channels of zeros appended (ReXNet's partial residual: "
               "`residual< … | padchannels n >`)")
class PadChannels(LayerKind):
    args = (Arg("zeros", INT, min=1, doc="how many channels of zeros to append"),)

    reference = {
        "input": "a feature map or a vector",
        "shape": "`C + zeros` channels (or features); the others unchanged",
        "errors": "E-RANK (a sequence: its first dimension is the tokens)",
    }

    def rules(self, a, x, calc):
        if len(x) == 2:
            raise LayerError("E-RANK", f"padchannels appends channels to a map or features to a "
                             f"vector, but its input is {sequence_text(x)}",
                             hint="put it before `tokens`, or after `token`")
        c = x[0]
        out = calc.step(axis_word(x), "C + zeros", f"{c} + {a.zeros}", c + a.zeros,
                        f"{axis_word(x)} {c} to {c + a.zeros - 1} are zeros: a shortcut padded "
                        "so, added to a wider body, adds to its first C (ReXNet)")
        calc.output = (out,) + tuple(x[1:])
        calc.step("parameters", "none: zeros are appended", "0", 0, NO_WINDOW)

    def describe(self, a):
        return f"padchannels +{a.zeros}"

    def torch(self, a, x):
        return call(_NN + "PadChannels", a.zeros)


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
       summary="a learnt scale per channel, starting at `init` (ConvNeXt's layer_scale; timm's "
               "LayerScale on a sequence)")
class LayerScale(LayerKind):
    args = (Arg("init", FLOAT, 1e-6, doc="the scale's starting value"),)

    reference = {
        "input": "a C×H×W feature map, a sequence of N tokens of C channels, or a vector of C "
                 "features",
        "shape": UNCHANGED_SHAPE,
        "params": "`C`: a C×1×1 tensor on a map (ConvNeXt's), C values over the last axis "
                  "otherwise (timm's LayerScale, `x * gamma`)",
    }

    def rules(self, a, x, calc):
        if len(x) == 3:
            c, shown = x[0], "one learnt scale per channel (a C x 1 x 1 tensor)"
        else:
            c = x[-1]
            shown = ("one learnt scale per channel of every token (a C-vector over the last axis)"
                     if len(x) == 2 else "one learnt scale per feature")
        calc.params = calc.step("parameters", f"C: {shown}", str(c), c,
                                f"each starts at {a.init:g} (ConvNeXt's layer_scale, timm's "
                                "LayerScale gamma)")
        calc.same("each channel multiplied by its scale; an element-wise product: 0 MACs counted")

    def describe(self, a):
        return f"layerscale {a.init:g}"

    def torch(self, a, x):
        if len(x) == 3:
            return call(_NN + "LayerScale", x[0], a.init)
        return call(_NN + "LayerScale", x[-1], a.init, spatial=False)
