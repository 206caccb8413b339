"""transfer_weights pairs tensors by their place in the structure, which one forward pass of
each network shows (the dataflow and the execution order), not by registration order alone:
DLA registers its projection before the block it feeds, HRNet its head's branches before the
convolutions that join them. Where no place tells same-shaped tensors apart it says so, and it
never pairs a parameter with a buffer."""

import copy

import pytest
import torch
from torch import nn

from archdsl.transfer import transfer_weights

pytestmark = pytest.mark.usefixtures("one_thread")


def randomised(model: nn.Module, seed: int) -> nn.Module:
    """Every floating-point tensor random (running variances positive), so that a tensor
    copied to the wrong place changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.5 if key.endswith("running_var")
                        else torch.randn(t.shape, generator=g) * 0.5)
    return model


def conv_bn(cin, cout, k, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout))


def outputs(a: nn.Module, b: nn.Module, *x):
    a.eval(), b.eval()
    with torch.no_grad():
        return a(*x), b(*x)


# ----------------------------------------------------------------------------- DLA's projection


class ProjectFirst(nn.Module):
    """timm's DlaTree: the 1x1 projection registered (and run) before the block it feeds."""

    def __init__(self, c=4):
        super().__init__()
        self.project = conv_bn(c, c, 1)
        self.tree1 = nn.Sequential(conv_bn(c, c, 3), nn.ReLU(), conv_bn(c, c, 1))

    def forward(self, x):
        shortcut = self.project(x)
        return torch.relu(self.tree1(x) + shortcut)


class ProjectLast(nn.Module):
    """A spec's residual< body | shortcut >, written the other way round: the body registered
    and run first. Its second conv has the projection's shape, and every batch norm the same."""

    def __init__(self, c=4):
        super().__init__()
        self.body = nn.Sequential(conv_bn(c, c, 3), nn.ReLU(), conv_bn(c, c, 1))
        self.shortcut = conv_bn(c, c, 1)

    def forward(self, x):
        out = self.body(x)
        return torch.relu(out + self.shortcut(x))


def test_a_projection_registered_before_its_block_goes_where_it_is_used():
    src = randomised(nn.Sequential(ProjectFirst(), ProjectFirst()), seed=0).train()
    before = copy.deepcopy(src.state_dict())
    dst = randomised(nn.Sequential(ProjectLast(), ProjectLast()), seed=1)
    dst.input_shape = (4, 6, 6)  # as a compiled archdsl network has
    transfer_weights(src, dst)  # the example: zeros of dst.input_shape
    assert all(m.training for m in src.modules())  # modes and values as they were
    assert all(torch.equal(v, before[k]) for k, v in src.state_dict().items())
    assert torch.equal(dst[0].shortcut[0].weight, src[0].project[0].weight)
    assert torch.equal(dst[1].body[2][1].running_var, src[1].tree1[2][1].running_var)
    expected, got = outputs(src, dst, torch.randn(2, 4, 6, 6))
    torch.testing.assert_close(got, expected)
    # registration order alone (no example: the documented fallback) copies the projection
    # into the body's second conv, and each batch norm one place off
    blind = randomised(nn.Sequential(ProjectLast(), ProjectLast()), seed=1)
    transfer_weights(src, blind)
    assert torch.equal(blind[0].body[2][0].weight, src[0].project[0].weight)


# ----------------------------------------------------------------------------- HRNet's head


class Head(nn.Module):
    """HRNet's classification head on three resolutions: each branch widened (`incre`), and
    joined to the finer ones' sum by a strided 3x3 conv (`down`). `incre_first` registers every
    branch before the convs that join them, as timm does; they run interleaved."""

    def __init__(self, incre_first: bool):
        super().__init__()
        self.stem = conv_bn(3, 4, 3)
        incre = [conv_bn(4, 4, 1), conv_bn(4, 8, 1), conv_bn(4, 8, 1)]
        down = [conv_bn(4, 8, 3, stride=2), conv_bn(8, 8, 3, stride=2)]
        if incre_first:
            self.incre, self.down = nn.ModuleList(incre), nn.ModuleList(down)
        else:  # in the order they run: incre0, incre1, down0, incre2, down1
            for name, m in [("incre0", incre[0]), ("incre1", incre[1]), ("down0", down[0]),
                            ("incre2", incre[2]), ("down1", down[1])]:
                self.add_module(name, m)
            self.incre, self.down = incre, down  # plain lists: not registered again
        self.final = nn.Linear(8, 5)

    def forward(self, x):
        x0 = self.stem(x)
        x1 = nn.functional.avg_pool2d(x0, 2)
        x2 = nn.functional.avg_pool2d(x1, 2)
        y = self.incre[0](x0)
        y = self.incre[1](x1) + self.down[0](y)
        y = self.incre[2](x2) + self.down[1](y)
        return self.final(y.mean((2, 3)))


def test_hrnet_head_branches_registered_before_their_joins_go_where_they_run():
    src, dst = randomised(Head(incre_first=True), 0), randomised(Head(incre_first=False), 1)
    x = torch.randn(2, 3, 8, 8)
    transfer_weights(src, dst, example=x[:1])
    assert torch.equal(dst.down0[1].weight, src.down[0][1].weight)
    assert torch.equal(dst.incre2[1].running_mean, src.incre[2][1].running_mean)
    expected, got = outputs(src, dst, x)
    torch.testing.assert_close(got, expected)


