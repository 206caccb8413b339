"""Everything a run needs before its first step: the spec compiled for the data, the loaders,
the model on its device, the optimizer and schedule, and the run folder with config.json.
Errors found here (spec, data, options) are the same on every worker.

A run's seeds and cudnn flags are set on torch for the whole process; `run_scope` puts them
back as they were when the run ends, so that training twice in one process (or from a
notebook) leaves the process as it found it.
"""

from __future__ import annotations

import random
import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..files import WriteError, atomic_write
from .batches import EpochPlan, plan_epoch
from .config import TrainConfig
from .data import DataError, DataSet, changes_since, fingerprint
from .table_data import load_dataset
from .distributed import World, join
from .errors import TrainError, TrainUsageError, on_every_worker
from .images import Seeded, ShardedOrder, datasets, loader_workers, normalisation, torch_threads
from .run_folder import (checkpoint_bytes, json_writer, make_run_folder, spec_copy_name,
                         write_error)
from .task import Classification, task_of


@dataclass
class Setup:
    """A prepared run: what the epoch loop, the checkpoints and resume work with."""

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
    frozen: list = field(default_factory=list)  # module paths --freeze holds still
    mix: object = None  # --mixup/--cutmix: (images, labels) -> (images, soft labels)
    ema: object = None  # --ema: torch.optim.swa_utils.AveragedModel of the network
    epoch_order: object = None  # the loader's random state at the start of the current epoch
    plan: EpochPlan | None = None  # the batches of an epoch
    task: Classification = field(default_factory=Classification)  # or Segmentation


@contextmanager
def run_scope():
    """Put back, when the run ends however it ends, what it sets for the whole process:
    the random states of torch (and CUDA, if it was in use already), Python and numpy,
    cudnn's benchmark and deterministic flags, and torch's thread counts."""
    cudnn = torch.backends.cudnn
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    saved = (torch.get_rng_state(), torch.cuda.get_rng_state_all() if cuda else None,
             random.getstate(), np.random.get_state(), cudnn.benchmark, cudnn.deterministic,
             torch.get_num_threads())
    try:
        yield
    finally:
        cpu, gpus, python, numpy, benchmark, deterministic, threads = saved
        torch.set_rng_state(cpu)
        if gpus is not None:
            torch.cuda.set_rng_state_all(gpus)
        random.setstate(python)
        np.random.set_state(numpy)
        cudnn.benchmark, cudnn.deterministic = benchmark, deterministic
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def unwrap(model: nn.Module) -> nn.Module:
    """The compiled network inside torch.compile's and DistributedDataParallel's wrappers."""
    model = getattr(model, "_orig_mod", model)  # torch.compile's wrapper
    return getattr(model, "module", model)  # DistributedDataParallel's


def pick_device(name: str) -> torch.device:
    """The device `--device NAME` means; auto is CUDA, then MPS, then the CPU."""
    if name != "auto":
        from .config import device_problem

        problem = device_problem(name)
        if problem:
            raise TrainError(problem)
        return torch.device(name)
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


def make_schedule(optimizer, config: TrainConfig, steps_per_epoch: int):
    """The learning-rate schedule, stepped once per training step."""
    import math

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


def logger(config: TrainConfig, log, world: World | None = None):
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


def join_world(config: TrainConfig) -> World:
    """This process's World; an error joining it is met by every worker alike."""
    try:
        return join(config.device)
    except TrainError as exc:
        raise on_every_worker(exc) from None


def prepared(world: World, *args, **kwargs) -> Setup:
    """prepare; its errors (spec, data, options) are the same on every worker."""
    from ..diagnostics import SpecError

    try:
        return prepare(*args, **kwargs, world=world)
    except (TrainError, DataError, SpecError) as exc:
        raise on_every_worker(exc) from None


