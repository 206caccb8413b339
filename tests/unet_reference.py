"""The 2015 U-Net (Ronneberger, Fischer and Brox, "U-Net: Convolutional Networks for Biomedical
Image Segmentation") written from the paper in plain PyTorch: the twin of specs/unet.arch
(tests/test_geometry.py compares them output for output, tests/test_specs.py counts)."""

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.functional import center_crop


class DoubleConv(nn.Sequential):
    """Two 3x3 convolutions, each followed by a ReLU (the paper's Figure 1, blue arrows)."""

    def __init__(self, c_in: int, c_out: int, padding: int):
        super().__init__(nn.Conv2d(c_in, c_out, 3, padding=padding), nn.ReLU(inplace=True),
                         nn.Conv2d(c_out, c_out, 3, padding=padding), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """Ronneberger et al., 2015: a contracting path (double convolutions, 2x2 max pooling,
    the width doubling from 64 to 1024), an expanding path (2x2 up-convolutions halving it,
    the contracting path's map cropped and concatenated first, double convolutions) and a
    1x1 convolution to the classes. `padding=1` keeps each size; 0 is the paper's."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, padding: int = 1):
        super().__init__()
        widths = (64, 128, 256, 512)
        self.down = nn.ModuleList()
        for c_in, c in zip((in_channels,) + widths[:-1], widths):
            self.down.append(DoubleConv(c_in, c, padding))
        self.bottleneck = DoubleConv(512, 1024, padding)
        self.ups = nn.ModuleList(nn.ConvTranspose2d(2 * c, c, 2, stride=2)
                                 for c in reversed(widths))
        self.decoders = nn.ModuleList(DoubleConv(2 * c, c, padding) for c in reversed(widths))
        self.head = nn.Conv2d(64, num_classes, 1)

    def forward(self, x):
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips)):
            x = up(x)
            x = decoder(torch.cat([center_crop(skip, list(x.shape[-2:])), x], 1))
        return self.head(x)


class SmallUNet(UNet):
    """The twin of specs/unet_small.arch: the U-Net above with batch norm after each
    convolution (and after each up-convolution, with a ReLU), three stages of `width`, 2x and
    4x channels and a bottleneck of 8x, padded 3x3 convolutions (so nothing is cropped)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 4, width: int = 16):
        nn.Module.__init__(self)

        def double(c_in, c):
            return nn.Sequential(nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
                                 nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(c), nn.ReLU(inplace=True))

        widths = (width, 2 * width, 4 * width)
        self.down = nn.ModuleList(double(c_in, c) for c_in, c in
                                  zip((in_channels,) + widths[:-1], widths))
        self.bottleneck = double(4 * width, 8 * width)
        self.ups = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(2 * c, c, 2, stride=2, bias=False),
                          nn.BatchNorm2d(c), nn.ReLU(inplace=True)) for c in reversed(widths))
        self.decoders = nn.ModuleList(double(2 * c, c) for c in reversed(widths))
        self.head = nn.Conv2d(width, num_classes, 1)
