"""Modules for convolution, pooling and softmax variants torch.nn lacks: TensorFlow's `same`
padding at any stride (timm's Conv2dSame, MaxPool2dSame, AvgPool2dSame), weight-standardised
convolution (timm's StdConv2d and ScaledStdConv2d), and softmax over channel groups (timm's
RadixSoftmax) or over both spatial axes.

Each class is self-contained (torch, nn and F only; no helper outside it): `export --to
python` copies the source of each class it uses, alone. The `same` padding is worked out in
`forward` from the input's size, as timm does: O = ceil(I / S), padded by
max((O - 1) * S + D * (K - 1) + 1 - I, 0) in total, the smaller half before.
"""

import torch
import torch.nn.functional as F
from torch import nn


class Conv2dSame(nn.Conv2d):
    """nn.Conv2d with TensorFlow's `same` padding at any stride (timm's Conv2dSame): the input
    padded (zeros, or `padding_mode`'s fill) so that O = ceil(I / S); weight and bias as
    nn.Conv2d's."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros"):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0,
                         dilation=dilation, groups=groups, bias=bias, padding_mode=padding_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for axis in (1, 0):  # F.pad takes W's (left, right), then H's (top, bottom)
            size, s = x.shape[2 + axis], self.stride[axis]
            total = max((-(-size // s) - 1) * s + self.dilation[axis] * (self.kernel_size[axis] - 1)
                        + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
        x = F.pad(x, pads, mode=mode)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", padding=same"


class StdConv2d(nn.Conv2d):
    """Weight-standardised convolution: each output channel's weights standardised to mean 0
    and variance 1 (biased, `eps` added) before every convolution. With `gain` it is timm's
    ScaledStdConv2d (NFNets, NF-ResNets): the standardised weights are also scaled by
    `gamma / sqrt(fan_in)` and by a learnt per-output-channel `gain` of shape (out, 1, 1, 1),
    starting at `gain_init`; without, timm's StdConv2d (BiT). `padding` may be `same`, at any
    stride (TensorFlow's rule beyond stride 1). State dict: weight, bias, gain, as timm's."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 eps: float = 1e-6, gain: bool = True, gamma: float = 1.0,
                 gain_init: float = 1.0):
        strided = padding == "same" and stride not in (1, (1, 1))
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=0 if strided else padding, dilation=dilation, groups=groups,
                         bias=bias, padding_mode=padding_mode)
        self.same_pad, self.eps, self.gain_init = strided, eps, gain_init
        self.scale = gamma * self.weight[0].numel() ** -0.5  # gamma / sqrt(fan-in)
        if gain:
            self.gain = nn.Parameter(torch.full((out_channels, 1, 1, 1), float(gain_init)))
        else:
            self.gain = None

    def standardised(self) -> torch.Tensor:
        """The weight as the convolution uses it (F.batch_norm over each output channel's
        weights, as timm computes it)."""
        scale = None if self.gain is None else (self.gain * self.scale).view(-1)
        weight = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                              weight=scale, training=True, momentum=0.0, eps=self.eps)
        return weight.reshape_as(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same_pad:
            pads = []
            for axis in (1, 0):  # W's (left, right), then H's (top, bottom)
                size, s = x.shape[2 + axis], self.stride[axis]
                total = max((-(-size // s) - 1) * s + self.dilation[axis] *
                            (self.kernel_size[axis] - 1) + 1 - size, 0)
                pads += [total // 2, total - total // 2]
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            x = F.pad(x, pads, mode=mode)
        return self._conv_forward(x, self.standardised(), self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + (", padding=same" if self.same_pad else "") + \
            f", eps={self.eps}" + (
            "" if self.gain is None else f", gamma-scale={self.scale:.4g}")


class MaxPool2dSame(nn.MaxPool2d):
    """Max pooling with TensorFlow's `same` padding (timm's MaxPool2dSame): the input padded
    with -inf so that O = ceil(I / S); the padding never wins the max."""

    def __init__(self, kernel_size, stride=None, dilation=1):
        pair = (lambda v: (v, v) if isinstance(v, int) else tuple(v))
        kernel_size = pair(kernel_size)
        stride = kernel_size if stride is None else pair(stride)
        super().__init__(kernel_size, stride=stride, padding=0, dilation=pair(dilation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for axis in (1, 0):  # W's (left, right), then H's (top, bottom)
            size = x.shape[2 + axis]
            k, s, d = self.kernel_size[axis], self.stride[axis], self.dilation[axis]
            total = max((-(-size // s) - 1) * s + d * (k - 1) + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        x = F.pad(x, pads, value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride, 0, self.dilation)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding=same, "
                f"dilation={self.dilation}")


class AvgPool2dSame(nn.AvgPool2d):
    """Average pooling with TensorFlow's `same` padding: the input padded with zeros so that
    O = ceil(I / S). With `count_include_pad` (timm's AvgPool2dSame) the padded zeros count in
    the average; without, each window averages only the inputs it covers (TensorFlow's)."""

    def __init__(self, kernel_size, stride=None, count_include_pad: bool = True):
        pair = (lambda v: (v, v) if isinstance(v, int) else tuple(v))
        kernel_size = pair(kernel_size)
        stride = kernel_size if stride is None else pair(stride)
        super().__init__(kernel_size, stride=stride, padding=0,
                         count_include_pad=count_include_pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for axis in (1, 0):  # W's (left, right), then H's (top, bottom)
            size, k, s = x.shape[2 + axis], self.kernel_size[axis], self.stride[axis]
            total = max((-(-size // s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        y = F.avg_pool2d(F.pad(x, pads), self.kernel_size, self.stride, 0)
        if self.count_include_pad:
            return y
        covered = F.pad(torch.ones_like(x[:1, :1]), pads)  # 1 on the input, 0 on the padding
        return y / F.avg_pool2d(covered, self.kernel_size, self.stride, 0)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding=same"
                + ("" if self.count_include_pad else ", count_include_pad=False"))


class GroupSoftmax(nn.Module):
    """Softmax (or log-softmax) across `groups` chunks of the channels (timm's RadixSoftmax,
    split attention's): the channels at dimension `dim` read as cardinality × groups × rest,
    softmax over the groups at each place, the result laid out groups first (as timm's
    `x.view(B, card, r, -1).transpose(1, 2)` leaves it), in the input's shape."""

    def __init__(self, groups: int, cardinality: int = 1, dim: int = 1, log: bool = False):
        super().__init__()
        self.groups, self.cardinality, self.dim, self.log = groups, cardinality, dim, log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.dim % x.dim()
        y = x.reshape(*x.shape[:d], self.cardinality, self.groups, -1).transpose(d, d + 1)
        y = F.log_softmax(y, dim=d) if self.log else F.softmax(y, dim=d)
        return y.reshape(x.shape)

    def extra_repr(self) -> str:
        return (f"groups={self.groups}, cardinality={self.cardinality}, dim={self.dim}"
                + (", log=True" if self.log else ""))


class SpatialSoftmax(nn.Module):
    """Softmax (or log-softmax) over all H × W positions of each channel of an N×C×H×W map:
    each channel's map sums to 1 (GCNet's context pooling)."""

    def __init__(self, log: bool = False):
        super().__init__()
        self.log = log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.flatten(2)
        y = F.log_softmax(y, dim=-1) if self.log else F.softmax(y, dim=-1)
        return y.reshape(x.shape)

    def extra_repr(self) -> str:
        return "log=True" if self.log else ""
