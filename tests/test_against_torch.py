"""Property-based: the static checker agrees with PyTorch itself.

Hypothesis draws layers and short stacks with random arguments and input sizes. Each case is
written as spec text for archdsl and, independently, built here with torch.nn (archdsl's own
builders are not used) and run forward. Then: shapes, parameter counts, buffers and MACs must
be equal, and archdsl must report an error exactly when torch raises.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch import nn

from archdsl import SpecError, loads
from torchref import one_thread, reference_macs  # noqa: F401 - one_thread: a fixture


@dataclass
class Case:
    text: str  # archdsl statement(s)
    build: object  # input shape -> torch module (may raise, as torch does)


# ----------------------------------------------------------------------------- the torch side


class Branches(nn.Module):
    def __init__(self, how: str, *branches: nn.Module):
        super().__init__()
        self.how, self.branches = how, nn.ModuleList(branches)

    def forward(self, x):
        ys = [b(x) for b in self.branches]
        if self.how == "concat":
            return torch.cat(ys, dim=1)
        out = ys[0]
        for y in ys[1:]:
            out = out + y if self.how == "add" else out * y
        return out


def run_torch(modules_for, shape):
    """Build and run the torch twin; return (output shape, params, buffers, macs) or None."""
    try:
        module = modules_for(shape).eval()
        x = torch.randn(2, *shape)
        y, macs = reference_macs(module, x)
    except (RuntimeError, ValueError, IndexError) as exc:
        return None, exc
    params = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for b in module.buffers())
    return (tuple(y.shape[1:]), params, buffers, macs), None


def run_archdsl(text):
    try:
        net = loads(text)
    except SpecError as exc:
        return None, exc
    return (net.output_shape, net.params, net.buffers, net.macs), None


def assert_agree(text: str, build, shape):
    ours, our_error = run_archdsl(text)
    theirs, their_error = run_torch(build, shape)
    event("torch raised" if theirs is None else "torch ran")
    if theirs is None:
        assert ours is None, f"torch raised {their_error!r} but archdsl accepted:\n{text}"
        assert all(d.code != "E-INTERNAL" for d in our_error.diagnostics)
    else:
        assert ours is not None, f"archdsl refused what torch runs:\n{text}\n{our_error}"
        assert ours == theirs, f"{text}\narchdsl {ours} != torch {theirs}"


# ----------------------------------------------------------------------------- strategies

small = st.integers(1, 4)
shape_map = st.tuples(st.integers(1, 8), st.integers(1, 14), st.integers(1, 14))


def pair_text(letter, pair):
    return f"{letter}{pair[0]}" if pair[0] == pair[1] else f"{letter}{pair[0]}x{pair[1]}"


@st.composite
def conv(draw, c_in):
    out = draw(st.integers(1, 8))
    kernel = draw(st.tuples(small, small))
    stride = draw(st.sampled_from([(1, 1), (2, 2), (1, 2), (3, 3)]))
    padding = draw(st.one_of(st.tuples(st.integers(0, 3), st.integers(0, 3)),
                             st.sampled_from(["same", "valid"])))
    dilation = draw(st.sampled_from([(1, 1), (2, 2), (1, 3)]))
    groups = draw(st.sampled_from([1, 1, 2, 3, 4]))
    bias = draw(st.booleans())
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    words = [f"conv {out}", pair_text("k", kernel), pair_text("s", stride), pair_text("d", dilation),
             f"g{groups}"]
    words.append(f"p={padding}" if isinstance(padding, str) else pair_text("p", padding))
    if not bias:
        words.append("nobias")
    words.append(f"padding_mode={mode}")
    torch_padding = padding if isinstance(padding, str) else padding

    def build(shape):
        return nn.Conv2d(shape[0], out, kernel, stride=stride, padding=torch_padding,
                         dilation=dilation, groups=groups, bias=bias, padding_mode=mode)

    return Case(" ".join(words), build)


@st.composite
def window_pool(draw, c_in):
    kind = draw(st.sampled_from(["maxpool", "avgpool"]))
    kernel = draw(st.tuples(small, small))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = draw(st.tuples(st.integers(0, 2), st.integers(0, 2)))
    ceil = draw(st.booleans())
    words = [kind, pair_text("k", kernel), pair_text("p", padding)]
    if stride is not None:
        words.append(pair_text("s", stride))
    if ceil:
        words.append("ceil")
    if kind == "maxpool":
        dilation = draw(st.sampled_from([(1, 1), (2, 2), (1, 2)]))
        words.append(pair_text("d", dilation))
        return Case(" ".join(words), lambda shape: nn.MaxPool2d(
            kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil))
    include = draw(st.booleans())
    if not include:
        words.append("exclude_pad")
    return Case(" ".join(words), lambda shape: nn.AvgPool2d(
        kernel, stride=stride, padding=padding, ceil_mode=ceil, count_include_pad=include))


@st.composite
def adaptive(draw, c_in):
    kind = draw(st.sampled_from(["adaptiveavgpool", "adaptivemaxpool"]))
    size = draw(st.tuples(st.integers(1, 6), st.integers(1, 6)))
    text = f"{kind} {size[0]}" if size[0] == size[1] else f"{kind} {size[0]}x{size[1]}"
    cls = nn.AdaptiveAvgPool2d if kind == "adaptiveavgpool" else nn.AdaptiveMaxPool2d
    return Case(text, lambda shape: cls(size))


@st.composite
def norm(draw, c_in):
    kind = draw(st.sampled_from(["bn", "groupnorm", "layernorm", "lrn"]))
    affine = draw(st.booleans())
    if kind == "bn":
        return Case("bn" + ("" if affine else " noaffine"),
                    lambda shape: nn.BatchNorm2d(shape[0], affine=affine))
    if kind == "groupnorm":
        groups = draw(st.integers(1, 4))
        return Case(f"groupnorm {groups}" + ("" if affine else " noaffine"),
                    lambda shape: nn.GroupNorm(groups, shape[0], affine=affine))
    if kind == "layernorm":
        return Case("layernorm" + ("" if affine else " noaffine"),
                    lambda shape: nn.LayerNorm(list(shape), elementwise_affine=affine))
    size = draw(st.integers(1, 5))
    return Case(f"lrn {size}", lambda shape: nn.LocalResponseNorm(size))


ACTIVATIONS = {
    "relu": nn.ReLU, "relu6": nn.ReLU6, "silu": nn.SiLU, "hardswish": nn.Hardswish,
    "hardsigmoid": nn.Hardsigmoid, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
    "leakyrelu 0.2": lambda: nn.LeakyReLU(0.2), "elu 0.5": lambda: nn.ELU(0.5),
    "gelu": nn.GELU, "gelu tanh": lambda: nn.GELU(approximate="tanh"), "prelu": nn.PReLU,
    "softmax": lambda: nn.Softmax(dim=1), "logsoftmax": lambda: nn.LogSoftmax(dim=1),
    "dropout 0.3": lambda: nn.Dropout(0.3), "dropout2d 0.1": lambda: nn.Dropout2d(0.1),
    "identity": nn.Identity,
}


@st.composite
def elementwise(draw, c_in):
    text = draw(st.sampled_from(sorted(ACTIVATIONS) + ["prelu perchannel"]))
    if text == "prelu perchannel":
        return Case(text, lambda shape: nn.PReLU(shape[0]))
    return Case(text, lambda shape: ACTIVATIONS[text]())


@st.composite
def head(draw, c_in):
    out = draw(st.integers(1, 10))
    bias = draw(st.booleans())
    return Case(f"flatten; linear {out}" + ("" if bias else " nobias"),
                lambda shape: nn.Sequential(nn.Flatten(), nn.Linear(
                    shape[0] * shape[1] * shape[2], out, bias=bias)))


LAYERS = [conv, window_pool, adaptive, norm, elementwise]


@st.composite
def any_layer(draw):
    return draw(draw(st.sampled_from(LAYERS + [head]))(0))


def output_of(case: Case, shape):
    """The torch twin's output shape, or None where torch raises."""
    result, _ = run_torch(case.build, shape)
    return result[0] if result else None


