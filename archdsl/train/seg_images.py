"""Images with their masks into batches, for segmentation: every geometric augmentation moves
the image and its mask together, on the CPU (torchvision.transforms.v2 with the mask as a
tv_tensors.Mask, resampled by nearest neighbour) and on the GPU (pipeline.GpuAugment, given
the masks beside the images).

What segmentation augments: a random resized crop that is also a random scale (a crop of
SCALE of the image's area, of aspect RATIO, resized to the spec's input) and a horizontal
flip; the photometric policies of --augment would have to leave the mask alone, and their
geometric ones move it, so only `basic` and `none` are taken (config.py says so). Validation
resizes the image (bilinear) and the mask (nearest) to the input: the metrics are measured at
the network's own resolution.
"""

from __future__ import annotations

import numpy as np
import torch

from .data import DataError, quiet_decoding
from .images import decode_again
from .seg_metrics import IGNORE  # a mask value that is no class: out of the loss and metrics
SCALE = (0.8, 1.0)  # the area of the image a training crop takes (as for classification)
RATIO = (0.9, 1.1)


def joint_transforms(size, mean, std, train: bool, augment: bool, flip: bool,
                     erasing: float = 0.0):
    """(PIL image, tv_tensors.Mask) -> (float C x H x W image, uint8 H x W mask): the random
    resized crop and the flip on both for training with `augment`, else a resize; the image
    then as float pixels, normalised when `mean` is given; for training, RandomErasing of
    the image alone with probability `erasing` (the mask keeps its labels: the network learns
    to label what it cannot see from the context)."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    steps = []
    if train and augment:
        steps.append(v2.RandomResizedCrop(size, scale=SCALE, ratio=RATIO, antialias=True))
        if flip:
            steps.append(v2.RandomHorizontalFlip())
    else:
        steps.append(v2.Resize(size, antialias=True))
    steps += [v2.ToImage(), v2.ToDtype({tv_tensors.Image: torch.float32, "others": None},
                                       scale=True)]
    if mean is not None:
        steps.append(v2.Normalize(mean, std))
    erase = v2.RandomErasing(p=erasing) if train and erasing > 0 else None
    joint = v2.Compose(steps)

    def transform(image, mask):
        x, m = joint(image, tv_tensors.Mask(_tensor(mask)))
        x = x.as_subclass(torch.Tensor)
        return (erase(x) if erase is not None else x), m.as_subclass(torch.Tensor)

    return transform


def stored_transform(size):
    """For the GPU path: (PIL image, mask) -> (uint8 image, uint8 mask) at `size`, which the
    device crops, flips and normalises (GpuAugment)."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    resize = v2.Compose([v2.Resize(size, antialias=True), v2.PILToTensor()])

    def transform(image, mask):
        x, m = resize(image, tv_tensors.Mask(_tensor(mask)))
        return x.as_subclass(torch.Tensor), m.as_subclass(torch.Tensor)

    return transform


def _tensor(mask: np.ndarray) -> torch.Tensor:
    """A mask as a tensor (a copy of the built-in data's read-only arrays)."""
    return torch.from_numpy(mask if mask.flags.writeable else mask.copy())


class SegImageSet(torch.utils.data.Dataset):
    """Samples with masks, decoded as they are read, through `transform`: (image, mask)."""

    def __init__(self, samples, channels: int, classes: int, transform, palette=None):
        self.samples, self.channels, self.classes = samples, channels, classes
        self.palette = palette  # DataSet.palette: maps an RGB mask's colours to classes
        self.transform = transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        from .seg_data import decode_mask

        s = self.samples[i]
        with quiet_decoding():  # the transform reads the pixels PIL decodes lazily
            image = decode_again(s, self.channels)
            mask = decode_mask(s, self.classes, self.palette)
            if mask.shape != (image.height, image.width):
                raise DataError(f"{s.mask} is {mask.shape[1]}x{mask.shape[0]} pixels but its "
                                f"image {s.path} is {image.width}x{image.height}; a mask labels "
                                "each pixel of its image, so the two must be the same size")
            return self.transform(image, mask)


def seg_datasets(data, channels: int, size, mean, std, flip: bool, config, device):
    """The training and validation sets of a segmentation run, and the GpuAugment when the
    device crops (images.datasets' counterpart; a --cache is refused by config checks)."""
    from .images import stored_size
    from .pipeline import GpuAugment

    on_device = config.augment_on == "gpu" or (config.augment_on == "auto"
                                               and device.type == "cuda")
    augment = config.augment != "none"
    classes = len(data.classes)
    if on_device:
        train_tf = val_tf = stored_transform(stored_size(size))
    else:
        train_tf = joint_transforms(size, mean, std, True, augment, flip, config.random_erasing)
        val_tf = joint_transforms(size, mean, std, False, False, False)
    train_set = SegImageSet(data.train, channels, classes, train_tf, data.palette)
    val_set = SegImageSet(data.val, channels, classes, val_tf, data.palette)
    gpu = None
    if on_device:
        gpu = GpuAugment(size, mean, std, flip=flip, scale=SCALE, ratio=RATIO,
                         policy="basic" if augment else "none", erasing=config.random_erasing,
                         channels_last=device.type == "cuda").to(device)
    return train_set, val_set, gpu


def pixel_counts(data, classes: int) -> np.ndarray:
    """The labelled pixels of each class over the training masks (--class-weights auto)."""
    from .seg_data import decode_mask

    counts = np.zeros(classes, dtype=np.int64)
    for s in data.train:
        mask = decode_mask(s, classes, data.palette)
        counts += np.bincount(mask[mask != IGNORE].ravel(), minlength=classes)[:classes]
    return counts