def prepare(spec_path: Path, dataset: str, config: TrainConfig, params: dict, out, exist_ok,
            log, saved: dict | None = None, world: World | None = None,
            spec_data: bytes | None = None) -> Setup:
    """Check the options, the spec and the data against each other, then build everything
    the run needs and write its folder's start (the spec's copy and config.json). The spec
    is read once (here, unless the caller gives its bytes): the text compiled is the text
    the run folder keeps."""
    problems = config.problems()
    if problems:
        raise TrainError(problems[0])
    log = logger(config, log)
    world = world or World()
    from ..network import spec_bytes

    if spec_data is None:
        spec_data = spec_bytes(spec_path)
    network, data, channels = _network_and_data(spec_path, spec_data, dataset, config, params,
                                                saved)
    task = task_of(data)
    task.check_options(config)
    _warn_about_data(data, config, log)
    _check_workers(config, data, world)
    device, amp = _device(config, world)
    _seed(config.seed)
    size = tuple(network.input_shape[1:])
    if saved is not None:
        mean, std = saved["normalisation"]["mean"], saved["normalisation"]["std"]
    else:
        mean, std = normalisation(data.train, channels, size, seed=config.seed)
    train_set, val_set, augment = _datasets(task, data, channels, size, mean, std, config,
                                            device, world)
    generator = torch.Generator().manual_seed(config.seed)
    # a run from before the last partial batch could be kept goes on without it (exact resume)
    plan = plan_epoch(len(train_set), config.batch_size, world.size,
                      keep_last=saved is None or "last_batch" in saved)
    order = ShardedOrder(len(train_set), generator, config.batch_size, world.rank, world.size,
                         weights=_balanced(data) if config.sampler == "balanced" else None,
                         last=plan.last)
    train_loader, val_loader = _loaders(train_set, val_set, order, config, device, world, log)
    # the thread count changes the sums' rounding: a resumed run keeps the one it started with
    threads = (saved or {}).get("threads") or torch_threads(
        config.threads, train_loader.num_workers, world.local_size,
        torch_default=torch.get_num_threads())
    torch.set_num_threads(threads)
    # --init from the start: a new run, or one resumed before its first epoch finished
    init = config.init if saved is None or not (Path(out) / "resume.pt").is_file() else None
    model, frozen, init_info = _model(network, config, device, world, spec_path, params, init,
                                      log)
    _check_batch_norm(plan, model, data)
    needed = checkpoint_bytes(4 * network.params, config.optimizer)
    run = make_run_folder(spec_path, network.name, out, exist_ok, needed) if world.main else None
    run = world.from_main(run)  # rank 0 chose and made the folder; the others never write
    optimizer = _optimizer(model, config)
    schedule = make_schedule(optimizer, config, max(len(train_loader), 1))
    scaler = torch.amp.GradScaler(device.type) if amp == torch.float16 else None
    ema = None
    if config.ema is not None:  # before compile: the average is of the plain network
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(unwrap(model), multi_avg_fn=get_ema_multi_avg_fn(config.ema),
                            use_buffers=True)
    if config.compile:
        model = torch.compile(model)
    config_json = saved or _config_json(spec_path, dataset, network, data, config, device, amp,
                                        world, mean, std, task)
    config_json["options"] = asdict(config)
    config_json["threads"], config_json["last_batch"] = threads, plan.last
    if init_info is not None:
        config_json["init"] = init_info
    _write_start(spec_path, spec_data, run, config_json, world, fresh=saved is None)
    return Setup(network, data, run, model, optimizer, schedule, scaler,
                 _loss(config, data, device, log, task), train_loader,
                 val_loader, order, generator, device, amp, config, config_json, world, augment,
                 frozen=frozen, mix=_mixing(config, len(data.classes)), ema=ema, plan=plan,
                 task=task)


def _datasets(task: Classification, data: DataSet, channels: int, size, mean, std,
              config: TrainConfig, device, world: World):
    """The training and validation sets, and the GpuAugment when the device augments: images
    alone (images.datasets), or images with their masks (seg_images.seg_datasets)."""
    flip = not data.source.startswith("digits")  # a mirrored digit is another symbol
    if task.masks:
        from .seg_images import seg_datasets

        return seg_datasets(data, channels, size, mean, std, flip, config, device)
    return datasets(data, channels, size, mean, std, flip, config, device, world)


