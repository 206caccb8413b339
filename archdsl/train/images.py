"""Images into batches on the CPU: the datasets the loaders read (decoded files, or a cache),
their torchvision transforms, the normalisation measured on the training images, and the
training order shared out among the workers (ShardedOrder)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import torch

from .config import TrainConfig
from .data import DataError, DataSet, decode, quiet_decoding, unreadable
from .distributed import World


class ImageSet(torch.utils.data.Dataset):
    """Samples decoded as they are read, through `transform`: (image, label)."""

    def __init__(self, samples, channels: int, transform):
        self.samples, self.channels, self.transform = samples, channels, transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        s = self.samples[i]
        with quiet_decoding():  # the transform reads the pixels PIL decodes lazily
            return self.transform(decode_again(s, self.channels)), s.label


def decode_again(sample, channels: int):
    """A sample decoded in a loader (data.decode; call it and the transform within
    quiet_decoding); a DataError saying so when a file that was readable when the run started
    no longer is."""
    try:
        return decode(sample, channels)
    except Exception as exc:  # noqa: BLE001 - it was readable when the run started
        raise DataError(f"{sample.path} can no longer be read "
                        f"({unreadable(exc, sample.path)}); it was readable when the run "
                        "started. Was it changed or deleted?") from None


class Seeded(torch.utils.data.Dataset):
    """A training set read at ShardedOrder's (index, seed) picks: the random transforms of
    each image draw from torch's random state seeded with its pick's seed, so how an image is
    augmented depends on the run's seed, the epoch and the image alone: not on which loader
    worker reads it, nor on whether that worker was restarted (a resumed run, another
    --workers) repeats it exactly. The process's own random state is left as it was."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, pick):
        index, seed = pick
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


