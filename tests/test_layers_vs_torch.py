"""Property-based: archdsl's static checker agrees with PyTorch itself, layer kind by layer kind.

Every kind in archdsl's registry (`archdsl.layers.REGISTRY`) must have a torch twin here
(TWINS): a registered kind without one fails test_every_registered_kind_has_a_torch_twin and
its own case of test_each_registered_kind_agrees_with_torch, both naming it. The merges
(add, mul, concat) are reached through the language's combinators: `add< a | b >`,
`mul< … >`, `concat< … >` and `residual< … >`.

Hypothesis draws single layers of every registered kind, and short stacks, with random
arguments (written in every form the language allows: flags, keywords, bare words, positional
values) and random small input sizes, including sizes and arguments where the layer must fail.
Each case is spec TEXT for `archdsl.loads`, and, independently, a mapping written here onto
torch.nn (archdsl's own `build` methods are not used) that is built and run forward on a batch
of 2 in eval mode. Then:

* output shapes (without the batch dimension), parameters, buffers and MACs are equal; MACs are
  counted on the torch side by forward hooks (Conv2d: out.numel()/N · in/groups · kh · kw;
  Linear: in · out; everything else 0);
* archdsl reports an error exactly when torch raises, at construction or in forward, and the
  first error is on the line of the layer where torch raised.

Where archdsl is deliberately stricter than torch (torch would run, but on the wrong axis or with
a broadcast no one meant), the torch mapping raises `Stricter` instead of running: archdsl must
then refuse with the expected code. Those cases are also pinned down as explicit examples below.
"""

from __future__ import annotations

import operator
import warnings
from dataclasses import dataclass
from typing import Callable

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch import nn

import archdsl
from archdsl import SpecError
from archdsl.layers import REGISTRY
from helpers import reference_macs
from test_transformers import TWINNED_HERE as SEQUENCE_TWINS  # sequences: test_transformers.py
from test_windows import TWINNED_HERE as WINDOW_TWINS  # Swin, MaxViT: test_windows.py
from test_arith import TWINNED_HERE as ARITH_TWINS  # arithmetic: test_arith.py
from test_geometry import TWINNED_HERE as GEOMETRY_TWINS  # upsampling, pad, crop: test_geometry.py
from test_reshapes import TWINNED_HERE as RESHAPE_TWINS  # reshapes, slices: test_reshapes.py
from test_conv_variants import TWINNED_HERE as CONV_TWINS  # wsconv, softmax: test_conv_variants.py
from test_conv_variants import tf_same_conv  # the twin of a strided `same` conv (timm's rule)

TWINNED_HERE = (SEQUENCE_TWINS + WINDOW_TWINS + ARITH_TWINS + RESHAPE_TWINS
                + GEOMETRY_TWINS + CONV_TWINS)  # kinds whose torch twins live in those files


pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.usefixtures("one_thread")]  # conftest.py: tiny tensors, one thread

# what torch raises for a bad layer; GroupNorm(0, C) fails on `C % 0` at construction
TORCH_ERRORS = (RuntimeError, ValueError, IndexError, ZeroDivisionError)
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                       HealthCheck.data_too_large])


class Stricter(Exception):
    """Torch would accept this, archdsl refuses it on purpose: it must report `code`."""

    def __init__(self, code: str, hint: str | None = None):
        super().__init__(code)
        self.code, self.hint = code, hint


@dataclass
class Case:
    text: str  # one line of spec text
    build: Callable[[tuple], nn.Module]  # unbatched input shape -> torch module (may raise)
    kinds: frozenset  # registered layer kinds this case exercises
    rank: int | None = None  # rank of the output, if known when drawing (1 or 3)
    channels: int | None = None  # channels of the output, if known when drawing


# ----------------------------------------------------------------------------- the torch side


def probe(module: nn.Module, shape: tuple) -> tuple:
    """Run `module` on a batch of 2 and return its output shape without the batch dimension."""
    with torch.no_grad():
        return tuple(module.eval()(torch.randn(2, *shape)).shape[1:])


def build_seq(cases: list[Case], shape: tuple) -> tuple[nn.Module, tuple]:
    """Build a branch layer by layer (each layer needs its input's shape)."""
    modules = []
    for case in cases:
        module = case.build(shape)
        shape = probe(module, shape)
        modules.append(module)
    return nn.Sequential(*modules), shape


MERGE_OPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul,
             "div": operator.truediv}


class PlusOne(nn.Module):
    """`+ 1`: keeps a divisor (after a sigmoid) within [1, 2]."""

    def forward(self, x):
        return x + 1


class Merge(nn.Module):
    """add< … >, sub< … >, mul< … >, div< … >, concat< … >: branches that read the same
    input."""

    def __init__(self, how: str, branches: list[nn.Module]):
        super().__init__()
        self.how, self.branches = how, nn.ModuleList(branches)

    def forward(self, x):
        ys = [b(x) for b in self.branches]
        if self.how == "concat":
            return torch.cat(ys, dim=1)
        out = ys[0]
        for y in ys[1:]:
            out = MERGE_OPS[self.how](out, y)
        if len({y.dim() for y in ys}) > 1:  # torch broadcast a vector against a feature map
            raise Stricter("E-SHAPE")
        return out


class Residual(nn.Module):
    def __init__(self, body: nn.Module, shortcut: nn.Module):
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x):
        a, b = self.body(x), self.shortcut(x)
        out = a + b  # raises where the shapes do not broadcast
        if a.shape != b.shape:  # torch broadcast; a residual sum must not
            raise Stricter("E-SHAPE")
        return out