def _check_batch_norm(plan: EpochPlan, model: nn.Module, data: DataSet) -> None:
    """Refuse batches of one image (on a worker) for a network with batch norm, which has no
    batch statistics then (torch's "Expected more than 1 value per channel"): a training set
    of one image, or --batch-size 1. A last partial batch is never that small
    (batches.plan_epoch)."""
    if plan.smallest >= 2 or not any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                     for m in model.modules()):
        return
    each = " on each worker" if plan.world > 1 else ""
    if plan.whole:
        why, fix = f"{data.source} has {plan.images} training image(s), so", "add images"
    else:
        why, fix = f"--batch-size {plan.batch}:", "give --batch-size 2 or more"
    error = TrainError if plan.whole else TrainUsageError  # the data, or the command line
    raise error(f"{why} a training batch holds one image{each}; the network's batch norm needs "
                f"two or more to compute its statistics: {fix}"
                + (", or use fewer workers" if plan.world > 1 else ""))


def _balanced(data: DataSet) -> torch.Tensor:
    """Each training image's weight for --sampler balanced: one over its class's images, so
    every class is drawn equally often."""
    counts = data.counts()["train"]
    return torch.tensor([1.0 / counts[s.label] for s in data.train], dtype=torch.double)


def _mixing(config: TrainConfig, classes: int):
    """torchvision.transforms.v2's MixUp and/or CutMix for --mixup/--cutmix (one of the two,
    drawn per batch, when both are given), or None. They draw from torch's random state,
    which resume.pt keeps, so a resume stays exact."""
    from torchvision.transforms import v2

    mixes = ([v2.MixUp(alpha=config.mixup, num_classes=classes)] if config.mixup else []) + \
        ([v2.CutMix(alpha=config.cutmix, num_classes=classes)] if config.cutmix else [])
    if not mixes:
        return None
    return mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)


def _loss(config: TrainConfig, data: DataSet, device, log, task: Classification):
    """The training loss: the task's cross-entropy, with --label-smoothing, and with
    --class-weights auto each class weighed by N / (K x its training images, or pixels for
    segmentation), said in one line."""
    if config.class_weights == "none":
        return task.loss(None, config)
    sizes, unit = task.class_sizes(data)
    counts = torch.tensor(sizes, dtype=torch.double)
    weights = counts.sum() / (len(data.classes) * counts.clamp_min(1))
    log("--class-weights auto: " + ", ".join(
        f"{c} {w:.3g} ({int(n):,} {unit})" for c, w, n in zip(data.classes, weights.tolist(),
                                                             counts.tolist())))
    return task.loss(weights.float().to(device), config)


def _network_and_data(spec_path: Path, spec_data: bytes, dataset: str, config: TrainConfig,
                      params: dict, saved: dict | None):
    """The spec compiled with num_classes from the data, the data, and the image channels."""
    from ..network import loads

    probe = loads(spec_data, str(spec_path), **params)
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
    changed = changes_since(saved.get("data_fingerprint"), data) if saved is not None else None
    if changed:
        raise DataError(changed)
    if len(data.classes) < 2:
        what, fix = (("segmentation", "label pixels of at least two classes in the masks (0 "
                      "is often the background)") if data.task == "segment" else
                     ("classification", "add a folder of images for each other class"))
        raise DataError(f"{data.source} has a single class, {data.classes[0]!r}; {what} "
                        f"needs at least two: {fix}")
    if "num_classes" in probe.arch_params and "num_classes" not in params:
        params["num_classes"] = len(data.classes)
    network = loads(spec_data, str(spec_path), **params) if params else probe
    task_of(data).check_output(network, data, spec_path)
    return network, data, channels