# ----------------------------------------------------------------------------- properties


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(shape=shape_map, case=any_layer())
def test_single_layers_agree_with_torch(shape, case):
    text = f"input {shape[0]}x{shape[1]}x{shape[2]}\n{case.text}\n"
    assert_agree(text, case.build, shape)


@st.composite
def stack(draw):
    """2 to 5 layers, sometimes a two-branch concat/add/mul, sometimes a classifier head."""
    cases = []
    for _ in range(draw(st.integers(2, 5))):
        if draw(st.integers(0, 5)) == 0:
            how = draw(st.sampled_from(["concat", "add", "mul"]))
            a = draw(draw(st.sampled_from([conv, window_pool, elementwise]))(0))
            b = draw(draw(st.sampled_from([conv, window_pool, elementwise]))(0))
            cases.append(Case(f"{how}< {a.text} | {b.text} >", ("branches", how, a, b)))
        else:
            cases.append(draw(draw(st.sampled_from(LAYERS))(0)))
    if draw(st.booleans()):
        cases.append(draw(head(0)))
    return cases


def build_stack(cases):
    def build(shape):
        modules, current = [], shape
        for case in cases:
            if isinstance(case.build, tuple):
                _, how, a, b = case.build
                module = Branches(how, a.build(current), b.build(current))
            else:
                module = case.build(current)
            modules.append(module)
            with torch.no_grad():
                current = tuple(module.eval()(torch.randn(2, *current)).shape[1:])
        return nn.Sequential(*modules)

    return build


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(shape=shape_map, cases=stack())
def test_stacks_agree_with_torch(shape, cases):
    text = f"input {shape[0]}x{shape[1]}x{shape[2]}\n" + "\n".join(c.text for c in cases) + "\n"
    assert_agree(text, build_stack(cases), shape)


# ----------------------------------------------------------------------------- where archdsl is stricter
# PyTorch accepts these, applying the layer to the wrong axis or to an unbatched tensor;
# archdsl treats them as the mistakes they almost always are.

@pytest.mark.parametrize("text,code,hint", [
    ("input 8x6x6\nlinear 10\n", "E-RANK", "flatten"),  # torch: Linear over the last axis (W)
    ("input 10\nconv 4 k1\n", "E-RANK", "flatten"),  # torch: a 2-D input read as unbatched CxL
    ("input 10\ndropout2d\n", "E-RANK", None),
    ("input 10\nlrn 3\n", "E-RANK", None),
    ("input 8x4x4\nresidual< adaptiveavgpool 1 | identity >\n", "E-SHAPE", None),  # torch adds by broadcasting
])
def test_archdsl_is_stricter_than_torch_here(text, code, hint):
    with pytest.raises(SpecError) as info:
        loads(text)
    (d,) = info.value.errors
    assert d.code == code
    if hint:
        assert hint in d.hint