def projection(x: tuple, y: tuple) -> nn.Module:
    """The shortcut LANGUAGE.md promises when a residual body changes the shape: a 1x1 conv
    without bias at the body's stride, then batch norm (a bias-free linear for vectors)."""
    if x == y:
        return nn.Identity()
    if len(x) != len(y):
        raise Stricter("E-SHAPE")
    if len(y) == 1:
        return nn.Sequential(nn.Linear(x[0], y[0], bias=False), nn.BatchNorm1d(y[0]))
    stride = []
    for size, target in zip(x[1:], y[1:]):
        fits = [s for s in range(1, size + 1) if -(-size // s) == target]
        if not fits:
            raise Stricter("E-SHAPE")  # no strided 1x1 conv gives the body's size
        stride.append(fits[0])
    return nn.Sequential(nn.Conv2d(x[0], y[0], 1, stride=tuple(stride), bias=False),
                         nn.BatchNorm2d(y[0]))


class MapOnly(nn.Module):
    """A layer archdsl only allows on CxHxW maps, applied to a vector: where torch raises the
    two agree; where torch runs anyway (dropout2d reads (2, F) as one unbatched map) archdsl
    is stricter."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x):
        y = self.module(x)
        raise Stricter("E-RANK")
        return y  # pragma: no cover


def on_maps(make: Callable[[tuple], nn.Module]) -> Callable[[tuple], nn.Module]:
    def build(shape):
        return make(shape) if len(shape) == 3 else MapOnly(make(shape))

    return build


@dataclass
class Outcome:
    result: tuple | None = None  # (output shape, params, buffers, macs)
    line: int | None = None  # spec line of the layer where torch raised
    error: Exception | None = None


def run_torch(cases: list[Case], shape: tuple) -> Outcome:
    """Build and run the torch twin layer by layer, as archdsl checks it line by line."""
    x = torch.randn(2, *shape)
    params = buffers = macs = 0
    for i, case in enumerate(cases):
        try:
            module = case.build(tuple(x.shape[1:])).eval()
            x, m = reference_macs(module, x)
        except (Stricter, *TORCH_ERRORS) as exc:
            return Outcome(line=i + 2, error=exc)
        params += sum(p.numel() for p in module.parameters())
        buffers += sum(b.numel() for b in module.buffers())
        macs += m
    return Outcome(result=(tuple(x.shape[1:]), params, buffers, macs))


def spec_text(shape: tuple, cases: list[Case]) -> str:
    return "input " + "x".join(map(str, shape)) + "\n" + "\n".join(c.text for c in cases) + "\n"


def assert_agree(shape: tuple, cases: list[Case]) -> None:
    text = spec_text(shape, cases)
    torch_side = run_torch(cases, shape)
    try:
        net = archdsl.loads(text)
        ours, errors = (net.output_shape, net.params, net.buffers, net.macs), []
    except SpecError as exc:
        ours, errors = None, [d for d in exc.diagnostics if d.is_error]
        assert errors and all(d.code != "E-INTERNAL" for d in errors), f"{text}\n{exc}"
        assert all(d.span is not None and d.message and d.code.startswith("E-") for d in errors)
    if torch_side.result is not None:
        event("torch ran")
        assert ours is not None, f"archdsl refused what torch runs:\n{text}\n" + "\n".join(
            f"  line {d.span.line}: {d.code} {d.message}" for d in errors)
        assert ours == torch_side.result, (f"{text}\narchdsl (shape, params, buffers, macs) = "
                                           f"{ours}\ntorch                                = "
                                           f"{torch_side.result}")
        return
    exc = torch_side.error
    stricter = isinstance(exc, Stricter)
    event("archdsl is stricter" if stricter else "torch raised")
    assert ours is None, (f"torch {'is looser' if stricter else 'raised'} on line "
                          f"{torch_side.line} ({exc!r}) but archdsl accepted:\n{text}")
    first = min(d.span.line for d in errors)
    assert first == torch_side.line, (
        f"torch failed on line {torch_side.line} ({exc!r}), archdsl's first error is on line "
        f"{first}:\n{text}\n" + "\n".join(f"  line {d.span.line}: {d.code} {d.message}"
                                          for d in errors))
    if stricter:
        here = [d for d in errors if d.span.line == torch_side.line]
        assert any(d.code == exc.code for d in here), (text, exc.code, here)
        if exc.hint:
            assert any(d.hint and exc.hint in d.hint for d in here), (text, exc.hint, here)


# ----------------------------------------------------------------------------- spec-text helpers


def dims(pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


@st.composite
def pair_arg(draw, flag: str, name: str, pair, positional: bool = False) -> str:
    """One pair-valued argument in any of the forms the language accepts."""
    forms = ["flag", "short", "long"] + (["positional"] if positional else [])
    if min(pair) < 0:
        forms = ["short", "long"]  # `p-1` is no flag; negatives need a keyword
    form = draw(st.sampled_from(forms))
    value = dims(pair)
    if form == "flag":
        return f"{flag}{value}"
    if form == "short":
        return f"{flag}={value}"
    if form == "long":
        return f"{name}={value}"
    return value


@st.composite
def weighted(draw, *options):
    """One of several strategies, drawn with the given (weight, strategy) odds (st.one_of
    gives no control over how often each branch is taken)."""
    i = draw(st.integers(0, sum(w for w, _ in options) - 1))
    for w, strategy in options:
        if i < w:
            return draw(strategy)
        i -= w
    raise AssertionError


def pairs(lo: int, hi: int, bad: int | None = None):
    """(h, w) pairs, equal half of the time; rarely `bad` (an out-of-range value)."""
    one = st.integers(lo, hi)
    if bad is not None:
        one = weighted((19, one), (1, st.just(bad)))
    return weighted((1, one.map(lambda v: (v, v))), (1, st.tuples(one, one)))


def boolean_arg(draw, name: str, word: str | None, value: bool, default: bool) -> str | None:
    """A boolean argument: omitted (when default), a bare word, or `name=true/false`."""
    forms = ["keyword"]
    if value == default:
        forms.append("omit")
    if word is not None and value != default:
        forms.append("word")
    form = draw(st.sampled_from(forms))
    if form == "omit":
        return None
    if form == "word":
        return word
    return f"{name}={'true' if value else 'false'}"


def number(v: float) -> str:
    return f"{v:g}"


def line(draw, words: list[str | None]) -> str:
    head, rest = words[0], [w for w in words[1:] if w is not None]
    return " ".join([head] + draw(st.permutations(rest)))


# ----------------------------------------------------------------------------- layer strategies
# Each strategy draws one family of kinds, or the one kind it is given; TWINS (below) says
# which strategy is the torch twin of which registered kind.

WINDOW_POOLS = ["maxpool", "avgpool"]
ADAPTIVE_POOLS = ["adaptiveavgpool", "adaptivemaxpool"]
NORMS = ["bn", "groupnorm", "layernorm", "lrn"]
PASSTHROUGH = ["dropout", "dropout2d", "identity", "flatten"]
COMBINATORS = {"add": ["add", "residual", "residual_auto"], "sub": ["sub"], "mul": ["mul"],
               "div": ["div"], "concat": ["concat"], "resize": ["resize"], "cropto": ["cropto"]}
COMBINATOR_FORMS = ["add", "sub", "mul", "div", "concat", "residual", "residual_auto"]


@st.composite
def conv(draw, channels: int | None = None, kind: str = "conv") -> Case:
    rare = draw(st.integers(0, 40)) == 0  # now and then an out-of-range value
    groups = 0 if rare and draw(st.booleans()) else draw(
        st.sampled_from([1, 1, 1, 2, 3, 4] + ([channels] if channels else [])))
    out = 0 if rare and groups else draw(
        weighted((1, st.integers(1, 16)), (1, st.integers(1, 4).map(lambda m: max(groups, 1) * m))))
    kernel = draw(pairs(1, 5, bad=0))
    stride = draw(weighted((1, st.none()), (2, pairs(1, 3, bad=0))))
    padding = draw(weighted((2, st.none()), (4, pairs(0, 3)), (2, st.just("same")),
                            (1, st.just("valid")), (1, st.just((-1, -1)) if rare else st.none())))
    dilation = draw(weighted((1, st.none()), (1, pairs(1, 3, bad=0))))
    bias = draw(st.booleans())
    mode = draw(st.sampled_from([None, "zeros", "reflect", "replicate", "circular"]))

    words: list[str | None] = [f"conv {out}", draw(pair_arg("k", "kernel", kernel))]
    if stride is not None:
        words.append(draw(pair_arg("s", "stride", stride)))
    if isinstance(padding, str):
        words.append(draw(st.sampled_from([padding, f"p={padding}", f"padding={padding}"])))
    elif padding is not None:
        words.append(draw(pair_arg("p", "padding", padding)))
    if dilation is not None:
        words.append(draw(pair_arg("d", "dilation", dilation)))
    if groups != 1 or draw(st.booleans()):
        words.append(draw(st.sampled_from([f"g{groups}", f"g={groups}", f"groups={groups}"])))
    words.append(boolean_arg(draw, "bias", "nobias", bias, True))
    if mode is not None:
        words.append(draw(st.sampled_from([mode, f"padding_mode={mode}"])))

    def build(shape):
        if len(shape) != 3:
            # torch reads (2, F) as one unbatched 2xF map, with F as channels... and raises
            return MapOnly(nn.Conv2d(shape[0], max(out, 1), kernel))
        if padding == "same" and stride not in (None, (1, 1)):  # TensorFlow's rule, as timm's
            return tf_same_conv(shape[0], out, kernel, stride, dilation or 1, groups, bias,
                                mode or "zeros")
        return nn.Conv2d(shape[0], out, kernel, stride=stride or 1,
                         padding=0 if padding is None else padding, dilation=dilation or 1,
                         groups=groups, bias=bias, padding_mode=mode or "zeros")

    return Case(line(draw, words), build, frozenset({"conv"}), 3, out)


@st.composite
def window_pool(draw, channels: int | None = None, kind: str | None = None) -> Case:
    kind = kind or draw(st.sampled_from(WINDOW_POOLS))
    kernel = draw(pairs(1, 5, bad=0))
    stride = draw(weighted((1, st.none()), (1, pairs(1, 3, bad=0))))
    padding = draw(weighted((1, st.none()), (3, pairs(0, 3)),
                            (1, st.just((-1, -1)) if draw(st.integers(0, 30)) == 0 else st.none())))
    ceil = draw(st.booleans())
    kernel_word = draw(pair_arg("k", "kernel", kernel, positional=True))
    positional = kernel_word[0].isdigit()  # `maxpool 3` must come right after the name
    words: list[str | None] = [f"{kind} {kernel_word}" if positional else kind,
                               None if positional else kernel_word]
    if stride is not None:
        words.append(draw(pair_arg("s", "stride", stride)))
    if padding is not None:
        words.append(draw(pair_arg("p", "padding", padding)))
    words.append(boolean_arg(draw, "ceil", "ceil", ceil, False))
    pad = padding or 0
    if kind == "maxpool":
        dilation = draw(weighted((1, st.none()), (1, pairs(1, 3, bad=0))))
        if dilation is not None:
            words.append(draw(pair_arg("d", "dilation", dilation)))

        def make(shape):
            return nn.MaxPool2d(kernel, stride=stride, padding=pad, dilation=dilation or 1,
                                ceil_mode=ceil)
    else:
        include = draw(st.booleans())
        words.append(boolean_arg(draw, "count_include_pad", "exclude_pad", include, True))

        def make(shape):
            return nn.AvgPool2d(kernel, stride=stride, padding=pad, ceil_mode=ceil,
                                count_include_pad=include)

    return Case(line(draw, words), on_maps(make), frozenset({kind}), 3, channels)


@st.composite
def adaptive(draw, channels: int | None = None, kind: str | None = None) -> Case:
    kind = kind or draw(st.sampled_from(ADAPTIVE_POOLS))
    size = draw(pairs(1, 8))
    text = f"{kind} " + draw(st.sampled_from([dims(size), f"size={dims(size)}"]))
    cls = nn.AdaptiveAvgPool2d if kind == "adaptiveavgpool" else nn.AdaptiveMaxPool2d
    return Case(text, on_maps(lambda shape: cls(size)), frozenset({kind}), 3, channels)


@st.composite
def resize(draw, channels: int | None = None, kind: str | None = None) -> Case:
    """`upsample` by a scale, in each mode, `align_corners` drawn too (with `nearest`, torch
    refuses it in forward, archdsl at the argument)."""
    scale = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(["nearest", "bilinear", "bicubic", None]))
    corners = draw(st.sampled_from([None, True, False]))
    words = ["upsample", draw(st.sampled_from([str(scale), f"scale={scale}"])),
             None if mode is None else f"mode={mode}",
             None if corners is None else f"align_corners={str(corners).lower()}"]
    mode = mode or "nearest"
    if mode == "nearest" and corners is False:
        corners = None  # archdsl's default, written out: torch wants it left out

    def make(shape):
        return nn.Upsample(scale_factor=float(scale), mode=mode, align_corners=corners)

    return Case(line(draw, words), on_maps(make), frozenset({"upsample"}), 3, channels)


@st.composite
def norm(draw, channels: int | None = None, kind: str | None = None) -> Case:
    kind = kind or draw(st.sampled_from(NORMS))
    affine = draw(st.booleans())
    eps = draw(st.sampled_from([None, 1e-5, 1e-3, 0.1]))
    affine_word = boolean_arg(draw, "affine", "noaffine", affine, True)
    eps_word = None if eps is None else f"eps={number(eps)}"
    eps = 1e-5 if eps is None else eps
    if kind == "bn":
        momentum = draw(st.sampled_from([None, 0.1, 0.01, 0.5, 1]))
        words = ["bn", affine_word, eps_word,
                 None if momentum is None else f"momentum={number(momentum)}"]

        def build(shape):
            cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
            return cls(shape[0], eps=eps, momentum=0.1 if momentum is None else momentum,
                       affine=affine)
    elif kind == "groupnorm":
        groups = draw(weighted((20, st.integers(1, 8)), (10, st.just(channels or 1)),
                               (1, st.just(0))))
        words = [f"groupnorm {groups}", affine_word, eps_word]

        def build(shape):
            return nn.GroupNorm(groups, shape[0], eps=eps, affine=affine)
    elif kind == "layernorm":
        words = ["layernorm", affine_word, eps_word]

        def build(shape):
            return nn.LayerNorm(list(shape), eps=eps, elementwise_affine=affine)
    else:
        size = draw(weighted((30, st.integers(1, 6)), (1, st.just(0))))
        alpha, beta, k = (draw(st.sampled_from([None, v])) for v in (1e-3, 0.5, 2.0))
        words = [f"lrn {size}"] + [None if v is None else f"{n}={number(v)}"
                                   for n, v in (("alpha", alpha), ("beta", beta), ("k", k))]

        def make(shape):
            return nn.LocalResponseNorm(size, alpha=alpha or 1e-4, beta=beta or 0.75, k=k or 1.0)

        build = on_maps(make)
    return Case(line(draw, words), build, frozenset({kind}), None, channels)


SIMPLE_ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "silu": nn.SiLU,
                      "hardswish": nn.Hardswish, "hardsigmoid": nn.Hardsigmoid,
                      "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
                      "softmax": lambda: nn.Softmax(dim=1),
                      "logsoftmax": lambda: nn.LogSoftmax(dim=1)}
ACTIVATIONS = sorted(SIMPLE_ACTIVATIONS) + ["leakyrelu", "prelu", "elu", "gelu"]


@st.composite
def activation(draw, channels: int | None = None, kind: str | None = None) -> Case:
    kind = kind or draw(st.sampled_from(ACTIVATIONS))
    if kind in SIMPLE_ACTIVATIONS:
        text, build = kind, (lambda shape: SIMPLE_ACTIVATIONS[kind]())
    elif kind == "leakyrelu":
        slope = draw(st.sampled_from([None, 0.2, 0.01, -0.5]))
        text = "leakyrelu" if slope is None else draw(st.sampled_from(
            [f"leakyrelu {number(slope)}" if slope >= 0 else "leakyrelu slope=-0.5",
             f"leakyrelu slope={number(slope)}"]))
        build = (lambda shape: nn.LeakyReLU(0.01 if slope is None else slope))
    elif kind == "elu":
        alpha = draw(st.sampled_from([None, 0.5, 2.0]))
        text = "elu" if alpha is None else draw(st.sampled_from(
            [f"elu {number(alpha)}", f"elu alpha={number(alpha)}"]))
        build = (lambda shape: nn.ELU(1.0 if alpha is None else alpha))
    elif kind == "gelu":
        approximate = draw(st.sampled_from(["none", "tanh"]))
        text = draw(st.sampled_from(["gelu", "gelu approximate=none"] if approximate == "none"
                                    else ["gelu tanh", "gelu approximate=tanh"]))
        build = (lambda shape: nn.GELU(approximate=approximate))
    else:
        per_channel = draw(st.booleans())
        init = draw(st.sampled_from([None, 0.1]))
        text = line(draw, ["prelu", boolean_arg(draw, "per_channel", "perchannel", per_channel,
                                                False),
                           None if init is None else f"init={number(init)}"])
        build = (lambda shape: nn.PReLU(shape[0] if per_channel else 1,
                                        init=0.25 if init is None else init))
    return Case(text, build, frozenset({kind}), None, channels)


@st.composite
def passthrough(draw, channels: int | None = None, kind: str | None = None) -> Case:
    kind = kind or draw(st.sampled_from(PASSTHROUGH))
    if kind == "identity":
        return Case("identity", lambda shape: nn.Identity(), frozenset({kind}), None, channels)
    if kind == "flatten":
        return Case("flatten", lambda shape: nn.Flatten(1), frozenset({kind}), 1, None)
    p = draw(weighted((2, st.none()), (4, st.sampled_from([0.0, 0.1, 0.5, 1.0, 0.25])),
                      (1, st.sampled_from([1.5, -0.25]))))
    text = kind if p is None else draw(st.sampled_from(
        ([f"{kind} {number(p)}"] if p >= 0 else []) + [f"{kind} p={number(p)}"]))
    p = 0.5 if p is None else p
    if kind == "dropout":
        return Case(text, lambda shape: nn.Dropout(p), frozenset({kind}), None, channels)
    return Case(text, on_maps(lambda shape: nn.Dropout2d(p)), frozenset({kind}), 3, channels)


@st.composite
def linear(draw, channels: int | None = None, kind: str = "linear") -> Case:
    out = draw(st.integers(1, 16))
    bias = draw(st.booleans())
    text = line(draw, [f"linear {out}", boolean_arg(draw, "bias", "nobias", bias, True)])

    def build(shape):
        if len(shape) != 1:  # torch would apply it along W
            raise Stricter("E-RANK", hint="flatten")
        return nn.Linear(shape[0], out, bias=bias)

    return Case(text, build, frozenset({"linear"}), 1, out)


class Chunk(nn.Module):
    def __init__(self, chunks: int, index: int):
        super().__init__()
        self.chunks, self.index = chunks, index

    def forward(self, x):
        return x.chunk(self.chunks, dim=1)[self.index]  # IndexError past the last chunk


class Scale(nn.Module):
    """ConvNeXt's layer scale as its CNBlock applies it (C×1×1 on a map); on a vector, one
    scale per feature (timm's LayerScale, x * gamma)."""

    def __init__(self, shape: tuple, init: float):
        super().__init__()
        size = (shape[0], 1, 1) if len(shape) == 3 else (shape[-1],)
        self.layer_scale = nn.Parameter(torch.ones(size) * init)

    def forward(self, x):
        return self.layer_scale * x


CHANNEL_KINDS = ["split", "shuffle", "layernorm2d", "pointwise", "layerscale",
                 "stochasticdepth"]


@st.composite
def channelwise(draw, channels: int | None = None, kind: str | None = None) -> Case:
    """The channel-wise kinds of ShuffleNetV2 and ConvNeXt, each against torch's or
    torchvision's own code."""
    from torchvision.models.convnext import LayerNorm2d
    from torchvision.ops import StochasticDepth
    from torchvision.ops.misc import Permute

    kind = kind or draw(st.sampled_from(CHANNEL_KINDS))
    if kind == "split":
        chunks = draw(weighted((20, st.integers(1, 5)), (1, st.just(0))))
        index = draw(st.integers(0, max(chunks - 1, 0)))
        text = draw(st.sampled_from([f"split {index} {chunks}", f"split {index} chunks={chunks}",
                                     f"split index={index} chunks={chunks}"]))
        return Case(text, lambda shape: Chunk(chunks, index), frozenset({kind}), None, None)
    if kind == "shuffle":
        groups = draw(weighted((20, st.integers(1, 4)), (5, st.just(channels or 1))))
        text = draw(st.sampled_from([f"shuffle {groups}", f"shuffle groups={groups}"]))
        return Case(text, on_maps(lambda shape: nn.ChannelShuffle(groups)), frozenset({kind}),
                    3, channels)
    if kind == "layernorm2d":
        affine = draw(st.booleans())
        eps = draw(st.sampled_from([None, 1e-6, 0.1]))
        text = line(draw, ["layernorm2d", boolean_arg(draw, "affine", "noaffine", affine, True),
                           None if eps is None else f"eps={number(eps)}"])
        return Case(text, on_maps(lambda shape: LayerNorm2d(
            shape[0], eps=1e-5 if eps is None else eps, elementwise_affine=affine)),
            frozenset({kind}), 3, channels)
    if kind == "pointwise":
        out = draw(st.integers(1, 16))
        bias = draw(st.booleans())
        text = line(draw, [f"pointwise {out}", boolean_arg(draw, "bias", "nobias", bias, True)])
        return Case(text, lambda shape: nn.Sequential(  # raises on a vector: no 4 dimensions
            Permute([0, 2, 3, 1]), nn.Linear(shape[0], out, bias=bias), Permute([0, 3, 1, 2])),
            frozenset({kind}), 3, out)
    if kind == "layerscale":
        init = draw(st.sampled_from([None, 0.5, 1e-6]))
        text = "layerscale" if init is None else draw(st.sampled_from(
            [f"layerscale {number(init)}", f"layerscale init={number(init)}"]))
        return Case(text, lambda shape: Scale(shape, 1e-6 if init is None else init),
                    frozenset({kind}), None, channels)
    p = draw(weighted((10, st.sampled_from([0.0, 0.1, 0.5, 1.0])), (1, st.just(1.5))))
    mode = draw(st.sampled_from([None, "row", "batch"]))
    text = line(draw, [f"stochasticdepth {number(p)}", None if mode is None else
                       draw(st.sampled_from([mode, f"mode={mode}"]))])
    return Case(text, lambda shape: StochasticDepth(p, mode or "row"), frozenset({kind}), None,
                channels)


BRANCH_LAYERS = [conv, window_pool, adaptive, norm, activation, passthrough, channelwise]


@st.composite
def branch(draw, channels: int | None, size: int = 2) -> list[Case]:
    n = draw(st.integers(1, size))
    cases = []
    for _ in range(n):
        case = draw(draw(st.sampled_from(BRANCH_LAYERS))(channels))
        channels = case.channels
        cases.append(case)
    return cases


@st.composite
def combinator(draw, channels: int | None = None, kind: str | None = None) -> Case:
    """A merge, written as its combinator: for `kind` add, one of add< a | b >, residual< a | b >
    and residual< a > (the shortcut inserted); for mul and concat, their own."""
    how = draw(st.sampled_from(COMBINATORS[kind] if kind else COMBINATOR_FORMS))
    if how == "mul" and draw(st.booleans()):  # squeeze-and-excite: a Cx1x1 gate
        c = channels or 4
        gate = [Case("adaptiveavgpool 1", on_maps(lambda s: nn.AdaptiveAvgPool2d(1)),
                      frozenset({"adaptiveavgpool"})),
                Case(f"conv {c} k1", lambda s: nn.Conv2d(s[0], c, 1), frozenset({"conv"})),
                Case("sigmoid", lambda s: nn.Sigmoid(), frozenset({"sigmoid"}))]
        branches = [[Case("identity", lambda s: nn.Identity(), frozenset({"identity"}))], gate]
    else:
        branches = [draw(branch(channels)) for _ in range(1 if how == "residual_auto" else 2)]
    if how == "div":  # a divisor within [1, 2]: the quotient stays finite and well-conditioned
        branches[1] = branches[1] + [
            Case("sigmoid", lambda s: nn.Sigmoid(), frozenset({"sigmoid"})),
            Case("+ 1", lambda s: PlusOne(), frozenset({"scalar"}))]
    bodies = [" ".join(("; ".join(c.text for c in b)).split()) for b in branches]
    kinds = frozenset().union(*(c.kinds for b in branches for c in b))
    merge = {"residual": "add", "residual_auto": "add"}.get(how, how)
    kinds |= {merge}
    ends = [b[-1].channels for b in branches]
    out = sum(ends) if how == "concat" and None not in ends else channels

    if how == "residual_auto":
        text = f"residual< {bodies[0]} >"

        def build(shape):
            body, y = build_seq(branches[0], shape)
            return Residual(body, projection(shape, y))
    else:
        word = "residual" if how == "residual" else how
        text = f"{word}< {bodies[0]} | {bodies[1]} >"

        def build(shape):
            modules = [build_seq(b, shape)[0] for b in branches]
            return Residual(*modules) if how == "residual" else Merge(how, modules)

    return Case(text, build, kinds, None, out)


# The torch twin of every layer kind: the strategy that draws it (called with kind=...).
TWINS = {kind: strategy for strategy, kinds in [
    (conv, ["conv"]), (window_pool, WINDOW_POOLS), (adaptive, ADAPTIVE_POOLS), (norm, NORMS),
    (resize, ["upsample"]),
    (activation, ACTIVATIONS), (passthrough, PASSTHROUGH), (linear, ["linear"]),
    (combinator, list(COMBINATORS)), (channelwise, CHANNEL_KINDS)] for kind in kinds}

# Single-layer examples per kind, 1,510 in all: the most arguments, the most examples.
EXAMPLES = {"conv": 300, "maxpool": 120, "avgpool": 120, "adaptiveavgpool": 40,
            "adaptivemaxpool": 40, "bn": 40, "groupnorm": 40, "layernorm": 40, "lrn": 40,
            "linear": 60, "add": 80, "mul": 40, "concat": 40}
OTHER_KIND_EXAMPLES = 30  # each activation, dropout, identity, flatten, and any new kind

side = weighted((1, st.integers(1, 6)), (1, st.integers(1, 24)))
maps = st.tuples(st.integers(1, 16), side, side)
vectors = st.tuples(st.integers(1, 64))
shapes = weighted((4, maps), (1, vectors))


# ----------------------------------------------------------------------------- properties


def test_every_registered_kind_has_a_torch_twin():
    """The strategies above cover the whole registry: a new layer kind needs a torch twin,
    and a merge is reached through its combinator."""
    missing = sorted(set(REGISTRY) - set(TWINS) - set(TWINNED_HERE))
    assert not missing, (f"registered layer kinds without a torch twin in this suite: "
                         f"{', '.join(missing)}; add a strategy for each to TWINS")
    stale = sorted(set(TWINS) - set(REGISTRY))
    assert not stale, f"torch twins of kinds that are not registered: {', '.join(stale)}"
    merges = sorted(name for name, kind in REGISTRY.items() if kind.family == "merge")
    assert merges == sorted(COMBINATORS), merges
    assert all(TWINS[name] is combinator for name in merges)


@pytest.mark.parametrize("kind", sorted(set(REGISTRY) - set(TWINNED_HERE)))
def test_each_registered_kind_agrees_with_torch(kind):
    """One layer of `kind` (a merge: its combinator) on a random input, with random
    arguments, agrees with its torch twin."""
    twin = TWINS.get(kind)
    if twin is None:
        pytest.fail(f"layer kind {kind!r} is registered in archdsl.layers.REGISTRY but has no "
                    f"torch twin in this suite: add a strategy for it to TWINS")

    def agrees(data):
        shape = data.draw(shapes, label="input")
        case = data.draw(twin(shape[0], kind=kind), label="layer")
        assert kind in case.kinds, (kind, case.text)
        event(f"{len(shape)}-d input")
        assert_agree(shape, [case])

    agrees.__name__ = agrees.__qualname__ = f"{kind}_agrees_with_torch"  # its own seed
    settings(max_examples=EXAMPLES.get(kind, OTHER_KIND_EXAMPLES), **SETTINGS)(
        given(data=st.data())(agrees))()


@st.composite
def stack(draw, shape: tuple) -> list[Case]:
    """2 to 6 layers that mostly fit the rank they meet, sometimes a two-branch merge."""
    rank, channels = len(shape), shape[0]
    cases = []
    for _ in range(draw(st.integers(2, 6))):
        if rank == 3:
            kind = draw(st.sampled_from([conv] * 6 + [window_pool] * 4 + [norm] * 2 +
                                        [activation] * 4 + [adaptive] * 2 + [combinator] * 3 +
                                        [passthrough] * 2 + [channelwise] * 2 + [linear]))
        else:
            kind = draw(st.sampled_from([linear] * 6 + [activation] * 3 + [norm] * 2 +
                                        [passthrough] * 2 + [combinator, conv, window_pool]))
        case = draw(kind(channels))
        cases.append(case)
        rank = case.rank or rank
        channels = case.channels if case.channels else channels
        if case.rank == 1 and case.channels is None:
            channels = None  # flatten: the feature count is unknown here
    return cases


@settings(max_examples=600, **SETTINGS)
@given(data=st.data())
def test_stack_agrees_with_torch(data):
    shape = data.draw(shapes, label="input")
    cases = data.draw(stack(shape), label="stack")
    event(f"{len(cases)} layers")
    assert_agree(shape, cases)


@st.composite
def padded_conv(draw) -> tuple[tuple, Case]:
    """Convolutions whose padding is about as large as a tiny input: the borders where reflect
    (padding < size) and circular (padding <= size) padding start to fail."""
    size = draw(st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 6)))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    kernel = draw(pairs(1, 7))
    padding = draw(weighted((2, pairs(0, 6)), (1, st.just("same")),
                            (2, st.integers(0, 6).map(lambda p: (p, p)))))
    dilation = draw(pairs(1, 2))
    out = draw(st.integers(1, 4))
    text = (f"conv {out} k{dims(kernel)} d{dims(dilation)} padding_mode={mode} " +
            (padding if isinstance(padding, str) else f"p{dims(padding)}"))
    case = Case(text, lambda shape: nn.Conv2d(shape[0], out, kernel, padding=padding,
                                              dilation=dilation, padding_mode=mode),
                frozenset({"conv"}))
    return size, case


@settings(max_examples=300, **SETTINGS)
@given(drawn=padded_conv())
def test_conv_padding_borders_agree_with_torch(drawn):
    shape, case = drawn
    assert_agree(shape, [case])


@settings(max_examples=300, **SETTINGS)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)), data=st.data())
def test_pool_windows_at_the_border_agree_with_torch(shape, data):
    """Pooling on tiny inputs: ceil mode's last window (dropped where it would start in the
    right padding), padding up to half the window, dilation, the default stride."""
    assert_agree(shape, [data.draw(window_pool(shape[0]), label="layer")])