class ShardedOrder(torch.utils.data.DistributedSampler):
    """The training order of one worker: a seeded shuffle of the whole training set each epoch
    (the same on every worker), cut into global batches of `batch_size`: the last partial one
    is dropped, unless the set is smaller than one batch, or `last` (batches.plan_epoch: a
    multiple of `world`) says how many of its images are trained on; worker `rank` of `world`
    takes its `batch_size / world` consecutive images of every global batch (its `last /
    world` of the last). So each image is used once per epoch across the workers, and every
    global step trains on exactly the images one process would. For an epoch resumed after Ctrl-C, `skip` images of the shuffle are left
    out, once. With `weights` (one per image, --sampler balanced) an epoch is as many draws
    with replacement, each image drawn in proportion to its weight, instead of a shuffle.
    It yields (index, seed) picks, which Seeded reads."""

    def __init__(self, size: int, generator: torch.Generator, batch_size: int, rank: int = 0,
                 world: int = 1, weights: torch.Tensor | None = None, last: int = 0):
        super().__init__(range(size), num_replicas=world, rank=rank, shuffle=True, drop_last=True)
        self.size, self.generator, self.batch_size, self.skip = size, generator, batch_size, 0
        self.weights = weights
        self.last = last if size > batch_size else 0

    def __len__(self):
        if self.size > self.batch_size:
            return (self.size // self.batch_size * (self.batch_size // self.num_replicas)
                    + self.last // self.num_replicas)
        return len(range(self.rank, self.size, self.num_replicas))

    def __iter__(self):
        if self.weights is None:
            order = torch.randperm(self.size, generator=self.generator).tolist()
        else:
            order = torch.multinomial(self.weights, self.size, replacement=True,
                                      generator=self.generator).tolist()
        # each pick's own seed for its random transforms (Seeded), drawn for the whole epoch
        seeds = torch.randint(2 ** 63 - 1, (self.size,), generator=self.generator).tolist()
        skip, self.skip = self.skip, 0
        order = list(zip(order, seeds))[skip:]
        if self.size <= self.batch_size:
            yield from order[self.rank::self.num_replicas]
            return
        share = self.batch_size // self.num_replicas
        for start in range(0, len(order) - self.batch_size + 1, self.batch_size):
            first = start + self.rank * share
            yield from order[first:first + share]
        if self.last and len(order) % self.batch_size:  # the last batch (skip: whole batches)
            share = self.last // self.num_replicas
            first = len(order) // self.batch_size * self.batch_size + self.rank * share
            yield from order[first:first + share]


def transforms(size, mean, std, train: bool, augment, flip: bool, erasing: float = 0.0):
    """torchvision's preprocessing. For training with `augment` (a --augment policy name; True
    and False stand for basic and none): a random resized crop, a flip (with `flip`), the
    policy on the uint8 image; otherwise a resize. Then float pixels, normalised when `mean`
    is given, and for training RandomErasing with probability `erasing` (after the
    normalisation, so the rectangle holds the mean colour: 0), in torchvision's order."""
    from torchvision.transforms import v2

    from .pipeline import augmentation_policy

    augment = {True: "basic", False: "none"}.get(augment, augment)
    steps = []
    if train and augment != "none":
        steps.append(v2.RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(0.9, 1.1),
                                          antialias=True))
        if flip:
            steps.append(v2.RandomHorizontalFlip())
        policy = augmentation_policy(augment)
        if policy is not None:  # on the uint8 crop, as torchvision's reference recipes do
            steps.append(policy)
    else:
        steps.append(v2.Resize(size, antialias=True))
    steps += [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    if mean is not None:
        steps.append(v2.Normalize(mean, std))
    if train and erasing > 0:
        steps.append(v2.RandomErasing(p=erasing))
    return v2.Compose(steps)


def eval_transform(config_json: dict):
    """The validation preprocessing of a finished run, for eval and predict."""
    _, height, width = config_json["input"]
    norm = config_json["normalisation"]
    return transforms((height, width), norm["mean"], norm["std"], train=False, augment=False,
                       flip=False)


def normalisation(samples, channels: int, size, limit: int = 500, seed: int = 0):
    """Per-channel mean and std of (a seeded sample of) the training images, resized."""
    rng = random.Random(seed)
    chosen = samples if len(samples) <= limit else rng.sample(samples, limit)
    plain = transforms(size, None, None, train=False, augment=False, flip=False)
    with quiet_decoding():
        stack = torch.stack([plain(decode(s, channels)) for s in chosen])
    mean = stack.mean(dim=(0, 2, 3))
    std = stack.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


def cpu_share(processes_here: int = 1) -> tuple[int, int]:
    """This process's cores (its affinity) and its share of them among the training
    processes on this machine."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return cores, max(cores // max(processes_here, 1), 1)


def torch_threads(requested: int, workers: int, processes_here: int = 1,
                  environ=os.environ, torch_default: int | None = None) -> int:
    """torch's CPU threads for a run: `--threads` when given (above 0), else OMP_NUM_THREADS
    when set, else this process's share of the cores (no more than torch's own default,
    which counts physical cores) less its data-loader workers (each a process of its own),
    at least 1; so that threads and workers together do not ask for more cores than the
    process has (OpenMP threads that wait on a taken core wait on each other:
    benchmarks/train_speed.py --loaded)."""
    if requested > 0:
        return requested
    given = environ.get("OMP_NUM_THREADS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    share = cpu_share(processes_here)[1]
    return max(min(share, torch_default or share) - workers, 1)


def loader_workers(requested: int, batches: int, processes_here: int = 1) -> tuple[int, str | None]:
    """The data-loader workers to start: `--workers`, but no more than this process's share
    of the CPU cores, nor than the batches of an epoch (a worker makes whole batches); and
    the line that says so when that is fewer than asked for."""
    cores, share = cpu_share(processes_here)
    workers = min(requested, share, max(batches, 1))
    if workers == requested:
        return workers, None
    why = []
    if requested > share:
        why.append(f"{cores} CPU core(s)" + (f" for {processes_here} training processes"
                                             if processes_here > 1 else ""))
    if requested > batches:
        why.append(f"{batches} batch(es) an epoch")
    return workers, (f"warning: --workers {requested} is more than this run can use: "
                     f"{workers} data-loader worker(s) ({', '.join(why)})")


def stored_size(size) -> tuple[int, int]:
    """The size images are kept at (cache) or sent to the device at (augment on the GPU):
    8/7 of the input, as 256 is to 224, for random crops to take from."""
    return tuple(max(int(round(v * 8 / 7)), v) for v in size)


def datasets(data: DataSet, channels: int, size, mean, std, flip: bool, config: TrainConfig,
              device, world: World):
    """The training and validation sets, and the GpuAugment when the device does the crops.

    Decoding and augmenting on the CPU (the default there): each image is decoded, cropped,
    resized and normalised by torchvision's transforms in the loader. `cache`: every image is
    decoded once, resized to stored_size, into memory or a memory-mapped file, and later
    epochs read pixels. `augment_on gpu` (the default on CUDA): the loader sends uint8 images
    at stored_size and the device crops, flips and normalises whole batches, and applies the
    policy and the erasing image by image (GpuAugment)."""
    from .pipeline import GpuAugment

    on_device = config.augment_on == "gpu" or (config.augment_on == "auto"
                                               and device.type == "cuda")
    kept = stored_size(size) if on_device or config.cache != "none" else size
    if on_device:  # the loader only decodes and resizes (a cache has done that already)
        from torchvision.transforms import v2

        train_tf = val_tf = v2.Compose([v2.Resize(kept, antialias=True), v2.PILToTensor()])
    else:
        train_tf = transforms(size, mean, std, True, config.augment, flip,
                              config.random_erasing)
        val_tf = transforms(size, mean, std, False, False, False)
    if config.cache == "none":
        train_set = ImageSet(data.train, channels, train_tf)
        val_set = ImageSet(data.val, channels, val_tf)
    else:
        train_set, val_set = (_cached(samples, channels, kept, config, device, world)
                              for samples in (data.train, data.val))
        if not on_device:
            train_set, val_set = _Transformed(train_set, train_tf), _Transformed(val_set, val_tf)
    augment = None
    if on_device:
        # (with --augment none it only resizes, as on the CPU; --random-erasing still applies)
        augment = GpuAugment(size, mean, std, flip=flip, policy=config.augment,
                             erasing=config.random_erasing,
                             channels_last=device.type == "cuda").to(device)
    return train_set, val_set, augment


def _cached(samples, channels: int, size, config: TrainConfig, device, world: World):
    """The images decoded once into memory or a file; with several workers on a machine,
    local rank 0 writes a disk cache first and the others read it."""
    from .pipeline import CachedImages

    folder = Path(config.cache_dir or Path.home() / ".cache" / "archdsl")
    first = config.cache == "disk" and world.local_rank == 0
    if first:
        folder.mkdir(parents=True, exist_ok=True)
    if config.cache == "disk" and not first:
        world.any(False, device)  # local rank 0 writes the cache first
    cached = CachedImages(samples, channels, size, where=config.cache, folder=folder)
    if first:
        world.any(False, device)
    return cached


class _Transformed(torch.utils.data.Dataset):
    """Cached uint8 images through the CPU transforms."""

    def __init__(self, cached, transform):
        self.cached, self.transform = cached, transform

    def __len__(self):
        return len(self.cached)

    def __getitem__(self, i):
        image, label = self.cached[i]
        return self.transform(image), label
