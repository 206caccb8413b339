"""Transformer constructs against torch: tokens, class token, position embedding,
self-attention and picking a token out.

Each case is spec text for `archdsl.loads` and, independently, a torch twin written here the
way torchvision's VisionTransformer computes it (reshape and permute, torch.cat with an
expanded class token, nn.MultiheadAttention, x[:, 0]); archdsl's own modules are not used on
the twin's side. Shapes, parameters, buffers and outputs (after `transfer_weights`) agree, and
MACs equal the multiply-adds torch's FlopCounterMode counts on a twin that spells attention out
as matrix products (the CPU's fused kernel is not counted by it).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archdsl
from archdsl import SpecError
from helpers import assert_located_error
from archdsl.codegen import to_python
from archdsl.draw import to_dot

# The kinds whose torch twins are here rather than in tests/test_layers_vs_torch.py (their
# inputs and outputs are sequences, which that suite's shapes and MAC hooks do not cover).
TWINNED_HERE = ("tokens", "classtoken", "posembed", "attention", "token")

SETTINGS = dict(deadline=None, max_examples=40,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class SpelledOutAttention(nn.Module):
    """Self-attention as matrix products, with nn.MultiheadAttention's parameters."""

    def __init__(self, dim: int, heads: int, bias: bool):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.randn(3 * dim, dim) / dim ** 0.5)
        self.in_proj_bias = nn.Parameter(torch.randn(3 * dim) * 0.1) if bias else None
        self.out_proj = nn.Linear(dim, dim, bias=bias)

    def forward(self, x):
        b, n, c = x.shape
        d = c // self.heads
        q, k, v = nn.functional.linear(x, self.in_proj_weight, self.in_proj_bias).split(c, -1)
        q, k, v = (t.reshape(b, n, self.heads, d).transpose(1, 2) for t in (q, k, v))
        weights = torch.softmax(q @ k.transpose(-2, -1) / d ** 0.5, dim=-1)
        return self.out_proj((weights @ v).transpose(1, 2).reshape(b, n, c))


class TinyViT(nn.Module):
    """torchvision's VisionTransformer.forward, cut down to one attention layer."""

    def __init__(self, c: int, heads: int, tokens: int, bias: bool, index: int):
        super().__init__()
        self.class_token = nn.Parameter(torch.randn(1, 1, c))
        self.pos_embedding = nn.Parameter(torch.randn(1, tokens + 1, c) * 0.1)
        self.attention = SpelledOutAttention(c, heads, bias)
        self.index = index

    def forward(self, x):
        n, c, h, w = x.shape
        x = x.reshape(n, c, h * w).permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1) + self.pos_embedding
        return self.attention(x)[:, self.index]


def tiny_spec(c, h, w, heads, bias, index):
    return (f"input {c}x{h}x{w}\n"
            f"concat< classtoken {c} | tokens >\n"
            "posembed\n"
            f"attention {heads}{'' if bias else ' nobias'}\n"
            f"token {index}\n")


def test_every_kind_twinned_here_is_registered_and_exercised():
    from archdsl.layers import REGISTRY

    assert set(TWINNED_HERE) <= set(REGISTRY)
    ops = {r["op"] for r in archdsl.loads(tiny_spec(4, 2, 2, 2, True, 0)).layers()}
    assert set(TWINNED_HERE) <= ops


@st.composite
def tiny_cases(draw):
    heads = draw(st.integers(1, 4))
    c = heads * draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    return c, h, w, heads, draw(st.booleans()), draw(st.integers(0, h * w))


@settings(**SETTINGS)
@given(case=tiny_cases())
def test_tokens_class_token_position_attention_and_token_agree_with_torch(case):
    c, h, w, heads, bias, index = case
    net = archdsl.loads(tiny_spec(*case))
    twin = TinyViT(c, heads, h * w, bias, index).eval()
    assert net.output_shape == (c,)
    assert net.params == sum(p.numel() for p in twin.parameters())
    assert net.buffers == 0
    x = torch.randn(1, c, h, w)
    with FlopCounterMode(display=False) as flops:
        expected = twin(x)
    assert net.macs == flops.get_total_flops() // 2  # FLOPs count a multiply-add as two
    ours = net.to_torch().eval()
    archdsl.transfer_weights(twin, ours)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), expected, rtol=1e-4, atol=1e-5)


@settings(**SETTINGS)
@given(heads=st.integers(1, 4), per_head=st.integers(1, 4), n=st.integers(1, 12),
       bias=st.booleans())
def test_attention_holds_multihead_attention_weights_and_computes_the_same(heads, per_head, n,
                                                                           bias):
    c = heads * per_head
    mha = nn.MultiheadAttention(c, heads, bias=bias, batch_first=True).eval()
    ours = archdsl.loads(f"input {c}x1x{n}\ntokens\nattention {heads} bias="
                         f"{'true' if bias else 'false'}\n").to_torch().eval()
    ours_state = {k.split("attention1.")[1]: v.shape for k, v in ours.state_dict().items()}
    assert ours_state == {k: v.shape for k, v in mha.state_dict().items()}
    archdsl.transfer_weights(mha, ours)
    x = torch.randn(2, c, 1, n)
    seq = x.flatten(2).transpose(1, 2)
    with torch.no_grad():
        expected, _ = mha(seq, seq, seq, need_weights=False)
        torch.testing.assert_close(ours(x), expected, rtol=1e-4, atol=1e-5)


def test_attention_runs_through_scaled_dot_product_attention(monkeypatch):
    """The fused kernels run: the module calls F.scaled_dot_product_attention."""
    calls = []
    original = torch.nn.functional.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    model = archdsl.loads("input 8x2x3\ntokens\nattention 2\n").to_torch().eval()
    model(torch.randn(5, 8, 2, 3))
    assert calls == [(5, 2, 6, 4)]  # batch, heads, tokens, channels per head