# ----------------------------------------------------------------------------- explicit examples


def torch_runs(module: nn.Module, *shape) -> tuple:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return probe(module, shape)


def only_error(text: str):
    with pytest.raises(SpecError) as info:
        archdsl.loads(text)
    errors = [d for d in info.value.diagnostics if d.is_error]
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize("text,code,hint", [
    ("input 8x6x6\nlinear 10\n", "E-RANK", "flatten"),  # torch: Linear over the last axis (W)
    ("input 10\nconv 4 k1\n", "E-RANK", "flatten"),  # torch: a 2-D input read as unbatched CxL
    ("input 10\ndropout2d\n", "E-RANK", None),
    ("input 10\nlrn 3\n", "E-RANK", None),
    ("input 8x4x4\nresidual< adaptiveavgpool 1 | identity >\n", "E-SHAPE", None),  # broadcasts
])
def test_archdsl_is_stricter_than_torch_here(text, code, hint):
    with pytest.raises(SpecError) as info:
        archdsl.loads(text)
    (d,) = info.value.errors
    assert d.code == code
    if hint:
        assert hint in d.hint


def test_linear_on_a_feature_map_is_refused_with_a_flatten_hint():
    assert torch_runs(nn.Linear(6, 10), 8, 6, 6) == (8, 6, 10)  # torch: along W only
    d = only_error("input 8x6x6\nlinear 10\n")
    assert (d.code, d.span.line, d.span.column) == ("E-RANK", 2, 1)
    assert "flatten" in d.hint


