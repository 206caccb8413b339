"""`archdsl train`: a spec and a data set in, a trained and evaluated model in a run folder out.

The run folder holds a copy of the spec, config.json (every option, the resolved parameters,
classes, normalisation, seed, library versions), metrics.csv (one row per epoch), the best
and last weights as safetensors, resume.pt (everything `--resume` needs: weights, optimizer,
schedule, scaler, epoch, random states; read back weights-only), curves.png and
confusion.png. Every file is written to a temporary name and renamed, so a run killed at any
moment leaves its last checkpoint intact.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..files import atomic_write
from .data import DataError, DataSet, decode, load_dataset, stratified_split
from .health import GradientHealth, first_non_finite_layer
from .progress import Progress

METRICS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "lr",
           "images_per_s", "seconds"]


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

    def resolved(self) -> "TrainConfig":
        lr = self.lr if self.lr is not None else (0.05 if self.optimizer == "sgd" else 1e-3)
        wd = self.weight_decay if self.weight_decay is not None else (
            5e-4 if self.optimizer == "sgd" else 0.05)
        return TrainConfig(**{**asdict(self), "lr": lr, "weight_decay": wd})

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class TrainError(Exception):
    """A run that cannot start or go on, with a message for the user."""


# ----------------------------------------------------------------------------- data pipeline


class ImageSet(torch.utils.data.Dataset):
    def __init__(self, samples, channels: int, transform):
        self.samples, self.channels, self.transform = samples, channels, transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        s = self.samples[i]
        return self.transform(decode(s, self.channels)), s.label


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


def run_folder(spec_name: str, out: str | None, exist_ok: bool) -> Path:
    if out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = f"runs/{spec_name}-{stamp}"
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise TrainError(f"{path} is a file; --out needs a folder")
    if path.exists() and any(path.iterdir()) and not exist_ok:
        raise TrainError(f"{path} already holds a run; choose another --out, resume it with "
                         f"--resume {path}, or add --exist-ok to write into it")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".archdsl-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise TrainError(f"cannot write into {path}: {exc.strerror or exc}") from None
    return path


def save_json(path: Path, data) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2) + "\n"))


def save_weights(path: Path, model: nn.Module) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in _unwrap(model).state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp))


def save_metrics(path: Path, rows: list[dict]) -> None:
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=METRICS)
            w.writeheader()
            w.writerows(rows)

    atomic_write(path, write)


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "_orig_mod", model)  # torch.compile's wrapper


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


def evaluate(model, loader, device, loss_fn, num_classes: int, amp=None) -> dict:
    """Loss, top-1, top-5 and the confusion matrix (rows: true class, columns: predicted)."""
    model.eval()
    total, loss_sum, top1, top5 = 0, 0.0, 0, 0
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
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
    generator: torch.Generator
    device: torch.device
    amp: object
    config: TrainConfig
    config_json: dict


def train(spec_path: str | Path, dataset: str, config: TrainConfig | None = None, *,
          params: dict | None = None, out: str | None = None, exist_ok: bool = False,
          log=None) -> Path:
    """Train a spec on a data set; return the run folder. Raises TrainError, DataError or
    SpecError (with diagnostics) for problems found before training starts."""
    config = (config or TrainConfig()).resolved()
    setup = _prepare(Path(spec_path), dataset, config, dict(params or {}), out, exist_ok, log)
    return _run(setup, start_epoch=1, rows=[], best=-1.0, log=_logger(config, log))


def resume(run_dir: str | Path, epochs: int | None = None, log=None) -> Path:
    """Continue a run where it stopped; with a fixed seed it ends as an uninterrupted run."""
    run = Path(run_dir)
    try:
        saved = json.loads((run / "config.json").read_text())
    except (OSError, ValueError):
        raise TrainError(f"{run} is not a run folder (no readable config.json)") from None
    state_path = run / "resume.pt"
    if not state_path.is_file():
        raise TrainError(f"{run} has no resume.pt: no epoch finished before the run stopped; "
                         "start it again")
    try:
        state = torch.load(str(state_path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise TrainError(f"{state_path} is damaged ({type(exc).__name__}); start the run "
                         "again") from None
    config = TrainConfig.from_dict(saved["options"])
    if epochs is not None:
        config.epochs = epochs
    spec = run / saved["spec"]
    setup = _prepare(spec, saved["dataset_arg"], config, dict(saved["parameters"]), str(run),
                     True, log, saved=saved)
    _unwrap(setup.model).load_state_dict(state["model"])
    setup.optimizer.load_state_dict(state["optimizer"])
    setup.schedule.load_state_dict(state["schedule"])
    if setup.scaler is not None and state.get("scaler"):
        setup.scaler.load_state_dict(state["scaler"])
    restore_random_states(state["random"], setup.generator)
    log_fn = _logger(config, log)
    log_fn(f"resuming {run} after epoch {state['epoch']} of {config.epochs}")
    return _run(setup, start_epoch=state["epoch"] + 1, rows=state["rows"], best=state["best"],
                log=log_fn)


def _logger(config: TrainConfig, log):
    """Progress lines to stdout (none with --quiet); warnings always, to stderr."""
    if log is not None:
        return log

    def emit(line: str) -> None:
        if line.startswith("warning:"):
            print(line, file=sys.stderr, flush=True)
        elif not config.quiet:
            print(line, flush=True)

    return emit


def _prepare(spec_path: Path, dataset: str, config: TrainConfig, params: dict, out, exist_ok,
             log, saved: dict | None = None) -> _Setup:
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
    if "num_classes" in probe.arch_params and "num_classes" not in params:
        params["num_classes"] = len(data.classes)
    network = load(spec_path, **params) if params else probe
    if network.output_shape != (len(data.classes),):
        raise TrainError(
            f"{spec_path}'s last layer gives {'x'.join(map(str, network.output_shape))} outputs, "
            f"but {data.source} has {len(data.classes)} classes; end the spec with "
            f"`linear {len(data.classes)}`, or `linear num_classes` with an `arch` parameter "
            "num_classes, which archdsl sets from the data")
    if data.skipped:
        shown = ", ".join(p for p, _ in data.skipped[:3])
        log(f"warning: skipped {len(data.skipped)} file(s) that are not readable images: {shown}"
            + (" …" if len(data.skipped) > 3 else ""))
    if not data.train:
        raise DataError(f"{data.source} has no readable training images")
    if config.optimizer not in ("sgd", "adamw"):
        raise TrainError(f"unknown optimizer {config.optimizer!r}: sgd or adamw")

    device = pick_device(config.device)
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
    train_set = ImageSet(data.train, channels,
                         _transforms(size, mean, std, True, config.augment, flip))
    val_set = ImageSet(data.val, channels, _transforms(size, mean, std, False, False, False))
    generator = torch.Generator().manual_seed(config.seed)
    pin = device.type == "cuda"
    train_loader = torch.utils.data.DataLoader(
        train_set, batch_size=config.batch_size, shuffle=True, generator=generator,
        num_workers=config.workers, drop_last=len(train_set) > config.batch_size, pin_memory=pin,
        persistent_workers=config.workers > 0)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=config.batch_size,
                                             num_workers=config.workers, pin_memory=pin)

    run = run_folder(network.name, out, exist_ok)
    model = network.to_torch().to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
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
        "dataset": data.source, "dataset_arg": str(dataset), "classes": data.classes,
        "split": data.split, "train_images": len(data.train), "val_images": len(data.val),
        "skipped": [p for p, _ in data.skipped], "input": list(network.input_shape),
        "normalisation": {"mean": mean, "std": std}, "device": str(device),
        "precision": str(amp).replace("torch.", "") if amp else "fp32",
        "options": asdict(config),
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                     "torchvision": __import__("torchvision").__version__,
                     "archdsl": __import__("archdsl").__version__},
    }
    if saved is None:
        if spec_path.resolve() != (run / spec_path.name).resolve():
            shutil.copyfile(spec_path, run / spec_path.name)
        save_json(run / "config.json", config_json)
    else:
        config_json["options"] = asdict(config)
        save_json(run / "config.json", config_json)
    return _Setup(network, data, run, model, optimizer, schedule, scaler,
                  nn.CrossEntropyLoss(label_smoothing=config.label_smoothing), train_loader,
                  val_loader, generator, device, amp, config, config_json)


def _run(s: _Setup, start_epoch: int, rows: list, best: float, log) -> Path:
    config, model, device, run = s.config, s.model, s.device, s.run
    network, amp = s.network, s.amp
    if start_epoch == 1:
        log(f"training {network.name} ({network.params:,} params) on {s.data.source}: "
            f"{len(s.data.train)} train / {len(s.data.val)} val images, {len(s.data.classes)} "
            f"classes, {device}{', ' + str(amp).replace('torch.', '') if amp else ''}; "
            f"run folder {run}")
    health = GradientHealth(network, _unwrap(model))
    writer = _tensorboard(run) if config.tensorboard else None
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    for epoch in range(start_epoch, config.epochs + 1):
        model.train()
        progress = Progress(f"epoch {epoch}/{config.epochs}", len(s.train_loader),
                            quiet=config.quiet)
        start, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
        for x, y in s.train_loader:
            x = x.to(device, non_blocking=True, memory_format=fmt)
            y = y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                out = model(x)
                loss = s.loss_fn(out.float(), y)
            if not torch.isfinite(loss):
                _stop_non_finite(s, x, epoch, float(loss.detach()))
            s.optimizer.zero_grad(set_to_none=True)
            if s.scaler is not None:
                s.scaler.scale(loss).backward()
                s.scaler.unscale_(s.optimizer)
            else:
                loss.backward()
            health.record()
            if config.clip_grad:
                nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
            if s.scaler is not None:
                s.scaler.step(s.optimizer)
                s.scaler.update()
            else:
                s.optimizer.step()
            s.schedule.step()
            seen += len(y)
            loss_sum += float(loss.detach()) * len(y)
            correct += int((out.argmax(1) == y).sum())
            progress.update(loss=loss_sum / seen, acc=correct / seen,
                            rate=seen / max(time.perf_counter() - start, 1e-9))
        seconds = time.perf_counter() - start
        progress.close()
        val = evaluate(model, s.val_loader, device, s.loss_fn, len(s.data.classes), amp)
        row = {"epoch": epoch, "train_loss": round(loss_sum / max(seen, 1), 6),
               "train_acc": round(correct / max(seen, 1), 6), "val_loss": round(val["loss"], 6),
               "val_acc": round(val["acc"], 6), "val_top5": round(val["top5"], 6),
               "lr": round(s.optimizer.param_groups[0]["lr"], 8),
               "images_per_s": round(seen / max(seconds, 1e-9), 1),
               "seconds": round(seconds, 3)}
        rows.append(row)
        for warning in health.end_epoch():
            log(f"warning: {warning}")
        improved = val["acc"] > best or not math.isfinite(best)
        if improved:
            best = val["acc"]
        _checkpoint(s, epoch, rows, best, improved, val["confusion"])
        if writer is not None:
            for key in ("train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "lr"):
                writer.add_scalar(key, row[key], epoch)
            writer.flush()
        log(f"epoch {epoch}/{config.epochs}  train loss {row['train_loss']:.4f} "
            f"acc {row['train_acc']:.1%}  val loss {row['val_loss']:.4f} acc {row['val_acc']:.1%} "
            f"top5 {row['val_top5']:.1%}  lr {row['lr']:.3g}  {row['images_per_s']:.0f} img/s  "
            f"{seconds:.1f} s")
    if writer is not None:
        writer.close()
    log(f"best val accuracy {best:.1%}; weights in {run / 'best.safetensors'}")
    return run


def _checkpoint(s: _Setup, epoch: int, rows: list, best: float, improved: bool,
                confusion) -> None:
    """Everything of one epoch, each file renamed into place; resume.pt last of all."""
    from .plots import confusion_png, curves_png

    run = s.run
    save_metrics(run / "metrics.csv", rows)
    save_weights(run / "last.safetensors", s.model)
    if improved:
        save_weights(run / "best.safetensors", s.model)
        confusion_png(run / "confusion.png", confusion, s.data.classes,
                      title=f"validation, epoch {epoch}")
    curves_png(run / "curves.png", rows)
    state = {
        "epoch": epoch, "rows": rows, "best": best,
        "model": {k: v.detach().cpu() for k, v in _unwrap(s.model).state_dict().items()},
        "optimizer": s.optimizer.state_dict(), "schedule": s.schedule.state_dict(),
        "scaler": s.scaler.state_dict() if s.scaler is not None else {},
        "random": random_states(s.generator),
    }
    atomic_write(run / "resume.pt", lambda tmp: torch.save(state, tmp))


def _stop_non_finite(s: _Setup, x, epoch: int, value: float) -> None:
    kept = (f"the last good checkpoint (epoch {epoch - 1}) is kept in {s.run}"
            if (s.run / "last.safetensors").exists()
            else "no epoch had finished, so no weights were kept")
    where = first_non_finite_layer(s.network, _unwrap(s.model), x)
    raise TrainError(f"the loss became {value} in epoch {epoch}{where}; {kept}. Lower the "
                     "learning rate (--lr), clip gradients (--clip-grad 1.0), or add "
                     "normalisation (`bn`) to the spec")


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
    try:
        saved = json.loads((run / "config.json").read_text())
    except (OSError, ValueError):
        raise TrainError(f"{run} is not a run folder (no readable config.json)") from None
    network = load(run / saved["spec"], **saved["parameters"])
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
    data = load_dataset(dataset, saved["options"]["val_split"], saved["options"]["seed"],
                        channels)
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
    from .data import Sample

    _, model, saved = load_run(run_dir, weights)
    transform = eval_transform(saved)
    results = []
    for path in images:
        try:
            x = transform(decode(Sample(0, path=Path(path)), saved["input"][0]))[None]
        except Exception as exc:  # noqa: BLE001 - one unreadable image does not stop the rest
            results.append((path, None, f"cannot read it as an image ({type(exc).__name__})"))
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
