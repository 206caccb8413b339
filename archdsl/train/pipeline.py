"""Building blocks for an input pipeline that keeps a fast GPU busy.

Decoding JPEGs and cropping them on the CPU tops out at a few thousand images per second,
which a large GPU trains through faster. Two pieces move that work:

- `CachedImages` decodes a data set once, resized to a fixed size, into one uint8 tensor in
  memory or a memory-mapped .npy file on disk, so later epochs read pixels instead of files.
- `GpuAugment` takes a uint8 batch already on the device and does the random resized crop,
  the flip and the normalisation there, batched (the same ranges as the CPU transforms), and
  torchvision's augmentation policy and random erasing there image by image.
"""

from __future__ import annotations

import hashlib
import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..files import atomic_write
from .data import DataError, Sample, decode, quiet_decoding, unreadable
from .units import format_bytes

CACHE_FORMAT = "archdsl-image-cache-v1"  # part of every cache's name: a new layout, new files


# ----------------------------------------------------------------------------- the cache


def cache_bytes(n: int, channels: int, size) -> int:
    """The bytes a cache of `n` images of `channels` x size[0] x size[1] uint8 pixels takes."""
    height, width = size
    return n * channels * height * width


def available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (MemAvailable), if it says."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_cache_problem(n: int, channels: int, size, share: float = 0.8) -> str | None:
    """Why a memory cache of `n` images would not fit (more than `share` of the available
    memory), in words; None when it fits or the system does not say."""
    needed, free = cache_bytes(n, channels, size), available_memory()
    if free is None or needed <= share * free:
        return None
    height, width = size
    return (f"caching {n:,} images at {channels}x{height}x{width} in memory needs "
            f"{format_bytes(needed)}, but only {format_bytes(free)} is available; cache them on "
            "disk instead, or leave them uncached")


def cache_name(samples: list[Sample], channels: int, size) -> str:
    """A file name that changes with every file's path, size and modification time (or the
    pixels of built-in images), the channel count and the size: a changed data set never
    meets a stale cache."""
    height, width = size
    digest = hashlib.blake2b(f"{CACHE_FORMAT} {channels} {height} {width}".encode(),
                             digest_size=16)
    seen: dict[int, bytes] = {}  # synthetic samples share their pixel arrays
    for s in samples:
        if s.pixels is not None:
            key = id(s.pixels)
            if key not in seen:
                h = hashlib.blake2b(str(s.pixels.shape).encode(), digest_size=16)
                h.update(np.ascontiguousarray(s.pixels).data)
                seen[key] = h.digest()
            digest.update(seen[key])
        else:
            stat = Path(s.path).stat()
            digest.update(f"\0{Path(s.path).resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
                          .encode())
    return f"{len(samples)}x{channels}x{height}x{width}-{digest.hexdigest()}.npy"


def resized_pixels(sample: Sample, channels: int, size) -> torch.Tensor:
    """One image decoded and resized (bilinear, antialiased) to `size`: uint8 C x H x W."""
    from torchvision.transforms.v2 import functional as F

    try:
        image = decode(sample, channels)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - named with its reason, like the loader does
        raise DataError(f"{sample.path} cannot be read for the cache "
                        f"({unreadable(exc, sample.path)})") from None
    if image.size != (size[1], size[0]):
        image = F.resize(image, list(size), antialias=True)
    return F.pil_to_tensor(image)