def test_dropout2d_on_a_vector_is_refused():
    assert torch_runs(nn.Dropout2d(0.1), 10) == (10,)  # torch: warns and reads 2x10 as a map
    d = only_error("input 10\ndropout2d 0.1\n")
    assert (d.code, d.span.line) == ("E-RANK", 2)
    assert "flatten" in d.hint or "linear" in d.hint


@pytest.mark.parametrize("text", ["conv 4 k1", "maxpool 2", "avgpool 2", "adaptiveavgpool 1",
                                  "adaptivemaxpool 1", "lrn 3"])
def test_map_layers_on_a_vector_are_refused(text):
    d = only_error(f"input 10\n{text}\n")
    assert (d.code, d.span.line) == ("E-RANK", 2)
    assert d.hint


@pytest.mark.parametrize("text", [
    "residual< adaptiveavgpool 1 | identity >",  # torch: 8x1x1 + 8x4x4 broadcasts
    "residual< conv 1 k1 | identity >",  # torch: 1x4x4 + 8x4x4 broadcasts
])
def test_residual_needs_equal_shapes(text):
    a = nn.AdaptiveAvgPool2d(1)
    assert torch_runs(nn.Identity(), 8, 4, 4) == (8, 4, 4)
    with torch.no_grad():
        x = torch.randn(2, 8, 4, 4)
        assert (a(x) + x).shape == x.shape
    d = only_error(f"input 8x4x4\n{text}\n")
    assert (d.code, d.span.line) == ("E-SHAPE", 2)


