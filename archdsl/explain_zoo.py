"""The explanations of the layer kinds added for the torchvision zoo (docs/language.md, "Layers
added for the zoo"): channel split and shuffle, the per-position layers of ConvNeXt, stochastic
depth, ViT's tokens and self-attention, Swin's window attention, patch merging and MLP, and
MaxViT's partition attention. Each is registered like the kinds of explain_kinds.py
(`@explains`), computes from the layer's Args and its input's shape, and is compared with the
checker's facts by explain.py.

MACs follow the layer files' rules, which count as torchvision's published GFLOPS (fvcore) do:
one per multiply-add of a linear map or of an attention product; softmax, scaling, norms and
element-wise additions or products count 0.
"""

from __future__ import annotations

from .explain_kinds import Work, explains, field_steps, keep_field
from .layers.base import fmt_shape

_NO_WINDOW = "no window slides: the receptive field is kept"


def _same(w: Work, note: str) -> None:
    """`output = input`, with a note."""
    w.step("output", "output = input", fmt_shape(w.x), list(w.x), note)


def _linear_parts(w: Work, what: str, c_in: int, c_out: int, bias: bool, note: str = "",
                  times: int = 1) -> list[int]:
    """One Linear's weight (C_out x C_in) and bias (C_out) as steps, C_out = times * c_out
    (`3 * C` for q, k and v stacked); returns their counts."""
    out, out_text = times * c_out, (f"{times} * {c_out}" if times != 1 else str(c_out))
    formula = "C_out * C_in" if times == 1 else f"{times} * C * C"
    parts = [w.step(f"{what} weight", formula, f"{out_text} * {c_in}", out * c_in, note)]
    if bias:
        parts.append(w.step(f"{what} bias", "C_out" if times == 1 else f"{times} * C",
                            out_text, out))
    return parts


def _total(w: Work, parts: list[int]) -> int:
    """The parameters: the sum of the parts listed above it."""
    return w.step("parameters", "the sum of the parts above", " + ".join(map(str, parts)),
                  sum(parts))


# ----------------------------------------------------------------------------- channels