# ----------------------------------------------------------------------------- real code: timm


def reregistered(model: nn.Module) -> nn.Module:
    """`model` with every module's children registered in reverse order, where the order is
    not what its forward runs (containers iterated in their forward keep theirs)."""
    for m in model.modules():
        if not isinstance(m, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
            items = list(m._modules.items())
            m._modules.clear()
            m._modules.update(reversed(items))
    return model


def test_timm_dla34_into_a_copy_registered_in_another_order():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    src = randomised(timm.create_model("dla34", pretrained=False, num_classes=10), seed=0)
    dst = reregistered(randomised(timm.create_model("dla34", pretrained=False,
                                                    num_classes=10), seed=1))
    assert list(dst.level2.tree1.state_dict())[0] == "bn2.weight"  # the order did change
    x = torch.randn(1, 3, 64, 64)
    transfer_weights(src, dst, example=x)
    expected, got = outputs(src, dst, x)
    assert expected.abs().max() > 1e-2
    torch.testing.assert_close(got, expected)


# ----------------------------------------------------------------------------- refusing to guess


class WithHeads(nn.Module):
    """A main path and heads of one structure: `main` always runs, the others where `runs`
    says (an auxiliary classifier runs in training only in torchvision's GoogLeNet; another
    implementation may run it always)."""

    def __init__(self, heads, runs=()):
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.main = nn.Linear(4, 2)
        for name in heads:
            self.add_module(name, nn.Linear(4, 2))
        self.runs = runs
        self.input_shape = (4,)

    def forward(self, x):
        x = self.body(x)
        return [self.main(x)] + [getattr(self, name)(x) for name in self.runs]


def test_a_head_run_on_one_side_only_is_named_not_guessed():
    """`aux_a` is never run, `aux_b` runs beside `main`, as `main` does: the two run ones both
    read the body, and nothing says which of them `aux_a` stands for."""
    src = randomised(WithHeads(["aux_a"]), 0)
    dst = WithHeads(["aux_b"], runs=["aux_b"])
    before = copy.deepcopy(dst.state_dict())
    with pytest.raises(ValueError, match=r"^source aux_a could go to destination aux_b, but the "
                                         r"forward pass reaches one side's and not the other's "
                                         r"\(an auxiliary head run in training only\?\): of the "
                                         r"2 modules holding weight \(2, 4\), bias \(2,\) on "
                                         r"each side, no place says which these stand for"):
        transfer_weights(src, dst)
    assert all(torch.equal(v, before[k]) for k, v in dst.state_dict().items())


def test_heads_never_run_pair_by_name_then_by_registration_order():
    src = randomised(WithHeads(["aux1", "aux2"]), 0)
    same_names = WithHeads(["aux2", "aux1"])  # registered the other way round
    transfer_weights(src, same_names)
    assert torch.equal(same_names.aux1.weight, src.aux1.weight)
    assert torch.equal(same_names.aux2.bias, src.aux2.bias)
    other_names = WithHeads(["head1", "head2"])  # nothing but their order: the k-th, the k-th
    transfer_weights(src, other_names)
    assert torch.equal(other_names.head1.weight, src.aux1.weight)
    assert torch.equal(other_names.head2.weight, src.aux2.weight)


# ----------------------------------------------------------------------------- roles


class Scaled(nn.Module):
    """linear(x) * scale, with `scale` a parameter or a buffer: the same name, shape and place."""

    def __init__(self, scale_is_parameter: bool):
        super().__init__()
        self.linear = nn.Linear(8, 8)
        if scale_is_parameter:
            self.scale = nn.Parameter(torch.ones(8))
        else:
            self.register_buffer("scale", torch.ones(8))
        self.input_shape = (8,)

    def forward(self, x):
        return self.linear(x) * self.scale


def test_a_parameter_never_pairs_with_a_buffer():
    src, dst = randomised(Scaled(scale_is_parameter=True), 0), Scaled(scale_is_parameter=False)
    with pytest.raises(ValueError, match=r"the first without a partner is destination scale "
                                         r"\(8,\): the other side's tensors of that shape are "
                                         r"parameters where these are buffers, or the reverse"):
        transfer_weights(src, dst)
    assert torch.equal(dst.scale, torch.ones(8))


class Affine(nn.Module):
    """A parameter and a buffer of one shape, used in the order `first` says."""

    def __init__(self, first: str, p_name: str, b_name: str):
        super().__init__()
        self.p_name, self.b_name, self.first = p_name, b_name, first
        self.register_parameter(p_name, nn.Parameter(torch.zeros(8)))
        self.register_buffer(b_name, torch.zeros(8))

    def forward(self, x):
        p, b = getattr(self, self.p_name), getattr(self, self.b_name)
        return (x + p) * b if self.first == "parameter" else (x + b) * p


def test_tensors_left_pair_by_role_before_execution_order():
    """No module pairs whole (the names differ); the one parameter and the one buffer of
    shape 8 each go to their own kind, though the buffer runs first on one side only."""
    src = randomised(Affine("parameter", "gain", "mask"), 0)
    dst = Affine("buffer", "weight", "running")
    transfer_weights(src, dst, example=torch.randn(1, 8))
    assert torch.equal(dst.weight, src.gain) and torch.equal(dst.running, src.mask)