class CachedImages(torch.utils.data.Dataset):
    """A data set decoded once and resized to `size` (H, W): item i is (uint8 C x H x W, label).

    `where="memory"` keeps every image in one N x C x H x W tensor (`images`), refused with a
    DataError when it would not fit; `where="disk"` writes them to an .npy file in `folder`,
    named by `cache_name`, and reads it memory-mapped, so a second run with the same data
    decodes nothing. `threads` decode in parallel (PIL releases the GIL)."""

    def __init__(self, samples: list[Sample], channels: int, size, where: str = "memory",
                 folder: str | Path | None = None, threads: int | None = None):
        if where not in ("memory", "disk"):
            raise ValueError(f"where is 'memory' or 'disk', not {where!r}")
        self.samples, self.channels = list(samples), channels
        self.size = tuple(int(v) for v in size)
        self.labels = torch.tensor([s.label for s in self.samples], dtype=torch.long)
        self.threads = threads if threads is not None else min(8, os.cpu_count() or 1)
        self.where, self.path = where, None
        shape = (len(self.samples), channels, *self.size)
        if where == "memory":
            problem = memory_cache_problem(len(self.samples), channels, self.size)
            if problem:
                raise DataError(problem)
            self.images = torch.empty(shape, dtype=torch.uint8)
            self._fill(self.images.numpy())
            return
        if folder is None:
            raise ValueError("a disk cache needs a folder")
        self.path = Path(folder) / cache_name(self.samples, channels, self.size)
        if not self._readable(shape):
            atomic_write(self.path, lambda tmp: self._write(tmp, shape))
        self.images = np.load(self.path, mmap_mode="r")

    def _readable(self, shape) -> bool:
        if not self.path.is_file():
            return False
        try:
            return np.load(self.path, mmap_mode="r").shape == shape
        except (OSError, ValueError):
            return False  # damaged: written again

    def _write(self, tmp: str, shape) -> None:
        target = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        self._fill(target)
        target.flush()
        del target

    def _fill(self, target: np.ndarray) -> None:
        def one(i):
            target[i] = resized_pixels(self.samples[i], self.channels, self.size).numpy()

        with quiet_decoding():  # set here, for the decoding threads too
            if self.threads > 1 and len(self.samples) > 1:
                with ThreadPoolExecutor(self.threads) as pool:
                    for _ in pool.map(one, range(len(self.samples))):
                        pass
            else:
                for i in range(len(self.samples)):
                    one(i)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i):
        return self._pixels(i), int(self.labels[i])

    def take(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch at once: (uint8 N x C x H x W, labels), one gather, no collation."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        if isinstance(self.images, torch.Tensor):
            return self.images[indices], self.labels[indices]
        return torch.from_numpy(self.images[indices.numpy()]), self.labels[indices]

    def _pixels(self, i) -> torch.Tensor:
        if isinstance(self.images, torch.Tensor):
            return self.images[i]
        return torch.from_numpy(np.array(self.images[i]))  # a writable copy of the mapped rows

    def __getstate__(self):  # a spawned loader worker maps the file again, not a copy of it
        state = dict(self.__dict__)
        if self.where == "disk":
            state["images"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.where == "disk":
            self.images = np.load(self.path, mmap_mode="r")


# ----------------------------------------------------------------------------- augmentation


def augmentation_policy(name: str):
    """torchvision.transforms.v2's augmentation policy for `--augment name` (trivialaugment:
    TrivialAugmentWide, randaugment: RandAugment, autoaugment: AutoAugment's ImageNet policy),
    resampling bilinearly as torchvision's reference recipes do; None for basic and none.
    Each works on 1-channel (grayscale) and 3-channel uint8 images alike (their colour
    operation leaves a grayscale image as it is) and none of them mirrors an image."""
    from torchvision.transforms import v2

    bilinear = v2.InterpolationMode.BILINEAR
    if name == "trivialaugment":
        return v2.TrivialAugmentWide(interpolation=bilinear)
    if name == "randaugment":
        return v2.RandAugment(interpolation=bilinear)
    if name == "autoaugment":
        return v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET, interpolation=bilinear)
    return None


class GpuAugment(nn.Module):
    """uint8 N x C x H x W images on any device in, float N x C x h x w normalised images out.

    In training mode each image gets its own random resized crop (area `scale` of the image,
    aspect `ratio`, as torchvision's RandomResizedCrop draws them) resampled to `size` with
    `roi_align`, and with `flip` a horizontal flip half of the time, all in one batched call;
    then, with a `policy` (a --augment name: trivialaugment, randaugment, autoaugment), the
    crops are rounded to uint8 and torchvision's policy runs on each image with its own draw;
    after the normalisation, with `erasing` above 0, torchvision's RandomErasing(p=erasing)
    on each image. Policy `none` only resizes, as eval mode does (erasing still applies in
    training mode). The crops and flips draw from `generator` (a CPU torch.Generator, so
    runs repeat on any device; the global one if None) and go to the device with the batch;
    the policy and the erasing draw from torch's global random state, as on the CPU."""

    def __init__(self, size, mean, std, *, flip: bool = True, scale=(0.8, 1.0),
                 ratio=(0.9, 1.1), policy: str = "basic", erasing: float = 0.0,
                 channels_last: bool = False, generator: torch.Generator | None = None,
                 dtype=torch.float32):
        from torchvision.transforms import v2

        super().__init__()
        self.size = (size, size) if isinstance(size, int) else tuple(int(v) for v in size)
        self.flip, self.scale, self.ratio = flip, tuple(scale), tuple(ratio)
        self.channels_last, self.generator, self.dtype = channels_last, generator, dtype
        self.crops = policy != "none"
        self.policy = augmentation_policy(policy)
        self.erasing = v2.RandomErasing(p=erasing) if erasing > 0 else None
        mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        # (x / 255 - mean) / std as one multiply-add
        self.register_buffer("multiplier", 1.0 / (255.0 * std), persistent=False)
        self.register_buffer("offset", -mean / std, persistent=False)

    def crop_boxes(self, n: int, height: int, width: int) -> torch.Tensor:
        """n crop boxes (x1, y1, x2, y2) in pixels of a height x width image, on the CPU:
        ten tries per image as RandomResizedCrop makes, then its central fallback."""
        tries = 10
        u = torch.rand(n, tries, 4, generator=self.generator, dtype=torch.float64)
        area = height * width * (self.scale[0] + (self.scale[1] - self.scale[0]) * u[..., 0])
        low, high = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = torch.exp(low + (high - low) * u[..., 1])
        w = torch.round(torch.sqrt(area * aspect))
        h = torch.round(torch.sqrt(area / aspect))
        fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        first = fits.to(torch.int8).argmax(dim=1, keepdim=True)  # the first try that fits

        def pick(t):
            return t.gather(1, first).squeeze(1)

        w, h = pick(w), pick(h)
        top = torch.minimum(torch.floor(pick(u[..., 2]) * (height - h + 1)), height - h)
        left = torch.minimum(torch.floor(pick(u[..., 3]) * (width - w + 1)), width - w)
        fallback = ~fits.any(dim=1)
        if fallback.any():
            fw, fh = self._central(height, width)
            w[fallback], h[fallback] = fw, fh
            top[fallback], left[fallback] = (height - fh) // 2, (width - fw) // 2
        return torch.stack([left, top, left + w, top + h], dim=1)

    def _central(self, height: int, width: int) -> tuple[int, int]:
        in_ratio = width / height
        if in_ratio < min(self.ratio):
            return width, int(round(width / min(self.ratio)))
        if in_ratio > max(self.ratio):
            return int(round(height * max(self.ratio))), height
        return width, height

    def flips(self, n: int) -> torch.Tensor:
        """Which of n images to mirror (bool, CPU): about half with `flip`, none without."""
        if not self.flip:
            return torch.zeros(n, dtype=torch.bool)
        return torch.rand(n, generator=self.generator) < 0.5

    def forward(self, images: torch.Tensor, masks: torch.Tensor | None = None):
        """The batch augmented (training) or resized (eval) and normalised; with `masks`
        (uint8 N x H x W label images, segmentation), (images, masks): each mask cropped,
        flipped and resized as its image is, by nearest neighbour, as int64."""
        n, _, height, width = images.shape
        x = images.float()
        boxes = mirror = None
        if self.training and self.crops:
            boxes, mirror = self.crop_boxes(n, height, width), self.flips(n)
            x = self.cropped(x, boxes, mirror)
            if self.policy is not None:  # on uint8 pixels, as torchvision's policies expect
                x = _each(self.policy, x.round_().clamp_(0, 255).to(torch.uint8)).float()
        elif (height, width) != self.size:
            x = nn.functional.interpolate(x, size=self.size, mode="bilinear",
                                          align_corners=False, antialias=True)
        x = x * self.multiplier + self.offset
        if self.training and self.erasing is not None:
            x = _each(self.erasing, x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if masks is None:
            return x.to(self.dtype)
        return x.to(self.dtype), self.masks(masks, boxes, mirror)

    def cropped(self, x: torch.Tensor, boxes=None, mirror=None) -> torch.Tensor:
        """Each image of the float batch randomly cropped to `size` and maybe flipped (at
        the given `boxes` and `mirror`, else freshly drawn ones)."""
        from torchvision.ops import roi_align

        n, _, height, width = x.shape
        boxes = self.crop_boxes(n, height, width) if boxes is None else boxes
        mirror = self.flips(n) if mirror is None else mirror
        rois = torch.cat([torch.arange(n, dtype=torch.float64)[:, None], boxes], dim=1)
        rois = rois.to(device=x.device, dtype=x.dtype, non_blocking=True)
        x = roi_align(x, rois, output_size=self.size, spatial_scale=1.0, sampling_ratio=-1,
                      aligned=True)
        if self.flip:
            mirror = mirror.to(x.device, non_blocking=True).view(n, 1, 1, 1)
            x = torch.where(mirror, x.flip(-1), x)
        return x

    def masks(self, masks: torch.Tensor, boxes=None, mirror=None) -> torch.Tensor:
        """Label images taken as `cropped` takes their images (`boxes`, `mirror`; None: the
        whole image), each output pixel the label at its centre's position (nearest
        neighbour: labels are never blended), as int64 N x h x w."""
        n, height, width = masks.shape
        if boxes is None:
            boxes = torch.tensor([[0.0, 0.0, width, height]], dtype=torch.float64).expand(n, 4)
        out_h, out_w = self.size
        boxes = boxes.to(torch.float64)
        steps_y = (torch.arange(out_h, dtype=torch.float64) + 0.5) / out_h
        steps_x = (torch.arange(out_w, dtype=torch.float64) + 0.5) / out_w
        rows = boxes[:, 1:2] + steps_y[None] * (boxes[:, 3:4] - boxes[:, 1:2])
        cols = boxes[:, 0:1] + steps_x[None] * (boxes[:, 2:3] - boxes[:, 0:1])
        rows = rows.floor().clamp_(0, height - 1).long()
        cols = cols.floor().clamp_(0, width - 1).long()
        if mirror is not None:
            cols = torch.where(mirror.view(n, 1), cols.flip(-1), cols)
        device = masks.device
        index = (torch.arange(n)[:, None, None] * (height * width) + rows[:, :, None] * width
                 + cols[:, None, :]).to(device, non_blocking=True)
        return masks.reshape(-1)[index].long()


def _each(transform, batch: torch.Tensor) -> torch.Tensor:
    """A torchvision transform applied to each image of the batch on its own: its random
    draw is the image's own (given the whole batch, it would draw once for all of them)."""
    return torch.stack([transform(image) for image in batch])


__all__ = ["CachedImages", "GpuAugment", "augmentation_policy", "cache_bytes", "cache_name",
           "available_memory", "memory_cache_problem", "resized_pixels"]
