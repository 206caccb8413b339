"""`archdsl train`: a spec and a data set in, a trained and evaluated model in a run folder out.

The run folder holds a copy of the spec, config.json (every option, the resolved parameters,
classes, normalisation, seed, library versions), metrics.csv (one row per epoch), the best
and last weights as safetensors, resume.pt (everything `--resume` needs: weights, optimizer,
schedule, scaler, epoch, random states; read back weights-only), curves.png and
confusion.png. An epoch's files are written to temporary names and renamed together, so a run
killed at any moment leaves its last checkpoint intact; Ctrl-C saves the run after the current
step (interrupt.py), and a non-finite loss or gradient stops it naming the layer.
"""

from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..files import WriteError, atomic_batch, atomic_write, remove_temporaries
from .data import DataError, DataSet, Sample, decode, load_dataset, stratified_split, unreadable
from .distributed import World, join
from .errors import Interrupted, TrainError, on_every_worker
from .health import GradientHealth, first_non_finite_gradient, first_non_finite_layer
from .interrupt import StopRequest
from .progress import Progress
from .run_folder import (RUN_FILES, checkpoint_bytes, json_writer, make_run_folder,
                         metrics_writer, read_config, read_resume_state, resume_command,
                         weights_writer, write_error)


@dataclass
class TrainConfig:
    """Every option of `archdsl train`, with its default."""

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "sgd"  # sgd or adamw
    lr: float | None = None  # default: 0.05 for sgd, 0.001 for adamw
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float | None = None  # default: 5e-4 for sgd, 0.05 for adamw
    schedule: str = "cosine"  # cosine (with warm-up), step, onecycle, constant
    warmup_epochs: float = 1.0
    step_size: int = 30
    gamma: float = 0.1
    label_smoothing: float = 0.0
    clip_grad: float | None = None
    seed: int = 0
    workers: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 elsewhere), bf16, fp16, fp32
    compile: bool = False
    augment: bool = True
    val_split: float = 0.1
    tensorboard: bool = False
    quiet: bool = False
    sync_bn: bool = False  # SyncBatchNorm across workers (distributed runs on CUDA)
    cache: str = "none"  # none, memory or disk: decode and resize the images once
    cache_dir: str | None = None  # for the disk cache (default ~/.cache/archdsl)
    augment_on: str = "auto"  # cpu or gpu (crop, flip, normalise on the device); auto: gpu on CUDA

    def resolved(self) -> "TrainConfig":
        lr = self.lr if self.lr is not None else (0.05 if self.optimizer == "sgd" else 1e-3)
        wd = self.weight_decay if self.weight_decay is not None else (
            5e-4 if self.optimizer == "sgd" else 0.05)
        return TrainConfig(**{**asdict(self), "lr": lr, "weight_decay": wd})

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# ----------------------------------------------------------------------------- data pipeline


class ImageSet(torch.utils.data.Dataset):
    def __init__(self, samples, channels: int, transform):
        self.samples, self.channels, self.transform = samples, channels, transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        s = self.samples[i]
        try:
            image = decode(s, self.channels)
        except Exception as exc:  # noqa: BLE001 - it was readable when the run started
            raise DataError(f"{s.path} can no longer be read ({unreadable(exc, s.path)}); it was "
                            "readable when the run started. Was it changed or deleted?") from None
        return self.transform(image), s.label


class ShardedOrder(torch.utils.data.DistributedSampler):
    """The training order of one worker: a seeded shuffle of the whole training set each epoch
    (the same on every worker), cut into global batches of `batch_size` (the last partial one
    dropped, unless the set is smaller than one batch); worker `rank` of `world` takes its
    `batch_size / world` consecutive images of every global batch. So each image is used once
    per epoch across the workers, and every global step trains on exactly the images one
    process would. For an epoch resumed after Ctrl-C, `skip` images of the shuffle are left
    out, once."""

    def __init__(self, size: int, generator: torch.Generator, batch_size: int, rank: int = 0,
                 world: int = 1):
        super().__init__(range(size), num_replicas=world, rank=rank, shuffle=True, drop_last=True)
        self.size, self.generator, self.batch_size, self.skip = size, generator, batch_size, 0

    def __len__(self):
        if self.size > self.batch_size:
            return self.size // self.batch_size * (self.batch_size // self.num_replicas)
        return len(range(self.rank, self.size, self.num_replicas))

    def __iter__(self):
        order = torch.randperm(self.size, generator=self.generator).tolist()
        skip, self.skip = self.skip, 0
        order = order[skip:]
        if self.size <= self.batch_size:
            yield from order[self.rank::self.num_replicas]
            return
        share = self.batch_size // self.num_replicas
        for start in range(0, len(order) - self.batch_size + 1, self.batch_size):
            first = start + self.rank * share
            yield from order[first:first + share]