def test_attention_dropout_acts_in_training_only():
    model = archdsl.loads("input 8x4x4\ntokens\nattention 2 dropout=0.5\n").to_torch()
    x = torch.randn(2, 8, 4, 4)
    model.eval()
    assert torch.equal(model(x), model(x))
    torch.manual_seed(0)
    model.train()
    assert not torch.equal(model(x), model(x))


def test_tokens_read_the_map_row_by_row():
    model = archdsl.loads("input 2x2x3\ntokens\n").to_torch()
    x = torch.arange(12.0).reshape(1, 2, 2, 3)
    assert torch.equal(model(x)[0, :, 0], torch.arange(6.0))   # channel 0, rows in order
    assert torch.equal(model(x)[0, 4], torch.tensor([4.0, 10.0]))  # one token: every channel


@pytest.mark.parametrize("text, code, fragment, hint", [
    ("input 8x4x4\nattention 2\n", "E-RANK", "needs a sequence of tokens (NxC), but its input is "
     "a CxHxW feature map (8x4x4)", "`tokens`"),
    ("input 8x4x4\ntokens\nattention 3\n", "E-GROUPS", "3 heads do not divide the 8 channels",
     "must divide"),
    ("input 8x4x4\ntokens\ntoken 16\n", "E-ARG-RANGE", "token 16 is past the end of the 16 tokens",
     "from 0 to 15"),
    ("input 64\nposembed\n", "E-RANK", "but its input is a vector (64)", "before `token`"),
    ("input 64\ntokens\n", "E-RANK", "tokens needs a CxHxW feature map", None),
    ("input 8x4x4\ntokens\nconv 8 k1\n", "E-RANK", "conv needs a CxHxW feature map", None),
])
def test_mistakes_are_located_errors(text, code, fragment, hint):
    assert_located_error(text, code, fragment, hint)


def test_heads_error_points_at_the_head_count():
    with pytest.raises(SpecError) as err:
        archdsl.loads("input 8x4x4\ntokens\nattention heads=3 dropout=0.1\n")
    (d,) = err.value.diagnostics
    assert (d.span.line, d.span.column) == (3, 11)


def test_the_table_shows_sequences_as_n_by_c():
    net = archdsl.loads(tiny_spec(16, 4, 4, 4, True, 0))
    outputs = {r["op"]: r["output"] for r in net.layers()}
    assert outputs["tokens"] == [16, 16] and outputs["concat"] == [17, 16]
    assert outputs["attention"] == [17, 16] and outputs["token"] == [16]
    assert "attention   17x16" in net.summary()


def test_draw_labels_the_transformer_layers():
    source = to_dot(archdsl.loads(tiny_spec(16, 4, 4, 4, False, 0)).graph).source
    for label in ("classtoken 16", "tokens", "posembed", "attention 4", "token 0"):
        assert label in source, label


def test_python_export_copies_the_modules_and_computes_the_same():
    net = archdsl.loads("arch tiny\n" + tiny_spec(8, 3, 3, 2, True, 0))
    source = to_python(net)
    for cls in ("class Tokens", "class ClassToken", "class PositionEmbedding",
                "class SelfAttention", "class SelectToken", "SelfAttention(8, 2)"):
        assert cls in source, cls
    assert "archdsl" not in source.split('"""', 2)[-1].replace("archdsl check", "")
    scope: dict = {}
    exec(compile(source, "tiny.py", "exec"), scope)
    model, exported = net.to_torch().eval(), scope["Tiny"]().eval()
    exported.load_state_dict(model.state_dict())
    x = torch.randn(2, 8, 3, 3)
    with torch.no_grad():
        assert torch.equal(model(x), exported(x))


def test_receptive_field_after_attention_is_the_whole_input():
    net = archdsl.loads("input 3x32x24\nconv 8 k8 s8\ntokens\nattention 2\nlinear 8\n")
    conv, tokens, attention, linear = [r["rf"] for r in net.layers()]
    assert conv == tokens == {"size": [8, 8], "stride": [8, 8]}  # a token sees its patch
    assert attention == {"size": [32, 24], "stride": [8, 8]}     # the whole input
    assert linear == attention


def test_linear_and_layernorm_work_on_each_token():
    net = archdsl.loads("input 8x2x3\ntokens\nlayernorm eps=1e-6\nlinear 5\n")
    assert [r["output"] for r in net.layers()] == [[6, 8], [6, 8], [6, 5]]
    assert net.params == 2 * 8 + 8 * 5 + 5 and net.macs == 6 * 8 * 5
    model = archdsl.loads("input 8x2x3\ntokens\nlayernorm eps=1e-6\nlinear 5\n").to_torch()
    x = torch.randn(2, 8, 2, 3)
    norm, linear = nn.LayerNorm(8, eps=1e-6), nn.Linear(8, 5)
    archdsl.transfer_weights(nn.Sequential(norm, linear), model)
    with torch.no_grad():
        torch.testing.assert_close(model(x), linear(norm(x.flatten(2).transpose(1, 2))))


@pytest.mark.parametrize("name, sets, params, macs", [
    ("vit_b_16", {}, 86_567_656, 17_563_828_224),
    ("vit_b_32", {"patch": 32}, 88_224_232, 4_409_186_304),
])
def test_vit_counts_are_torchvisions(name, sets, params, macs):
    net = archdsl.load("specs/vit.arch", **sets)
    assert (net.params, net.buffers, net.macs) == (params, 0, macs)
    assert not net.diagnostics