def test_add_of_a_vector_and_a_map_is_refused():
    with torch.no_grad():  # torch lines (2, 4) up with (.., H=2, W=4) and broadcasts
        x = torch.randn(2, 3, 2, 4)
        assert (x + torch.randn(2, 4)).shape == x.shape
    d = only_error("input 3x2x4\nadd< identity | adaptiveavgpool 1; flatten; linear 4 >\n")
    assert (d.code, d.span.line) == ("E-SHAPE", 2)


def test_residual_projection_matches_torchvision():
    """The inserted shortcut is torchvision's: 1x1 conv without bias at the body's stride + bn."""
    net = archdsl.loads("input 8x9x9\nresidual< conv 16 k3 s2 p1; bn >\n")
    ref = Residual(nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.BatchNorm2d(16)),
                   nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16))).eval()
    y, macs = reference_macs(ref, torch.randn(2, 8, 9, 9))
    assert net.output_shape == tuple(y.shape[1:]) == (16, 5, 5)
    assert net.params == sum(p.numel() for p in ref.parameters())
    assert net.buffers == sum(b.numel() for b in ref.buffers())
    assert net.macs == macs


@pytest.mark.parametrize("text,shape,make", [
    # reflect padding must be smaller than the input
    ("conv 4 k3 p2 reflect", (3, 2, 2), lambda: nn.Conv2d(3, 4, 3, padding=2,
                                                          padding_mode="reflect")),
    # circular padding must not wrap around more than once
    ("conv 4 k3 p3 circular", (3, 2, 2), lambda: nn.Conv2d(3, 4, 3, padding=3,
                                                           padding_mode="circular")),
    # the dilated kernel (9) does not fit
    ("conv 4 k5 d2", (3, 8, 8), lambda: nn.Conv2d(3, 4, 5, dilation=2)),
    # groups must divide the output channels
    ("conv 6 k1 g4", (8, 4, 4), lambda: nn.Conv2d(8, 6, 1, groups=4)),
    # padding more than half the window
    ("maxpool 3 p2", (3, 8, 8), lambda: nn.MaxPool2d(3, padding=2)),
    # no window fits
    ("avgpool 5", (3, 4, 4), lambda: nn.AvgPool2d(5)),
    # groups must divide the channels
    ("groupnorm 3", (8, 4, 4), lambda: nn.GroupNorm(3, 8)),
    # p outside [0, 1]
    ("dropout 1.5", (3, 4, 4), lambda: nn.Dropout(1.5)),
])
def test_examples_where_torch_and_archdsl_both_refuse(text, shape, make):
    with pytest.raises(TORCH_ERRORS):
        torch_runs(make(), *shape)
    d = only_error(spec_text(shape, [Case(text, make, frozenset())]))
    assert d.span.line == 2 and d.code.startswith("E-") and d.message


def test_projection_stride_that_fits_is_found():
    # a 1x1 conv with stride 5 turns 9x9 into 2x2, as the body does
    assert torch_runs(nn.Conv2d(4, 4, 1, stride=5, bias=False), 4, 9, 9) == (4, 2, 2)
    net = archdsl.loads("input 4x9x9\nresidual< maxpool 4 s4 >\n")
    assert net.output_shape == (4, 2, 2)