@explains("split")
def _split(w: Work) -> None:
    a, c = w.a, w.x[0]
    size = w.step("chunk size", "ceil(C / chunks)  (torch.chunk)", f"ceil({c} / {a.chunks})",
                  -(-c // a.chunks), "chunks of this size, the last one smaller when they do "
                                     "not divide C")
    made = w.step("chunks made", "ceil(C / chunk size)", f"ceil({c} / {size})", -(-c // size),
                  "" if -(-c // size) == a.chunks else
                  f"fewer than the {a.chunks} asked for: torch.chunk makes only these")
    out = w.step("channels", "min(chunk size, C - index * chunk size)",
                 f"min({size}, {c} - {a.index} * {size})", min(size, c - a.index * size),
                 f"chunk {a.index} of {made}: channels {a.index * size} to "
                 f"{min((a.index + 1) * size, c) - 1}, as x.chunk({a.chunks}, dim=1)[{a.index}]")
    w.output = (out, *w.x[1:])
    w.step("parameters", "none: channels are only picked", "0", 0, _NO_WINDOW)
    keep_field(w)


@explains("shuffle")
def _shuffle(w: Work) -> None:
    a, c = w.a, w.x[0]
    per = w.step("channels per group", "C / groups (groups must divide C)",
                 f"{c} / {a.groups}", c // a.groups)
    _same(w, f"the {c} channels read as {a.groups} x {per}, transposed to {per} x {a.groups}: "
             "output channel i * groups + g is input channel g * (C / groups) + i "
             "(torchvision's channel_shuffle)")
    w.step("parameters", "none: channels are only re-ordered", "0", 0, _NO_WINDOW)
    keep_field(w)


@explains("layernorm2d")
def _layernorm2d(w: Work) -> None:
    c = w.x[0]
    if w.a.affine:
        w.step("weight (gamma)", "C: one scale per channel", str(c), c)
        w.step("bias (beta)", "C: one shift per channel", str(c), c)
        w.params = w.step("parameters", "gamma + beta", f"{c} + {c}", 2 * c)
    else:
        w.step("parameters", "none (noaffine)", "0", 0)
    _same(w, f"the {c} values at each of the {w.x[1]} x {w.x[2]} positions are normalised "
             "together (torchvision's LayerNorm2d); no buffers: statistics come from each "
             "position; 0 MACs counted, as for every norm")
    keep_field(w)


@explains("pointwise")
def _pointwise(w: Work) -> None:
    a, (c, h, wd) = w.a, w.x
    w.output = (a.out, h, wd)
    w.step("output", "C_out x H x W (the same Linear at every position)",
           fmt_shape(w.output), list(w.output))
    w.params = w.step("parameters", "weight + bias" if a.bias else "weight (nobias)",
                      f"{c} * {a.out}" + (f" + {a.out}" if a.bias else ""),
                      c * a.out + (a.out if a.bias else 0),
                      "nn.Linear(C_in, C_out): weight C_out x C_in, bias C_out; the parameters "
                      "of `conv out k1`")
    w.macs = w.step("MACs", "H * W * C_in * C_out (one Linear per position)",
                    f"{h} * {wd} * {c} * {a.out}", h * wd * c * a.out,
                    "bias additions are not counted")
    keep_field(w)


@explains("layerscale")
def _layerscale(w: Work) -> None:
    c = w.x[0]
    w.params = w.step("parameters", "C: one learnt scale per channel (a C x 1 x 1 tensor)",
                      str(c), c, f"each starts at {w.a.init:g} (ConvNeXt's layer_scale)")
    _same(w, "each channel multiplied by its scale; an element-wise product: 0 MACs counted")
    keep_field(w)


@explains("stochasticdepth")
def _stochastic_depth(w: Work) -> None:
    a = w.a
    scope = "each sample's input" if a.mode == "row" else "the whole batch's input"
    _same(w, f"while training, {scope} is zeroed with probability {a.p:g} and the rest "
             f"scaled by 1 / (1 - p); in eval mode the identity (torchvision's StochasticDepth)")
    w.step("parameters", "none", "0", 0, "no MACs, and " + _NO_WINDOW)
    keep_field(w)


# ----------------------------------------------------------------------------- tokens (ViT)


@explains("tokens")
def _tokens(w: Work) -> None:
    c, h, wd = w.x
    n = w.step("tokens", "N = H * W (one token per position, row by row)", f"{h} * {wd}",
               h * wd)
    w.step("channels", "C per token = C of the map", str(c), c,
           "no parameters: values are only re-arranged, x.flatten(2).transpose(1, 2); each "
           "token sees what its position saw, so the receptive field is kept")
    w.output = (n, c)
    keep_field(w)


@explains("classtoken")
def _class_token(w: Work) -> None:
    d = w.a.dim
    w.output = (1, d)
    w.step("output", "1 x dim: one token", f"1x{d}", [1, d],
           "it reads only the batch size of its input; `concat< classtoken c | … >` puts "
           "it first")
    w.params = w.step("parameters", "dim: the token's own values, learnt", str(d), d,
                      "torchvision's class_token, a 1 x 1 x dim tensor")
    keep_field(w)


@explains("posembed")
def _position_embedding(w: Work) -> None:
    n, c = w.x
    w.params = w.step("parameters", "N * C: one learnt C-vector per token position",
                      f"{n} * {c}", n * c, "torchvision's pos_embedding, 1 x N x C (N counts a "
                                           "class token put first)")
    _same(w, "x + the embedding: an element-wise addition, 0 MACs counted")
    keep_field(w)


@explains("token")
def _select_token(w: Work) -> None:
    n, c = w.x
    w.output = (c,)
    w.step("output", "C: token `index` of the N as a vector", str(c), c,
           f"token {w.a.index} of {n}" + (" (the class token, when `concat< classtoken c | … >` "
                                          "put it first)" if w.a.index == 0 else ""))
    w.step("parameters", "none: one token is picked", "0", 0)
    keep_field(w)


@explains("attention")
def _attention(w: Work) -> None:
    a, (n, c) = w.a, w.x
    w.step("head size", "C / heads (heads must divide C)", f"{c} / {a.heads}", c // a.heads,
           "the heads split the channels: the parameters do not depend on their number")
    _same(w, "softmax(Q K^T / sqrt(C / heads)) V per head, heads joined, then out_proj")
    parts = _linear_parts(w, "in_proj", c, c, a.bias, times=3,
                          note="q, k and v stacked: nn.MultiheadAttention's in_proj_weight "
                               "(3C x C)")
    parts += _linear_parts(w, "out_proj", c, c, a.bias)
    w.params = w.step("parameters", "4 * C * C" + (" + 4 * C" if a.bias else " (nobias)"),
                      f"4 * {c} * {c}" + (f" + 4 * {c}" if a.bias else ""), sum(parts),
                      "in_proj + out_proj: " + " + ".join(map(str, parts)))
    proj = w.step("projection MACs", "4 * N * C * C (q, k, v and the output, per token)",
                  f"4 * {n} * {c} * {c}", 4 * n * c * c)
    products = w.step("attention MACs", "2 * N * N * C (Q K^T, then the weights times V)",
                      f"2 * {n} * {n} * {c}", 2 * n * n * c,
                      "each of a head's N * N scores is a dot product of C / heads values: "
                      "N * N * C over all heads; A V the same")
    w.macs = w.step("MACs", "projections + products", f"{proj} + {products}", proj + products,
                    "as torchvision's published GFLOPS (fvcore) count them; softmax, scaling "
                    "and biases are not counted")
    whole = tuple(w.graph.input_shape[1:]) if len(w.graph.input_shape or ()) == 3 else None
    if whole is None or w.rf_in is None:
        keep_field(w)
        return
    w.per_axis("receptive field", lambda i: (
        "r = the input's size (every token attends to every token)", str(whole[i]), whole[i],
        "each output token mixes all N input tokens, so it sees the whole input image; "
        "the jump is kept"))
    w.rf = (whole, w.rf_in[1])
    keep_field(w)


# ----------------------------------------------------------------------------- windows (Swin)


def _windows(w: Work, window: tuple) -> tuple:
    """The map padded up to whole windows (torchvision pads before partitioning)."""
    return w.per_axis("padded to whole windows", lambda i: (
        "ceil(I / window) * window", f"ceil({w.x[1 + i]} / {window[i]}) * {window[i]}",
        -(-w.x[1 + i] // window[i]) * window[i], "the padding is cropped again after"))


@explains("windowattention")
def _window_attention(w: Work) -> None:
    from .layers.windows import CPB_HIDDEN

    a, c, (wh, ww) = w.a, w.x[0], w.a.window
    _same(w, (f"attention inside {wh} x {ww} windows" + (f", the map first rolled by "
              f"{fmt_shape(a.shift)} (shifted windows, with their mask)" if any(a.shift) else "")
              + ("; cosine attention with a learnt logit scale (Swin v2)" if a.cosine else "")))
    parts = _linear_parts(w, "qkv", c, c, a.bias, "q, k and v stacked", times=3)
    parts += _linear_parts(w, "proj", c, c, a.bias)
    if a.cosine:
        parts.append(w.step("logit scale", "heads", str(a.heads), a.heads))
        parts.append(w.step("position bias MLP", "(2 * 512 + 512) + 512 * heads",
                        f"(2 * {CPB_HIDDEN} + {CPB_HIDDEN}) + {CPB_HIDDEN} * {a.heads}",
                        3 * CPB_HIDDEN + CPB_HIDDEN * a.heads,
                        "cpb_mlp: Linear(2, 512) with bias, ReLU, Linear(512, heads) without"))
    else:
        parts.append(w.step("position bias table", "(2 * wh - 1) * (2 * ww - 1) * heads",
                        f"(2 * {wh} - 1) * (2 * {ww} - 1) * {a.heads}",
                        (2 * wh - 1) * (2 * ww - 1) * a.heads,
                        "one learnt bias per head for each relative offset inside a window"))
    if a.postnorm:
        parts.append(w.step("postnorm", "2 * C (gamma and beta)", f"2 * {c}", 2 * c,
                            "a layer norm after the attention, registered before it (Swin v2)"))
    w.params = _total(w, parts)
    index = (wh * ww) ** 2
    table = (2 * wh - 1) * (2 * ww - 1) * 2 if a.cosine else 0
    w.buffers = w.step("buffers", "(wh * ww)^2 relative_position_index"
                       + (" + (2 * wh - 1) * (2 * ww - 1) * 2 relative_coords_table"
                          if a.cosine else ""),
                       f"({wh} * {ww}) ** 2" + (f" + (2 * {wh} - 1) * (2 * {ww} - 1) * 2"
                                                if a.cosine else ""), index + table)
    ph, pw = _windows(w, (wh, ww))
    macs = ph * pw * (4 * c * c + 2 * wh * ww * c)
    formula = f"{ph} * {pw} * (4 * {c} * {c} + 2 * {wh} * {ww} * {c})"
    if a.cosine:  # the bias MLP over every relative offset
        macs += (2 * wh - 1) * (2 * ww - 1) * (2 * CPB_HIDDEN + CPB_HIDDEN * a.heads)
        formula += (f" + (2 * {wh} - 1) * (2 * {ww} - 1) * (2 * {CPB_HIDDEN} + {CPB_HIDDEN} * "
                    f"{a.heads})")
    w.macs = w.step("MACs", "H_pad * W_pad * (4 * C * C + 2 * wh * ww * C)" + (
        " + (2 * wh - 1) * (2 * ww - 1) * (2 * 512 + 512 * heads)" if a.cosine else ""),
        formula, macs, "per position the qkv and output projections, and inside each window "
                       "of wh * ww tokens the two products Q K^T and A V"
                       + ("; v2's bias MLP once per relative offset" if a.cosine else ""))
    kernel, stride = w.node.kind.receptive(a, w.x)
    field_steps(w, kernel, stride, f"a position sees its {kernel[0]} x {kernel[1]} window "
                                   "(the window, or the whole map when it is smaller)")


@explains("patchmerging")
def _patch_merging(w: Work) -> None:
    a, c = w.a, w.x[0]
    out = w.per_axis("output size", lambda i: (
        "O = ceil(I / 2)", f"ceil({w.x[1 + i]} / 2)", -(-w.x[1 + i] // 2),
        "an odd side is padded by one" if w.x[1 + i] % 2 else "each 2 x 2 patch becomes one"))
    w.step("channels", "2 * C (4 * C concatenated, then Linear(4C, 2C))", f"2 * {c}", 2 * c)
    w.output = (2 * c, *out)
    weight = w.step("reduction weight", "4 * C * 2 * C (no bias)", f"4 * {c} * 2 * {c}",
                    8 * c * c)
    norm = 2 * c if a.postnorm else 4 * c
    norm = w.step("norm", "2 * (2 * C): after the reduction (v2)" if a.postnorm else
                  "2 * (4 * C): before the reduction", f"2 * {norm}", 2 * norm,
                  "the layer norm's gamma and beta")
    w.params = w.step("parameters", "reduction + norm", f"{weight} + {norm}", weight + norm)
    w.macs = w.step("MACs", "H_out * W_out * 4 * C * 2 * C", f"{out[0]} * {out[1]} * 4 * {c} "
                    f"* 2 * {c}", out[0] * out[1] * 8 * c * c,
                    "the reduction, Linear(4C, 2C), at each output position")
    field_steps(w, (2, 2), (2, 2), "each output reads a 2 x 2 patch")


@explains("mlp")
def _mlp(w: Work) -> None:
    a, (c, h, wd) = w.a, w.x
    _same(w, "Linear(C, hidden), GELU, Linear(hidden, C) at each position")
    parts = _linear_parts(w, "fc1", c, a.hidden, True)
    parts += _linear_parts(w, "fc2", a.hidden, c, True)
    if a.postnorm:
        parts.append(w.step("postnorm", "2 * C (gamma and beta)", f"2 * {c}", 2 * c))
    w.params = _total(w, parts)
    w.macs = w.step("MACs", "H * W * 2 * C * hidden (two Linears per position)",
                    f"{h} * {wd} * 2 * {c} * {a.hidden}", h * wd * 2 * c * a.hidden)
    keep_field(w)


@explains("partitionattention")
def _partition_attention(w: Work) -> None:
    a, (c, h, wd), p = w.a, w.x, w.a.size
    heads = w.step("heads", "C / head_dim", f"{c} / {a.head_dim}", c // a.head_dim)
    _same(w, f"attention among {p} x {p} positions: " + (
        f"a grid spread over the map, {h // p} apart" if a.partition == "grid" else
        "neighbouring blocks") + " (MaxViT)")
    parts = _linear_parts(w, "to_qkv", c, c, True, "q, k and v stacked", times=3)
    parts += _linear_parts(w, "merge", c, c, True)
    parts.append(w.step("position bias table", "(2 * size - 1)^2 * heads",
                        f"(2 * {p} - 1) ** 2 * {heads}", (2 * p - 1) ** 2 * heads))
    w.params = _total(w, parts)
    w.buffers = w.step("buffers", "size^4 (relative_position_index, size^2 x size^2)",
                       f"{p} ** 4", p ** 4)
    w.macs = w.step("MACs", "H * W * (4 * C * C + 2 * size * size * C)",
                    f"{h} * {wd} * (4 * {c} * {c} + 2 * {p} * {p} * {c})",
                    h * wd * (4 * c * c + 2 * p * p * c))
    if a.partition == "grid":
        kernel = w.per_axis("kernel reach", lambda i: (
            "K_eff = (size - 1) * (I / size) + 1", f"({p} - 1) * ({w.x[1 + i]} // {p}) + 1",
            (p - 1) * (w.x[1 + i] // p) + 1, "the grid's positions are I / size apart, as a "
                                             "dilated kernel's taps"))
    else:
        kernel = (p, p)
    field_steps(w, kernel, (1, 1))