def _transforms(size, mean, std, train: bool, augment: bool, flip: bool):
    from torchvision.transforms import v2

    steps = []
    if train and augment:
        steps.append(v2.RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(0.9, 1.1),
                                          antialias=True))
        if flip:
            steps.append(v2.RandomHorizontalFlip())
    else:
        steps.append(v2.Resize(size, antialias=True))
    steps += [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    if mean is not None:
        steps.append(v2.Normalize(mean, std))
    return v2.Compose(steps)


def eval_transform(config_json: dict):
    """The validation preprocessing of a finished run, for eval and predict."""
    _, height, width = config_json["input"]
    norm = config_json["normalisation"]
    return _transforms((height, width), norm["mean"], norm["std"], train=False, augment=False,
                       flip=False)


def normalisation(samples, channels: int, size, limit: int = 500, seed: int = 0):
    """Per-channel mean and std of (a seeded sample of) the training images, resized."""
    rng = random.Random(seed)
    chosen = samples if len(samples) <= limit else rng.sample(samples, limit)
    plain = _transforms(size, None, None, train=False, augment=False, flip=False)
    stack = torch.stack([plain(decode(s, channels)) for s in chosen])
    mean = stack.mean(dim=(0, 2, 3))
    std = stack.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


# ----------------------------------------------------------------------------- helpers


def pick_device(name: str) -> torch.device:
    if name != "auto":
        try:
            device = torch.device(name)
        except RuntimeError:
            raise TrainError(f"unknown device {name!r}: auto, cpu, cuda, cuda:N or mps") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise TrainError("--device cuda was asked for, but PyTorch sees no CUDA GPU")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_dtype(precision: str, device: torch.device):
    """The autocast dtype, or None for plain fp32. bf16 is the default on CUDA only."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[precision]


def random_states(generator: torch.Generator) -> dict:
    """Every random state a resumed run needs to continue exactly (weights-only loadable)."""
    version, internal, gauss = random.getstate()
    states = {"python": [version, list(internal), gauss], "numpy": _numpy_state(),
              "torch": torch.get_rng_state(), "loader": generator.get_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _numpy_state():
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]


def restore_random_states(states: dict, generator: torch.Generator) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(states["torch"])
    generator.set_state(states["loader"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _unwrap(model: nn.Module) -> nn.Module:
    model = getattr(model, "_orig_mod", model)  # torch.compile's wrapper
    return getattr(model, "module", model)  # DistributedDataParallel's


def make_schedule(optimizer, config: TrainConfig, steps_per_epoch: int):
    total = max(config.epochs * steps_per_epoch, 1)
    warmup = int(config.warmup_epochs * steps_per_epoch)
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total)
    if config.schedule == "step":
        step = max(config.step_size * steps_per_epoch, 1)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: config.gamma ** (s // step))
    if config.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)

    def cosine(s):
        if s < warmup:
            return (s + 1) / warmup
        progress = (s - warmup) / max(total - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)


def evaluate(model, loader, device, loss_fn, num_classes: int, amp=None,
             stop: StopRequest | None = None, world: World | None = None,
             prepare=None) -> dict | None:
    """Loss, top-1, top-5 and the confusion matrix (rows: true class, columns: predicted);
    None when `stop` is requested part-way. With several workers, each evaluates its share
    of the images and the sums are added up over the workers."""
    model.eval()
    total, loss_sum, top1, top5 = 0, 0.0, 0, 0
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    with torch.no_grad():
        for x, y in loader:
            if stop is not None and stop.requested:
                return None
            x, y = x.to(device), y.to(device)
            if prepare is not None:  # uint8 images, resized and normalised on the device
                x = prepare(x)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                out = model(x)
            out = out.float()
            loss_sum += float(loss_fn(out, y)) * len(y)
            k = min(5, out.shape[1])
            best = out.topk(k, dim=1).indices
            top1 += int((best[:, 0] == y).sum())
            top5 += int((best == y[:, None]).any(dim=1).sum())
            total += len(y)
            confusion += torch.bincount(y.cpu() * num_classes + best[:, 0].cpu(),
                                        minlength=num_classes ** 2).view(num_classes, num_classes)
    if world is not None and world.several:
        sums = torch.cat([torch.tensor([loss_sum, top1, top5, total], dtype=torch.float64),
                          confusion.flatten().double()]).to(device)
        sums = world.sum_(sums).cpu()
        loss_sum, top1, top5, total = float(sums[0]), int(sums[1]), int(sums[2]), int(sums[3])
        confusion = sums[4:].round().long().view(num_classes, num_classes)
    nan = float("nan")
    return {"loss": loss_sum / total if total else nan, "acc": top1 / total if total else nan,
            "top5": top5 / total if total else nan, "confusion": confusion, "count": total}


# ----------------------------------------------------------------------------- the run


@dataclass
class _Setup:
    network: object
    data: DataSet
    run: Path
    model: nn.Module
    optimizer: object
    schedule: object
    scaler: object
    loss_fn: object
    train_loader: object
    val_loader: object
    order: ShardedOrder
    generator: torch.Generator
    device: torch.device
    amp: object
    config: TrainConfig
    config_json: dict
    world: World = field(default_factory=World)
    augment: object = None  # GpuAugment when the device crops, flips and normalises
    epoch_order: object = None  # the loader's random state at the start of the current epoch


@dataclass
class _Position:
    """Where a run stands: the next epoch, the batches of it already done (after Ctrl-C), the
    metrics of the finished epochs and the best validation accuracy so far."""

    epoch: int = 1
    step: int = 0
    rows: list = field(default_factory=list)
    best: float = -1.0
    partial: dict = field(default_factory=lambda: {"seen": 0, "loss_sum": 0.0, "correct": 0,
                                                   "seconds": 0.0})


def train(spec_path: str | Path, dataset: str, config: TrainConfig | None = None, *,
          params: dict | None = None, out: str | None = None, exist_ok: bool = False,
          log=None) -> Path:
    """Train a spec on a data set; return the run folder. Raises TrainError, DataError or
    SpecError (with diagnostics) for problems found before training starts, TrainError for a
    run that cannot go on, and Interrupted (a TrainError) after Ctrl-C."""
    config = (config or TrainConfig()).resolved()
    world = _join(config)
    log = _logger(config, log, world)
    setup = _prepared(world, Path(spec_path), dataset, config, dict(params or {}), out,
                      exist_ok, log)
    run = _run(setup, _Position(), None, log=log)
    world.leave()
    return run


def _join(config: TrainConfig) -> World:
    try:
        return join(config.device)
    except TrainError as exc:
        raise on_every_worker(exc) from None


def _prepared(world: World, *args, **kwargs) -> "_Setup":
    """_prepare; its errors (spec, data, options) are the same on every worker."""
    from ..diagnostics import SpecError

    try:
        return _prepare(*args, **kwargs, world=world)
    except (TrainError, DataError, SpecError) as exc:
        raise on_every_worker(exc) from None


def resume(run_dir: str | Path, epochs: int | None = None, log=None) -> Path:
    """Continue a run where it stopped (after its last finished epoch, or the step where
    Ctrl-C stopped it); with a fixed seed it ends as an uninterrupted run. A run stopped
    before its first epoch finished is trained from the start."""
    run = Path(run_dir)
    saved = read_config(run)
    remove_temporaries(run, RUN_FILES | {saved["spec"]})
    state_path = run / "resume.pt"
    state = read_resume_state(state_path) if state_path.is_file() else None
    for name in ("best.safetensors", "last.safetensors"):
        _check_weights_file(run / name)
    config = TrainConfig.from_dict(saved["options"])
    if epochs is not None:
        config.epochs = epochs
    world = _join(config)
    trained_by = (saved.get("distributed") or {}).get("world_size", 1)
    if trained_by != world.size:
        raise on_every_worker(TrainError(
            f"{run} was trained by {trained_by} worker(s) and this is {world.size}; resume it "
            f"with as many, so that it goes on exactly: `{resume_command(run)}`"))
    log_fn = _logger(config, log, world)
    spec = run / saved["spec"]
    dataset = saved["dataset_arg"]
    if not Path(dataset).exists() and isinstance(saved.get("dataset_path"), str):
        dataset = saved["dataset_path"]  # resumed from another folder than it was started in
    setup = _prepared(world, spec, dataset, config, dict(saved["parameters"]), str(run), True,
                      log_fn, saved=saved)
    if state is None:
        log_fn(f"{run} has no resume.pt (no epoch had finished): training it from the start")
        run = _run(setup, _Position(), None, log=log_fn)
        world.leave()
        return run
    position = _restore(setup, state, state_path)
    if not (run / "best.safetensors").is_file() and position.rows:
        log_fn(f"warning: {run / 'best.safetensors'} is missing; the best weights from now on "
               "will be kept there")
        position.best = -1.0
    done = f"epoch {state['epoch']}" + (f" and {position.step} step(s) of epoch {position.epoch}"
                                        if "step" in state else "")
    log_fn(f"resuming {run} after {done} of {config.epochs}")
    run = _run(setup, position, state.get("health"), log=log_fn)
    world.leave()
    return run


def _check_weights_file(path: Path) -> None:
    """Refuse to go on beside a damaged best or last checkpoint: the run would keep it."""
    from ..checkpoints import CheckpointError, read_state

    if not path.exists():
        return
    try:
        read_state(path)
    except CheckpointError as exc:
        raise TrainError(f"{exc}. The resumed run would keep it: delete it (the run writes it "
                         f"again), then run `{resume_command(path.parent)}`") from None


def _restore(s: _Setup, state: dict, path: Path) -> _Position:
    from ..checkpoints import CheckpointError, fit_state

    try:
        fit_state(s.network, _unwrap(s.model), state["model"], f"the resume state {path}")
        s.optimizer.load_state_dict(state["optimizer"])
        s.schedule.load_state_dict(state["schedule"])
        if s.scaler is not None and state.get("scaler"):
            s.scaler.load_state_dict(state["scaler"])
        ranks = state.get("random_ranks")
        restore_random_states(ranks[s.world.rank] if ranks else state["random"], s.generator)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - a resume.pt that does not fit is refused, not run
        raise TrainError(f"{path} does not fit this run ({type(exc).__name__}: "
                         f"{(str(exc).splitlines() or [''])[0][:160]}); it was changed after "
                         "the run wrote it. To train the run again from the start, delete it "
                         f"and run `{resume_command(path.parent)}`") from None
    position = _Position(epoch=state["epoch"] + 1, rows=state["rows"], best=state["best"])
    if "step" in state:
        position.step = state["step"]
        position.partial = {**position.partial, **state["partial"]}
    return position


def _logger(config: TrainConfig, log, world: World | None = None):
    """Progress lines to stdout (none with --quiet); warnings always, to stderr. Of several
    workers, rank 0 alone says anything."""
    if world is not None and not world.main:
        return lambda line: None
    if log is not None:
        return log

    def emit(line: str) -> None:
        if line.startswith("warning:"):
            print(line, file=sys.stderr, flush=True)
        elif not config.quiet:
            print(line, flush=True)

    return emit


def _prepare(spec_path: Path, dataset: str, config: TrainConfig, params: dict, out, exist_ok,
             log, saved: dict | None = None, world: World | None = None) -> _Setup:
    from ..network import load

    log = _logger(config, log)
    probe = load(spec_path, **params)
    channels = probe.input_shape[0] if len(probe.input_shape) == 3 else 3
    if len(probe.input_shape) != 3:
        raise TrainError(f"{spec_path} takes a vector of {probe.input_shape[0]} features; images "
                         "need an `input CxHxW` line")
    if channels not in (1, 3):
        raise TrainError(f"the spec's input has {channels} channels; images give 1 or 3")
    data = load_dataset(dataset, config.val_split, config.seed, channels)
    if saved is not None and data.classes != saved["classes"]:
        raise DataError(f"{dataset} now has the classes {data.classes[:5]}…, the run was "
                        f"trained on {saved['classes'][:5]}…")
    if len(data.classes) < 2:
        raise DataError(f"{data.source} has a single class, {data.classes[0]!r}; classification "
                        "needs at least two: add a folder of images for each other class")
    if "num_classes" in probe.arch_params and "num_classes" not in params:
        params["num_classes"] = len(data.classes)
    network = load(spec_path, **params) if params else probe
    if network.output_shape != (len(data.classes),):
        raise TrainError(
            f"{spec_path}'s last layer gives {'x'.join(map(str, network.output_shape))} outputs, "
            f"but {data.source} has {len(data.classes)} classes; end the spec with "
            f"`linear {len(data.classes)}`, or `linear num_classes` with an `arch` parameter "
            "num_classes, which archdsl sets from the data")
    _warn_about_data(data, log)
    if config.optimizer not in ("sgd", "adamw"):
        raise TrainError(f"unknown optimizer {config.optimizer!r}: sgd or adamw")
    world = world or World()
    if config.batch_size % world.size:
        fits = max(config.batch_size // world.size, 1) * world.size
        raise TrainError(f"--batch-size {config.batch_size} is the global batch, split evenly "
                         f"over the {world.size} workers; it is not a multiple of {world.size} "
                         f"(try --batch-size {fits})")
    if len(data.train) < world.size:
        raise TrainError(f"{data.source} has {len(data.train)} training image(s), fewer than "
                         f"the {world.size} workers")

    device = pick_device(config.device)
    if world.several and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
    if config.sync_bn and device.type != "cuda":
        raise TrainError("--sync-bn needs CUDA GPUs (PyTorch's SyncBatchNorm runs on them "
                         "only); leave it out to train on the CPU")
    amp = autocast_dtype(config.precision, device)
    if amp is not None and device.type == "mps":
        amp = None
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed)
    size = tuple(network.input_shape[1:])
    if saved is not None:
        mean, std = saved["normalisation"]["mean"], saved["normalisation"]["std"]
    else:
        mean, std = normalisation(data.train, channels, size, seed=config.seed)
    flip = not data.source.startswith("digits")  # a mirrored digit is another symbol
    train_set, val_set, augment = _datasets(data, channels, size, mean, std, flip, config,
                                            device, world)
    generator = torch.Generator().manual_seed(config.seed)
    per_worker = config.batch_size // world.size
    order = ShardedOrder(len(train_set), generator, config.batch_size, world.rank, world.size)
    pin = device.type == "cuda"
    train_loader = torch.utils.data.DataLoader(
        train_set, batch_size=per_worker, sampler=order, generator=generator,
        num_workers=config.workers, pin_memory=pin, persistent_workers=config.workers > 0)
    if world.several:  # each worker validates every world.size-th image; the sums are added
        val_set = torch.utils.data.Subset(val_set, range(world.rank, len(val_set), world.size))
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=per_worker,
                                             num_workers=config.workers, pin_memory=pin)

    needed = checkpoint_bytes(4 * network.params, config.optimizer)
    run = make_run_folder(spec_path, network.name, out, exist_ok, needed) if world.main else None
    run = world.from_main(run)  # rank 0 chose and made the folder; the others never write
    model = network.to_torch().to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
    if world.several:
        if config.sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
        # the same weights everywhere (DDP copied rank 0's); from here each worker draws its
        # own augmentation and dropout
        torch.manual_seed(config.seed + world.rank)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum,
                                    nesterov=config.nesterov)
    else:
        optimizer = torch.optim.AdamW(groups, lr=config.lr)
    schedule = make_schedule(optimizer, config, max(len(train_loader), 1))
    scaler = torch.amp.GradScaler(device.type) if amp == torch.float16 else None
    if config.compile:
        model = torch.compile(model)
    config_json = saved or {
        "spec": spec_path.name, "arch": network.name, "parameters": network.arch_params,
        "dataset": data.source, "dataset_arg": str(dataset),
        "dataset_path": str(Path(dataset).resolve()) if Path(dataset).exists() else None,
        "classes": data.classes,
        "split": data.split, "train_images": len(data.train), "val_images": len(data.val),
        "skipped": [p for p, _ in data.skipped], "input": list(network.input_shape),
        "normalisation": {"mean": mean, "std": std}, "device": str(device),
        "precision": str(amp).replace("torch.", "") if amp else "fp32",
        "distributed": ({"world_size": world.size, "nproc_per_node": world.local_size,
                         "nnodes": world.nodes, "backend": world.backend,
                         "batch_per_worker": per_worker} if world.several else None),
        "options": asdict(config),
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                     "torchvision": __import__("torchvision").__version__,
                     "archdsl": __import__("archdsl").__version__},
    }
    config_json["options"] = asdict(config)
    try:
        if world.main and saved is None and \
                spec_path.resolve() != (run / spec_path.name).resolve():
            spec_text = spec_path.read_bytes()
            atomic_write(run / spec_path.name, lambda tmp: Path(tmp).write_bytes(spec_text))
        if world.main:  # the run exists from here
            atomic_write(run / "config.json", json_writer(config_json))
    except WriteError as exc:
        raise write_error(exc, "no training was done; free some space or fix the folder's "
                               "permissions, then run the command again") from None
    return _Setup(network, data, run, model, optimizer, schedule, scaler,
                  nn.CrossEntropyLoss(label_smoothing=config.label_smoothing), train_loader,
                  val_loader, order, generator, device, amp, config, config_json, world,
                  augment)


def stored_size(size) -> tuple[int, int]:
    """The size images are kept at (cache) or sent to the device at (augment on the GPU):
    8/7 of the input, as 256 is to 224, for random crops to take from."""
    return tuple(max(int(round(v * 8 / 7)), v) for v in size)


def _datasets(data: DataSet, channels: int, size, mean, std, flip: bool, config: TrainConfig,
              device, world: World):
    """The training and validation sets, and the GpuAugment when the device does the crops.

    Decoding and augmenting on the CPU (the default there): each image is decoded, cropped,
    resized and normalised by torchvision's transforms in the loader. `cache`: every image is
    decoded once, resized to stored_size, into memory or a memory-mapped file, and later
    epochs read pixels. `augment_on gpu` (the default on CUDA): the loader sends uint8 images
    at stored_size and the device crops, flips and normalises whole batches (GpuAugment)."""
    from .pipeline import CachedImages, GpuAugment

    if config.cache not in ("none", "memory", "disk"):
        raise TrainError(f"unknown --cache {config.cache!r}: none, memory or disk")
    if config.augment_on not in ("auto", "cpu", "gpu"):
        raise TrainError(f"unknown --augment-on {config.augment_on!r}: auto, cpu or gpu")
    on_device = config.augment_on == "gpu" or (config.augment_on == "auto"
                                               and device.type == "cuda")
    kept = stored_size(size) if on_device or config.cache != "none" else size
    if on_device:  # the loader only decodes and resizes (a cache has done that already)
        from torchvision.transforms import v2

        train_tf = val_tf = v2.Compose([v2.Resize(kept, antialias=True), v2.PILToTensor()])
    else:
        train_tf = _transforms(size, mean, std, True, config.augment, flip)
        val_tf = _transforms(size, mean, std, False, False, False)
    if config.cache == "none":
        train_set = ImageSet(data.train, channels, train_tf)
        val_set = ImageSet(data.val, channels, val_tf)
    else:
        folder = Path(config.cache_dir or Path.home() / ".cache" / "archdsl")
        if config.cache == "disk" and world.local_rank == 0:
            folder.mkdir(parents=True, exist_ok=True)
        sets = []
        for samples in (data.train, data.val):
            if config.cache == "disk" and world.local_rank != 0:
                world.any(False, device)  # local rank 0 writes the cache first
            cached = CachedImages(samples, channels, kept, where=config.cache, folder=folder)
            if config.cache == "disk" and world.local_rank == 0:
                world.any(False, device)
            sets.append(cached)
        train_set, val_set = sets
        if not on_device:
            train_set, val_set = _Transformed(train_set, train_tf), _Transformed(val_set, val_tf)
    augment = None
    if on_device:
        # (with --no-augment it stays in eval mode: a plain resize, as on the CPU)
        augment = GpuAugment(size, mean, std, flip=flip,
                             channels_last=device.type == "cuda").to(device)
    return train_set, val_set, augment


class _Transformed(torch.utils.data.Dataset):
    """Cached uint8 images through the CPU transforms."""

    def __init__(self, cached, transform):
        self.cached, self.transform = cached, transform

    def __len__(self):
        return len(self.cached)

    def __getitem__(self, i):
        image, label = self.cached[i]
        return self.transform(image), label


def _warn_about_data(data: DataSet, log) -> None:
    if data.skipped:
        shown = ", ".join(f"{p} ({why})" for p, why in data.skipped[:3])
        log(f"warning: skipped {len(data.skipped)} file(s) that are not readable images: {shown}"
            + (" … (config.json lists them all)" if len(data.skipped) > 3 else ""))
    if data.empty_classes:
        log(f"warning: left out {len(data.empty_classes)} class folder(s) with no usable image: "
            + ", ".join(repr(c) for c in data.empty_classes[:5])
            + (" …" if len(data.empty_classes) > 5 else ""))
    if not data.val:
        log("warning: there are no validation images, so best.safetensors will hold the last "
            "epoch's weights; add a val/ folder or a --val-split above 0 to measure accuracy")


def _run(s: _Setup, at: _Position, health_state: dict | None, log) -> Path:
    config, model, device, run = s.config, s.model, s.device, s.run
    network, amp = s.network, s.amp
    if at.epoch == 1 and at.step == 0:
        log(f"training {network.name} ({network.params:,} params) on {s.data.source}: "
            f"{len(s.data.train)} train / {len(s.data.val)} val images, {len(s.data.classes)} "
            f"classes, {device}{', ' + str(amp).replace('torch.', '') if amp else ''}; "
            f"run folder {run}")
    world = s.world
    health = GradientHealth(network, _unwrap(model))
    if health_state and health_state.get("sums") is not None:
        health.sums, health.steps = health_state["sums"].to(device), health_state["steps"]
    writer = _tensorboard(run) if config.tensorboard and world.main else None
    saved_at = at.epoch - 1  # the epoch of the checkpoint on disk
    try:
        # torchrun passes Ctrl-C on to its workers: a second SIGINT right after the first is
        # that, not a second press
        with StopRequest(grace=2.0 if world.several else 0.0, announce=world.main) as stop:
            for epoch in range(at.epoch, config.epochs + 1):
                row, confusion = _epoch(s, epoch, at, health, stop)
                if row is None:  # Ctrl-C: save where the epoch stands, then stop
                    _save_part(s, epoch, at, health)
                    raise on_every_worker(Interrupted(
                        f"interrupted in epoch {epoch} after step {at.step} of "
                        f"{len(s.train_loader)}; the run is saved. Continue it with: "
                        f"{resume_command(run)}"))
                at.rows.append(row)
                for warning in health.end_epoch():  # gradients are the same on every worker
                    log(f"warning: {warning}")
                improved = not s.data.val or row["val_acc"] > at.best
                if improved:
                    at.best = row["val_acc"] if s.data.val else -1.0
                _checkpoint(s, epoch, at.rows, at.best, improved, confusion)
                saved_at = epoch
                at.step, at.partial = 0, _Position().partial
                if writer is not None:
                    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "val_top5",
                                "lr"):
                        writer.add_scalar(key, row[key], epoch)
                    writer.flush()
                log(f"epoch {epoch}/{config.epochs}  train loss {row['train_loss']:.4f} "
                    f"acc {row['train_acc']:.1%}  val loss {row['val_loss']:.4f} "
                    f"acc {row['val_acc']:.1%} top5 {row['val_top5']:.1%}  lr {row['lr']:.3g}  "
                    f"{row['images_per_s']:.0f} img/s  {row['seconds']:.1f} s")
                if world.any(stop.requested, device) and epoch < config.epochs:
                    raise on_every_worker(Interrupted(
                        f"interrupted after epoch {epoch}; the run is saved. Continue it with: "
                        f"{resume_command(run)}"))
    except KeyboardInterrupt:
        kept = (f"the checkpoint of epoch {saved_at} is intact" if saved_at
                else "no epoch had finished")
        raise Interrupted(f"interrupted again before the run was saved; {kept} and nothing is "
                          f"half-written. Continue it with: {resume_command(run)}") from None
    except WriteError as exc:
        kept = (f"the checkpoint of epoch {saved_at} is intact" if saved_at
                else "no epoch had finished")
        raise write_error(exc, f"{kept}. Free some space (or fix the folder's permissions), "
                               f"then continue with: {resume_command(run)}") from None
    except DataError as exc:  # an image that went missing or bad, in training or validation
        kept = (f"the checkpoint of epoch {saved_at} is intact" if saved_at
                else "no epoch had finished")
        raise DataError(f"{_last_line(str(exc))} The run stopped; {kept}. Put the file back (or remove it and "
                        f"start a new run), then continue with: {resume_command(run)}") from None
    finally:
        if writer is not None:
            writer.close()
    if not s.data.val:
        log(f"no validation images; the last weights are in {run / 'best.safetensors'}")
    else:
        log(f"best val accuracy {at.best:.1%}; weights in {run / 'best.safetensors'}")
    return run


def _epoch(s: _Setup, epoch: int, at: _Position, health: GradientHealth, stop: StopRequest):
    """Train one epoch (from step `at.step`) and validate it: the metrics row and confusion
    matrix, or (None, None) when Ctrl-C stopped it; `at` then says where it stood."""
    config, model, device, amp = s.config, s.model, s.device, s.amp
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    world = s.world
    model.train()
    total = len(s.train_loader)
    progress = Progress(f"epoch {epoch}/{config.epochs}", total,
                        quiet=config.quiet or not world.main)
    progress.done = at.step
    epoch_order = s.generator.get_state()  # the shuffle of this epoch, for a resumed part
    s.order.skip = at.step * config.batch_size
    part = at.partial
    start = time.perf_counter() - part["seconds"]
    params = [p for p in model.parameters() if p.requires_grad]
    batches = iter(s.train_loader)  # draws the epoch's shuffle even when no batch is left
    stopping = world.any(stop.requested, device)  # every worker stops at the same step
    while True:
        # several workers stop where they agreed (the next step's sums carry Ctrl-C); one
        # process stops as soon as Ctrl-C came
        stopping = stopping or (stop.requested and not world.several)
        if stopping:
            break
        try:
            x, y = next(batches)
        except StopIteration:
            break
        if s.augment is not None:  # uint8 images: crop, flip, normalise on the device
            x = s.augment.train(config.augment)(x.to(device, non_blocking=True))
        else:
            x = x.to(device, non_blocking=True, memory_format=fmt)
        y = y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            out = model(x)
            loss = s.loss_fn(out.float(), y)
        s.optimizer.zero_grad(set_to_none=True)
        if s.scaler is not None:
            s.scaler.scale(loss).backward()
            s.scaler.unscale_(s.optimizer)
        else:
            loss.backward()
        health.record()
        # one sum over the workers and one sync per step: the loss and accuracy sums, whether
        # the gradients (the same on every worker, DDP averaged them) are finite, and Ctrl-C
        grads = [p.grad for p in params if p.grad is not None]
        grads_ok = (torch.isfinite(torch.stack(torch._foreach_norm(grads))).all().float()
                    if s.scaler is None and grads  # fp16's scaler skips non-finite steps itself
                    else torch.ones((), device=loss.device))
        sums = torch.stack([loss.detach().float() * len(y), (out.argmax(1) == y).sum().float(),
                            torch.full((), float(len(y)), device=loss.device), grads_ok,
                            torch.full((), float(stop.requested), device=loss.device)])
        loss_sum, correct, seen, grads_ok, stops = world.sum_(sums).tolist()
        if not (math.isfinite(loss_sum) and grads_ok == world.size):
            _stop_non_finite(s, x, epoch, at.step + 1, loss_sum / max(seen, 1))
        if config.clip_grad:
            nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
        if s.scaler is not None:
            s.scaler.step(s.optimizer)
            s.scaler.update()
        else:
            s.optimizer.step()
        s.schedule.step()
        at.step += 1
        part["seen"] += int(seen)
        part["loss_sum"] += loss_sum
        part["correct"] += int(correct)
        part["seconds"] = time.perf_counter() - start
        stopping = stops > 0
        progress.update(loss=part["loss_sum"] / part["seen"], acc=part["correct"] / part["seen"],
                        rate=part["seen"] / max(part["seconds"], 1e-9))
    progress.close()
    s.order.skip = 0
    s.epoch_order = epoch_order
    if stopping:
        return None, None
    seconds = time.perf_counter() - start
    # several workers validate to the end (they must agree on where they stop); one alone
    # stops at Ctrl-C
    val = evaluate(model, s.val_loader, device, s.loss_fn, len(s.data.classes), amp,
                   stop=None if world.several else stop, world=world,
                   prepare=s.augment.eval() if s.augment is not None else None)
    if val is None:
        return None, None
    seen = part["seen"]
    row = {"epoch": epoch, "train_loss": round(part["loss_sum"] / max(seen, 1), 6),
           "train_acc": round(part["correct"] / max(seen, 1), 6), "val_loss": round(val["loss"], 6),
           "val_acc": round(val["acc"], 6), "val_top5": round(val["top5"], 6),
           "lr": round(s.optimizer.param_groups[0]["lr"], 8),
           "images_per_s": round(seen / max(seconds, 1e-9), 1), "seconds": round(seconds, 3)}
    return row, val["confusion"]


def _last_line(message: str) -> str:
    """The message of an exception re-raised from a data-loader worker, without the worker's
    traceback that torch puts into it."""
    if "Original Traceback" not in message:
        return message
    return message.strip().splitlines()[-1].split(": ", 1)[-1]


def _state(s: _Setup, epoch: int, rows: list, best: float, loader_state=None) -> dict | None:
    """What resume.pt holds; None on workers other than rank 0, which only hand it their
    random states (every worker must call this)."""
    mine = random_states(s.generator)
    if loader_state is not None:
        mine["loader"] = loader_state
    ranks = s.world.gather(mine)
    if not s.world.main:
        return None
    state = {
        "epoch": epoch, "rows": rows, "best": best,
        "model": {k: v.detach().cpu() for k, v in _unwrap(s.model).state_dict().items()},
        "optimizer": s.optimizer.state_dict(), "schedule": s.schedule.state_dict(),
        "scaler": s.scaler.state_dict() if s.scaler is not None else {},
        "random": mine,
    }
    if s.world.several:
        state["random_ranks"] = ranks
    return state


def _checkpoint(s: _Setup, epoch: int, rows: list, best: float, improved: bool,
                confusion) -> None:
    """Everything of one epoch, written as one (renamed into place together, resume.pt last)."""
    from .plots import confusion_png, curves_png

    run = s.run
    state = _state(s, epoch, rows, best)
    if state is None:
        return  # rank 0 writes
    weights = _unwrap(s.model).state_dict()
    with atomic_batch() as write:
        write(run / "metrics.csv", metrics_writer(rows))
        write(run / "last.safetensors", weights_writer(weights))
        if improved:
            write(run / "best.safetensors", weights_writer(weights))
            confusion_png(run / "confusion.png", confusion, s.data.classes,
                          title=f"validation, epoch {epoch}", write=write)
        curves_png(run / "curves.png", rows, write=write)
        write(run / "resume.pt", lambda tmp: torch.save(state, tmp))


def _save_part(s: _Setup, epoch: int, at: _Position, health: GradientHealth) -> None:
    """resume.pt for an epoch stopped part-way: the finished epochs, the steps done of this
    one, its shuffle and running sums, so that --resume goes on with the next batch."""
    state = _state(s, epoch - 1, at.rows, at.best, loader_state=s.epoch_order)
    if state is None:
        return  # rank 0 writes
    state.update(step=at.step, partial=dict(at.partial),
                 health={"sums": health.sums, "steps": health.steps})
    with atomic_batch() as write:
        write(s.run / "resume.pt", lambda tmp: torch.save(state, tmp))


def _stop_non_finite(s: _Setup, x, epoch: int, step: int, value: float) -> None:
    """Stop at a non-finite loss (naming the first layer whose output is not finite) or
    gradient (naming the parameter where it entered), keeping the last checkpoint."""
    kept = (f"the last good checkpoint (epoch {epoch - 1}) is kept in {s.run}"
            if (s.run / "last.safetensors").exists()
            else "no epoch had finished, so no weights were kept")
    if math.isfinite(value):
        at = first_non_finite_gradient(s.network, _unwrap(s.model))
        what, where = f"the gradients became non-finite{at} (the loss was {value:.4g})", ""
    else:
        what = f"the loss became {value}"
        # SyncBatchNorm's forward pass would wait for the other workers
        where = ("" if s.config.sync_bn else
                 first_non_finite_layer(s.network, _unwrap(s.model), x))
    raise on_every_worker(TrainError(
        f"{what} in epoch {epoch}, step {step}{where}; {kept}. Lower the learning rate "
        "(--lr), clip gradients (--clip-grad 1.0), or add normalisation (`bn`) to the spec"))


def _tensorboard(run: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise TrainError("--tensorboard needs the tensorboard package: pip install tensorboard "
                         "(or install archdsl with its [tensorboard] extra)") from None
    return SummaryWriter(str(run / "tensorboard"))


# ----------------------------------------------------------------------------- eval, predict


def load_run(run_dir: str | Path, weights: str = "best"):
    """The compiled model of a finished run with its weights, and its config.json."""
    from ..checkpoints import fit_state, read_state
    from ..network import load

    run = Path(run_dir)
    saved = read_config(run)
    network = load(run / saved["spec"], **saved["parameters"])
    if network.output_shape != (len(saved["classes"]),) or \
            list(network.input_shape) != saved["input"]:
        raise TrainError(f"{run / 'config.json'} does not match the run's spec (its classes or "
                         "input shape were changed); it cannot be used")
    model = network.to_torch().eval()
    path = Path(weights) if weights not in ("best", "last") else run / f"{weights}.safetensors"
    fit_state(network, model, read_state(path), f"the checkpoint {path}")
    return network, model, saved


def evaluate_run(run_dir, dataset: str, weights: str = "best", batch_size: int = 64) -> dict:
    """Loss, top-1, top-5, per-class accuracy and confusion matrix of a run on a data set:
    its val/ (or test/) folder, every image of a class folder, or the run's own split of
    the built-in digits."""
    network, model, saved = load_run(run_dir, weights)
    channels = saved["input"][0]
    data = load_dataset(dataset, saved["options"].get("val_split", 0.1),
                        saved["options"].get("seed", 0), channels)
    if data.split == "val_split" and not data.source.startswith("digits"):
        samples = data.train + data.val  # a class folder given to eval is a test set
    else:
        samples = data.val
    index = {c: i for i, c in enumerate(saved["classes"])}
    unknown = [c for c in data.classes if c not in index]
    if unknown:
        raise DataError(f"{dataset} has classes the run never saw: {', '.join(unknown[:5])}")
    for smp in samples:
        smp.label = index[data.classes[smp.label]]
    loader = torch.utils.data.DataLoader(ImageSet(samples, channels, eval_transform(saved)),
                                         batch_size=batch_size)
    result = evaluate(model, loader, torch.device("cpu"), nn.CrossEntropyLoss(),
                      len(saved["classes"]))
    confusion = result["confusion"]
    per_class = {}
    for i, name in enumerate(saved["classes"]):
        n = int(confusion[i].sum())
        per_class[name] = {"images": n, "acc": (int(confusion[i, i]) / n) if n else None}
    result.update(per_class=per_class, classes=saved["classes"], skipped=data.skipped)
    return result


def predict(run_dir, images: list[str], top: int = 5, weights: str = "best"):
    """For each image: the top classes with their softmax probabilities."""
    _, model, saved = load_run(run_dir, weights)
    transform = eval_transform(saved)
    results = []
    for path in images:
        try:
            x = transform(decode(Sample(0, path=Path(path)), saved["input"][0]))[None]
        except Exception as exc:  # noqa: BLE001 - one unreadable image does not stop the rest
            reason = unreadable(exc, Path(path))
            results.append((path, None, f"cannot read it as an image ({reason})"))
            continue
        with torch.no_grad():
            probs = torch.softmax(model(x).float(), dim=1)[0]
        k = min(top, len(probs))
        values, indices = probs.topk(k)
        results.append((path, [(saved["classes"][int(i)], float(v))
                               for v, i in zip(values, indices)], None))
    return results


__all__ = ["train", "resume", "evaluate_run", "predict", "TrainConfig", "TrainError",
           "DataError", "stratified_split"]
