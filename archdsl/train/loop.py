"""`archdsl train`: a spec and a data set in, a trained and evaluated model in a run folder out.

The run folder holds a copy of the spec, config.json (every option, the resolved parameters,
classes, normalisation, seed, library versions), metrics.csv (one row per epoch) and the best
and last weights as safetensors. Every file is written to a temporary name and renamed, so a
run killed at any moment leaves its last checkpoint intact.
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
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..files import atomic_write
from .data import DataError, DataSet, decode, load_dataset

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
    augment: bool = True
    val_split: float = 0.1
    quiet: bool = False

    def resolved(self) -> "TrainConfig":
        lr = self.lr if self.lr is not None else (0.05 if self.optimizer == "sgd" else 1e-3)
        wd = self.weight_decay if self.weight_decay is not None else (
            5e-4 if self.optimizer == "sgd" else 0.05)
        return TrainConfig(**{**asdict(self), "lr": lr, "weight_decay": wd})


class TrainError(Exception):
    """A run that cannot start, with a message for the user."""


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


def normalisation(samples, channels: int, size, limit: int = 500, seed: int = 0):
    """Per-channel mean and std of (a seeded sample of) the training images, resized."""
    rng = random.Random(seed)
    chosen = samples if len(samples) <= limit else rng.sample(samples, limit)
    plain = _transforms(size, None, None, train=False, augment=False, flip=False)
    stack = torch.stack([plain(decode(s, channels)) for s in chosen])
    mean = stack.mean(dim=(0, 2, 3))
    std = stack.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


# ----------------------------------------------------------------------------- the run


def pick_device(name: str) -> torch.device:
    if name != "auto":
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise TrainError("--device cuda was asked for, but PyTorch sees no CUDA GPU")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_folder(spec_name: str, out: str | None, exist_ok: bool) -> Path:
    if out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = f"runs/{spec_name}-{stamp}"
    path = Path(out)
    if path.exists() and any(path.iterdir()) and not exist_ok:
        raise TrainError(f"{path} already holds a run; choose another --out, or add --exist-ok "
                         "to write into it")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _save_json(path: Path, data) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2) + "\n"))


def _save_weights(path: Path, model: nn.Module) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp))


def _save_metrics(path: Path, rows: list[dict]) -> None:
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=METRICS)
            w.writeheader()
            w.writerows(rows)

    atomic_write(path, write)


def make_schedule(optimizer, config: TrainConfig, steps_per_epoch: int):
    total = max(config.epochs * steps_per_epoch, 1)
    warmup = int(config.warmup_epochs * steps_per_epoch)
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total)
    if config.schedule == "step":
        step = config.step_size * steps_per_epoch
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: config.gamma ** (s // max(step, 1)))
    if config.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)

    def cosine(s):
        if s < warmup:
            return (s + 1) / warmup
        progress = (s - warmup) / max(total - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)


def evaluate(model, loader, device, loss_fn) -> dict:
    model.eval()
    total, loss_sum, top1, top5 = 0, 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            out = model(x)
            loss_sum += float(loss_fn(out, y)) * len(y)
            k = min(5, out.shape[1])
            best = out.topk(k, dim=1).indices
            top1 += int((best[:, 0] == y).sum())
            top5 += int((best == y[:, None]).any(dim=1).sum())
            total += len(y)
    if total == 0:
        return {"loss": float("nan"), "acc": float("nan"), "top5": float("nan")}
    return {"loss": loss_sum / total, "acc": top1 / total, "top5": top5 / total}


def train(spec_path: str | Path, dataset: str, config: TrainConfig | None = None, *,
          params: dict | None = None, out: str | None = None, exist_ok: bool = False,
          log=None) -> Path:
    """Train a spec on a data set; return the run folder. Raises TrainError, DataError or
    SpecError (with diagnostics) for problems found before training starts."""
    from ..network import load

    config = (config or TrainConfig()).resolved()
    log = log or (lambda line: None if config.quiet else print(line, flush=True))
    spec_path = Path(spec_path)
    params = dict(params or {})
    probe = load(spec_path, **params)
    channels = probe.input_shape[0] if len(probe.input_shape) == 3 else 3
    if channels not in (1, 3):
        raise TrainError(f"the spec's input has {channels} channels; images give 1 or 3")
    data: DataSet = load_dataset(dataset, config.val_split, config.seed, channels)
    if "num_classes" in probe.arch_params and "num_classes" not in params:
        params["num_classes"] = len(data.classes)
    network = load(spec_path, **params) if params else probe
    if len(network.input_shape) != 3:
        raise TrainError(f"{spec_path} takes a vector of {network.input_shape[0]} features; "
                         "images need an `input CxHxW` line")
    if network.output_shape != (len(data.classes),):
        raise TrainError(
            f"{spec_path}'s last layer gives {'x'.join(map(str, network.output_shape))} outputs, "
            f"but {data.source} has {len(data.classes)} classes; end the spec with "
            f"`linear {len(data.classes)}`, or `linear num_classes` with an `arch` parameter "
            "num_classes, which archdsl sets from the data")
    _, height, width = network.input_shape
    if data.skipped:
        shown = ", ".join(p for p, _ in data.skipped[:3])
        log(f"warning: skipped {len(data.skipped)} file(s) that are not readable images: {shown}"
            + (" …" if len(data.skipped) > 3 else ""))
    if not data.train:
        raise DataError(f"{data.source} has no readable training images")

    seed_everything(config.seed)
    device = pick_device(config.device)
    size = (height, width)
    mean, std = normalisation(data.train, channels, size, seed=config.seed)
    flip = not data.source.startswith("digits")  # a mirrored digit is another symbol
    train_set = ImageSet(data.train, channels, _transforms(size, mean, std, True, config.augment,
                                                           flip))
    val_set = ImageSet(data.val, channels, _transforms(size, mean, std, False, False, False))
    generator = torch.Generator().manual_seed(config.seed)
    train_loader = torch.utils.data.DataLoader(
        train_set, batch_size=config.batch_size, shuffle=True, generator=generator,
        num_workers=config.workers, drop_last=len(train_set) > config.batch_size,
        pin_memory=device.type == "cuda")
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=config.batch_size,
                                             num_workers=config.workers)

    run = run_folder(network.name, out, exist_ok)
    shutil.copyfile(spec_path, run / spec_path.name)
    model = network.to_torch().to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum,
                                    nesterov=config.nesterov)
    elif config.optimizer == "adamw":
        optimizer = torch.optim.AdamW(groups, lr=config.lr)
    else:
        raise TrainError(f"unknown optimizer {config.optimizer!r}: sgd or adamw")
    schedule = make_schedule(optimizer, config, max(len(train_loader), 1))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    _save_json(run / "config.json", {
        "spec": spec_path.name, "arch": network.name, "parameters": network.arch_params,
        "dataset": data.source, "classes": data.classes, "split": data.split,
        "train_images": len(data.train), "val_images": len(data.val),
        "skipped": [p for p, _ in data.skipped], "input": list(network.input_shape),
        "normalisation": {"mean": mean, "std": std}, "device": str(device),
        "options": asdict(config),
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                     "archdsl": __import__("archdsl").__version__},
    })
    log(f"training {network.name} ({network.params:,} params) on {data.source}: "
        f"{len(data.train)} train / {len(data.val)} val images, {len(data.classes)} classes, "
        f"{device}; run folder {run}")

    rows, best = [], -1.0
    for epoch in range(1, config.epochs + 1):
        model.train()
        start, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
        for x, y in train_loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            out = model(x)
            loss = loss_fn(out, y)
            if not torch.isfinite(loss):
                kept = (f"the last good weights are in {run / 'last.safetensors'}"
                        if (run / "last.safetensors").exists()
                        else "no epoch had finished, so no weights were kept")
                raise TrainError(f"the loss became {float(loss.detach())} in epoch {epoch}; "
                                 f"{kept}. Lower the learning rate (--lr), clip gradients "
                                 "(--clip-grad 1.0), or add normalisation (`bn`) to the spec")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.clip_grad:
                nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
            optimizer.step()
            schedule.step()
            seen += len(y)
            loss_sum += float(loss.detach()) * len(y)
            correct += int((out.argmax(1) == y).sum())
        seconds = time.perf_counter() - start
        val = evaluate(model, val_loader, device, loss_fn)
        row = {"epoch": epoch, "train_loss": round(loss_sum / max(seen, 1), 6),
               "train_acc": round(correct / max(seen, 1), 6), "val_loss": round(val["loss"], 6),
               "val_acc": round(val["acc"], 6), "val_top5": round(val["top5"], 6),
               "lr": round(optimizer.param_groups[0]["lr"], 8),
               "images_per_s": round(seen / max(seconds, 1e-9), 1),
               "seconds": round(seconds, 3)}
        rows.append(row)
        _save_metrics(run / "metrics.csv", rows)
        _save_weights(run / "last.safetensors", model)
        if val["acc"] > best:
            best = val["acc"]
            _save_weights(run / "best.safetensors", model)
        log(f"epoch {epoch}/{config.epochs}  train loss {row['train_loss']:.4f} "
            f"acc {row['train_acc']:.1%}  val loss {row['val_loss']:.4f} acc {row['val_acc']:.1%} "
            f"top5 {row['val_top5']:.1%}  lr {row['lr']:.3g}  {row['images_per_s']:.0f} img/s  "
            f"{seconds:.1f} s")
    log(f"best val accuracy {best:.1%}; weights in {run / 'best.safetensors'}")
    return run


__all__ = ["train", "TrainConfig", "TrainError", "DataError"]