def _warn_about_data(data: DataSet, config: TrainConfig, log) -> None:
    for line in data.warnings:  # a table's repeated rows, paths outside its folder, …
        log(f"warning: {line}")
    if data.skipped:
        shown = ", ".join(f"{p} ({why})" for p, why in data.skipped[:3])
        log(f"warning: skipped {len(data.skipped)} file(s) that are not readable images: {shown}"
            + (" … (config.json lists them all)" if len(data.skipped) > 3 else ""))
    if data.empty_classes:
        log(f"warning: left out {len(data.empty_classes)} class folder(s) with no usable image: "
            + ", ".join(repr(c) for c in data.empty_classes[:5])
            + (" …" if len(data.empty_classes) > 5 else ""))
    if not data.val:
        if data.split == "val_split" and config.val_split > 0:
            fix = (f"--val-split {config.val_split} held out none, as each class has a single "
                   "image (one is kept for training); add images, or a val/ folder")
        else:
            fix = "add a val/ folder or a --val-split above 0"
        log("warning: there are no validation images, so best.safetensors will hold the last "
            f"epoch's weights; to measure accuracy, {fix}")


def _check_workers(config: TrainConfig, data: DataSet, world: World) -> None:
    if config.batch_size % world.size:
        fits = max(config.batch_size // world.size, 1) * world.size
        raise TrainError(f"--batch-size {config.batch_size} is the global batch, split evenly "
                         f"over the {world.size} workers; it is not a multiple of {world.size} "
                         f"(try --batch-size {fits})")
    if not data.train and data.split == "val_split":
        raise TrainError(f"--val-split {config.val_split} held out every image of "
                         f"{data.source} for validation, leaving none to train on; use a "
                         "smaller fraction")
    if not data.train and data.split == "table":
        raise TrainError(f"{data.source} has no training images: every usable row is for "
                         "validation; give the rows to train on the split `train` (or leave "
                         "the split column out, and --val-split holds some out)")
    if len(data.train) < world.size:
        raise TrainError(f"{data.source} has {len(data.train)} training image(s), fewer than "
                         f"the {world.size} workers")


def _device(config: TrainConfig, world: World):
    """The device of this worker and the autocast dtype (None: fp32)."""
    device = pick_device(config.device)
    if world.several and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
    if config.sync_bn and device.type != "cuda":
        raise TrainError("--sync-bn needs CUDA GPUs (PyTorch's SyncBatchNorm runs on them "
                         "only); leave it out to train on the CPU")
    amp = autocast_dtype(config.precision, device)
    if amp is not None and device.type == "mps":
        amp = None
    return device, amp


def _seed(seed: int) -> None:
    """Seed torch, Python and numpy for the run (run_scope puts their states back after)."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def _loaders(train_set, val_set, order: ShardedOrder, config: TrainConfig, device, world: World,
             log):
    per_worker = config.batch_size // world.size
    pin = device.type == "cuda"
    workers, capped = loader_workers(config.workers, -(-len(order) // per_worker),
                                     world.local_size)
    if capped:
        log(capped)
    # the order and each image's seed come from `generator` alone (ShardedOrder): the
    # loader's own draw (its workers' base seed, once per epoch or once for persistent
    # workers) takes from another, so a resumed run's restarted workers change nothing
    train_loader = torch.utils.data.DataLoader(
        Seeded(train_set), batch_size=per_worker, sampler=order,
        generator=torch.Generator().manual_seed(config.seed), num_workers=workers,
        pin_memory=pin, persistent_workers=workers > 0)
    if world.several:  # each worker validates every world.size-th image; the sums are added
        val_set = torch.utils.data.Subset(val_set, range(world.rank, len(val_set), world.size))
    val_workers = min(workers, -(-len(val_set) // per_worker))
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=per_worker,
                                             num_workers=val_workers, pin_memory=pin)
    return train_loader, val_loader


def _model(network, config: TrainConfig, device, world: World, spec_path: Path, params: dict,
           init: str | None, log):
    """The compiled network on its device (started from --init's weights), the module paths
    --freeze holds still (frozen from the start) and --init's summary (None without)."""
    from .transfer import frozen_modules, initialise_from, set_frozen, summary_line

    model = network.to_torch()
    info = initialise_from(model, network, init, spec_path, params) if init else None
    if info is not None:
        log(summary_line(info))
    frozen = frozen_modules(model, config.freeze, network.graph) if config.freeze else []
    if frozen:
        if config.unfreeze_at is not None and world.several:
            raise TrainError("--unfreeze-at with several workers is not supported: "
                             "DistributedDataParallel fixes the trained parameters when it "
                             "starts; train the frozen part with one worker, or leave it out")
        set_frozen(model, frozen, config.unfreeze_at is None or config.unfreeze_at > 1)
        trains = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if not trains:  # a command-line mistake: exit 2
            raise TrainUsageError(f"--freeze {' '.join(config.freeze)} holds every one of the "
                             f"{network.params:,} parameters still, so there is nothing to "
                             "train" + (" until --unfreeze-at" if config.unfreeze_at else "") +
                             "; leave the layers to train (the head, at least) out of --freeze")
        log(f"--freeze: {len(frozen)} layer(s) frozen ({', '.join(frozen[:4])}"
            f"{' …' if len(frozen) > 4 else ''}); {trains:,} of {network.params:,} parameters "
            "train" + (f" until epoch {config.unfreeze_at}, all from then on"
                       if config.unfreeze_at else ""))
        if config.unfreeze_at is not None and config.unfreeze_at > config.epochs:
            log(f"warning: --unfreeze-at {config.unfreeze_at} is after the last epoch "
                f"({config.epochs}): the frozen layers stay frozen in this run (`archdsl train "
                f"--resume` with --epochs {config.unfreeze_at} or more thaws them)")
    model = model.to(device)
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
    return model, frozen, info


def _optimizer(model: nn.Module, config: TrainConfig):
    """SGD or AdamW, with weight decay on weights only (not biases or norms)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum,
                               nesterov=config.nesterov)
    return torch.optim.AdamW(groups, lr=config.lr)


def _config_json(spec_path: Path, dataset: str, network, data: DataSet, config: TrainConfig,
                 device, amp, world: World, mean, std, task: Classification) -> dict:
    """config.json of a new run: every option, what the data and the spec resolved to."""
    return {
        "task": task.name, **({"palette": data.palette} if data.palette else {}),
        "spec": spec_copy_name(spec_path), "arch": network.name, "parameters": network.arch_params,
        "dataset": data.source, "dataset_arg": str(dataset),
        "dataset_path": str(Path(dataset).resolve()) if Path(dataset).exists() else None,
        "classes": data.classes,
        "split": data.split, "train_images": len(data.train), "val_images": len(data.val),
        "class_images": None if task.masks else data.counts(),
        "data_fingerprint": fingerprint(data),
        "skipped": [p for p, _ in data.skipped], "input": list(network.input_shape),
        "normalisation": {"mean": mean, "std": std}, "device": str(device),
        "precision": str(amp).replace("torch.", "") if amp else "fp32",
        "distributed": ({"world_size": world.size, "nproc_per_node": world.local_size,
                         "nnodes": world.nodes, "backend": world.backend,
                         "batch_per_worker": config.batch_size // world.size}
                        if world.several else None),
        "options": asdict(config),
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                     "torchvision": __import__("torchvision").__version__,
                     "archdsl": __import__("archdsl").__version__},
    }


def _write_start(spec_path: Path, spec_data: bytes, run: Path, config_json: dict, world: World,
                 fresh: bool) -> None:
    """The spec's copy (for a new run: the very bytes that were compiled, even if the file has
    changed since) and config.json: the run exists from here."""
    if not world.main:
        return
    try:
        copy = run / spec_copy_name(spec_path)
        if fresh and spec_path.resolve() != copy.resolve():
            atomic_write(copy, lambda tmp: Path(tmp).write_bytes(spec_data))
        atomic_write(run / "config.json", json_writer(config_json))
    except WriteError as exc:
        raise write_error(exc, "no training was done; free some space or fix the folder's "
                               "permissions, then run the command again") from None
