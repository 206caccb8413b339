"""`archdsl train` against the loop a user would write by hand, in one process.

    python benchmarks/train_speed.py                     # the rows below on this machine
    python benchmarks/train_speed.py --quick             # fewer epochs and runs
    python benchmarks/train_speed.py --gpu-only --quick  # the GPU comparison alone (< 10 min)
    python benchmarks/train_speed.py --smoke             # the GPU comparison's code on the CPU,
                                                         # tiny, printed only
    python benchmarks/train_speed.py --loaded [--quick]  # img/s under a competing load, per
                                                         # --threads (auto and 1), printed only

Same loop, same pipeline (every machine): both sides train the same model on the same data
pipeline (archdsl's loaders and transforms, so only the training loop differs) with the same
batch size, SGD settings and seed. The hand loop does what a user's loop does: forward,
cross-entropy, backward, step, and it keeps the running loss and accuracy. archdsl's figure
is the `images_per_s` of its training pass, which metrics.csv records per epoch (validation
and checkpointing excluded). Runs alternate A B A B; the first epoch of every run is a
warm-up and is not counted. The figure is the ratio of median images per second, archdsl /
hand: 1.00 means as fast.

Against torchvision's reference recipe (CUDA only): resnet18 and resnet50 at 224x224, bf16
autocast, channels_last and torch.compile on both sides. The hand side is the recipe's
training step written minimally (torchvision.models, SGD lr 0.1 momentum 0.9 weight decay
1e-4, label smoothing 0.1, loss.item() every step as its logger does); on synthetic data it
trains on one random batch already on the GPU (no input pipeline: the ceiling), on the JPEG
folder it reads with ImageFolder and the recipe's transforms in loader workers. archdsl runs
`train()` with the same settings on `synthetic:N` and on the same JPEG folder, with its GPU
input pipeline and cache where TrainConfig has them. Model FLOP utilisation is achieved
FLOP/s (images/s x 3 x 2 x forward MACs, forward + backward ~ 3 forwards) over the bf16
matrix-multiply peak measured on the same GPU in the same run.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archdsl  # noqa: E402
from archdsl.train import TrainConfig, train  # noqa: E402
from archdsl.train.data import load_dataset  # noqa: E402
from archdsl.train.images import ImageSet, normalisation  # noqa: E402
from archdsl.train.images import transforms as _transforms  # noqa: E402
from docsection import DOC, cpu_name, write_section  # noqa: E402

GPU_COMMAND = "python benchmarks/train_speed.py --gpu-only --quick"


def archdsl_run(spec: Path, dataset: str, epochs: int, batch: int, device: str) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(epochs=epochs, batch_size=batch, quiet=True, device=device)
        run = train(spec, dataset, config, out=str(Path(tmp) / "run"))
        with open(run / "metrics.csv") as f:
            return [float(r["images_per_s"]) for r in csv.DictReader(f)][1:]


def hand_run(spec: Path, dataset: str, epochs: int, batch: int, device: str) -> list[float]:
    """The loop a user writes, on the very same data pipeline and model."""
    torch.manual_seed(0)
    net = archdsl.load(spec)
    channels, height, width = net.input_shape
    data = load_dataset(dataset, 0.1, 0, channels)
    if "num_classes" in net.arch_params:
        net = archdsl.load(spec, num_classes=len(data.classes))
    mean, std = normalisation(data.train, channels, (height, width))
    flip = not data.source.startswith("digits")
    loader = torch.utils.data.DataLoader(
        ImageSet(data.train, channels, _transforms((height, width), mean, std, True, True, flip)),
        batch_size=batch, shuffle=True, drop_last=True, pin_memory=device == "cuda")
    model = net.to_torch().to(device)
    cuda = device == "cuda"
    if cuda:  # what archdsl does by default on a GPU, written by hand
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    rates = []
    for _ in range(epochs):
        model.train()
        seen, loss_sum, correct = 0, 0.0, 0
        start = time.perf_counter()
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            if cuda:
                x = x.to(memory_format=torch.channels_last)
            with torch.autocast(device, dtype=torch.bfloat16, enabled=cuda):
                out = model(x)
                loss = loss_fn(out.float(), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += len(y)
            loss_sum += loss.item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
        rates.append(seen / (time.perf_counter() - start))
    return rates[1:]


def image_folder(root: Path, classes: int, per_class: int, size: int, ext: str) -> Path:
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"class{c}" / f"{i}.{ext}")
    return root


class GpuUtilisation:
    """Samples nvidia-smi's utilization.gpu (percent of time a kernel ran) every 0.2 s."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and shutil.which("nvidia-smi") is not None
        self.samples: list[float] = []

    def __enter__(self):
        if self.enabled:
            self.stop = threading.Event()
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self):
        index = str(torch.cuda.current_device())
        while not self.stop.wait(0.2):
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu",
                                  "--format=csv,noheader,nounits", "-i", index],
                                 capture_output=True, text=True)
            if out.returncode == 0 and out.stdout.strip().isdigit():
                self.samples.append(float(out.stdout))

    def __exit__(self, *exc):
        if self.enabled:
            self.stop.set()
            self.thread.join()

    @property
    def mean(self) -> float | None:
        return statistics.mean(self.samples) if self.samples else None


def compare(label, spec, dataset, epochs, batch, rounds, device) -> dict:
    ours, theirs = [], []
    ours_gpu, theirs_gpu = GpuUtilisation(device == "cuda"), GpuUtilisation(device == "cuda")
    for _ in range(rounds):
        with ours_gpu:
            ours += archdsl_run(spec, dataset, epochs, batch, device)
        with theirs_gpu:
            theirs += hand_run(spec, dataset, epochs, batch, device)
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"{label:40s} archdsl {a:8.0f} img/s   hand loop {b:8.0f} img/s   ratio {a / b:.3f}",
          flush=True)
    return {"label": label, "archdsl": a, "hand": b, "ratio": a / b, "epochs": epochs,
            "batch": batch, "rounds": rounds, "gpu": (ours_gpu.mean, theirs_gpu.mean)}


def same_pipeline_section(device: str, quick: bool) -> str:
    """The rows where both sides share archdsl's data pipeline, as a docs section."""
    cuda = device == "cuda"
    epochs, rounds = (2, 1) if quick else (None, 2)
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(compare("lenet5, digits (1x32x32)", ROOT / "specs" / "lenet5.arch", "digits",
                            epochs=epochs or 4, batch=64, rounds=rounds, device=device))
        folder = image_folder(Path(tmp) / "pngs", 10, 100, 32, "png")
        rows.append(compare("resnet20, 1,000 PNGs (3x32x32)", ROOT / "specs" / "resnet20.arch",
                            str(folder), epochs=epochs or 3, batch=64, rounds=rounds,
                            device=device))
        if cuda:
            jpegs = image_folder(Path(tmp) / "jpegs", 10, 200, 256, "jpg")
            rows.append(compare("resnet50, 2,000 JPEGs (3x224x224)",
                                ROOT / "specs" / "resnet50.arch", str(jpegs), epochs=epochs or 3,
                                batch=128, rounds=1, device=device))
    machine = torch.cuda.get_device_name() if cuda else f"{cpu_name()}, " \
        f"{torch.get_num_threads()} threads"
    command = "python benchmarks/train_speed.py" + (" --quick" if quick else "")
    lines = [
        f"## Training loop: `archdsl train` against a hand-written loop ({device})",
        "",
        f"`{command}` on {datetime.date.today()}: {machine}; torch "
        f"{torch.__version__}. Same compiled model, same data pipeline (archdsl's loaders and "
        "transforms, 0 workers), same batch and SGD settings; the hand loop does forward, "
        "loss, backward, step and keeps the running loss and accuracy. Images per second of "
        "the training pass; runs alternate archdsl / hand, the first epoch of each run is a "
        f"warm-up; medians. This part took {time.perf_counter() - started:.0f} s.",
        "",
        "| model and data | epochs x runs | batch | archdsl (img/s) | hand loop (img/s) | "
        "ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['label']} | {r['epochs'] - 1} x {r['rounds']} | {r['batch']} | "
                     f"{r['archdsl']:.0f} | {r['hand']:.0f} | {r['ratio']:.3f} |")
    if cuda:
        lines += ["", "GPU utilisation (nvidia-smi's utilization.gpu: share of time a kernel ran, "
                      "sampled every 0.2 s over whole runs, loading and validation included):", "",
                  "| model and data | archdsl | hand loop |", "|---|---:|---:|"]
        for r in rows:
            ours, theirs = (f"{u:.0f}%" if u is not None else "n/a" for u in r["gpu"])
            lines.append(f"| {r['label']} | {ours} | {theirs} |")
    else:
        lines += ["", "On a CUDA GPU the same script adds resnet50 at 224x224 on a JPEG folder to "
                      "this table, and a second section: resnet18 and resnet50 at 224x224 with "
                      "bf16, channels_last and torch.compile against torchvision's reference "
                      "recipe written by hand, on synthetic data and on a JPEG folder, with model "
                      "FLOP utilisation against the GPU's measured bf16 matmul peak. Those figures "
                      "wait for a CUDA machine; there, `" + GPU_COMMAND + "` measures them "
                      "(sized for a 10-minute slot; without `--quick` the runs are longer) and "
                      "writes its own section here."]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- against the recipe


@dataclass
class GpuPlan:
    """How much the comparison with the reference recipe runs; `smoke` is its code on the
    CPU, tiny."""

    device: str
    models: tuple = ("resnet18", "resnet50")
    size: int = 224
    batch: int = 256
    synthetic_images: int = 12_800  # a multiple of the batch: every step full
    jpegs: int = 10_000
    classes: int = 10
    epochs: int = 4  # the first is a warm-up (compilation)
    warmup_steps: int = 20
    timed_steps: int = 100
    compile: bool = True
    matmul_n: int = 8192
    workers: int = 16

    @classmethod
    def make(cls, quick: bool, smoke: bool) -> "GpuPlan":
        workers = min(16, os.cpu_count() or 1)
        if smoke:
            return cls("cpu", models=("resnet18",), size=32, batch=8, synthetic_images=16,
                       jpegs=16, classes=2, epochs=2, warmup_steps=1, timed_steps=2,
                       compile=False, matmul_n=128, workers=0)
        if quick:
            return cls("cuda", synthetic_images=6400, jpegs=5000, epochs=3, warmup_steps=10,
                       timed_steps=50, workers=workers)
        return cls("cuda", workers=workers)


def matmul_peak(device: str, n: int, repeats: int = 10, calls: int = 20) -> float:
    """The best bf16 matrix-multiply rate of n x n matrices, FLOP/s (2 n^3 per product), after
    enough products for the clocks to settle."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(calls * 2):
        a @ b
    best = math.inf
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        for _ in range(calls):
            a @ b
        _sync(device)
        best = min(best, (time.perf_counter() - start) / calls)
    return 2 * n ** 3 / best


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def recipe_model(name: str, plan: GpuPlan):
    """torchvision's model as its reference recipe trains it: channels_last, compiled."""
    import torchvision

    torch._dynamo.reset()  # a fresh model: no guard failures counted against an old one
    model = getattr(torchvision.models, name)(num_classes=plan.classes).to(plan.device)
    model = model.to(memory_format=torch.channels_last)
    if plan.device == "cuda":
        torch.backends.cudnn.benchmark = True
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    return (torch.compile(model) if plan.compile else model), optimizer


def recipe_step(model, optimizer, loss_fn, x, y, device: str) -> float:
    """One training step of the recipe: bf16 autocast, loss.item() for its logger."""
    with torch.autocast(device, dtype=torch.bfloat16):
        loss = loss_fn(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def hand_synthetic(name: str, plan: GpuPlan) -> float:
    """Images/s of the recipe's step on one random batch already on the device."""
    torch.manual_seed(0)
    model, optimizer = recipe_model(name, plan)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    x = torch.randn(plan.batch, 3, plan.size, plan.size, device=plan.device)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, plan.classes, (plan.batch,), device=plan.device)
    model.train()
    for _ in range(plan.warmup_steps):
        recipe_step(model, optimizer, loss_fn, x, y, plan.device)
    _sync(plan.device)
    start = time.perf_counter()
    for _ in range(plan.timed_steps):
        recipe_step(model, optimizer, loss_fn, x, y, plan.device)
    _sync(plan.device)
    return plan.timed_steps * plan.batch / (time.perf_counter() - start)


def recipe_transform(size: int):
    """ClassificationPresetTrain of torchvision's references, PIL backend."""
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip(),
                       v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])


def hand_folder(name: str, folder: Path, plan: GpuPlan) -> float:
    """Median images/s of the recipe's epochs over an image folder (the first not counted)."""
    import torchvision

    torch.manual_seed(0)
    data = torchvision.datasets.ImageFolder(str(folder), transform=recipe_transform(plan.size))
    loader = torch.utils.data.DataLoader(
        data, batch_size=plan.batch, shuffle=True, drop_last=True, num_workers=plan.workers,
        pin_memory=plan.device == "cuda", persistent_workers=plan.workers > 0)
    model, optimizer = recipe_model(name, plan)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    model.train()
    rates = []
    for _ in range(plan.epochs):
        seen, start = 0, time.perf_counter()
        for x, y in loader:
            x = x.to(plan.device, non_blocking=True, memory_format=torch.channels_last)
            y = y.to(plan.device, non_blocking=True)
            recipe_step(model, optimizer, loss_fn, x, y, plan.device)
            seen += len(y)
        _sync(plan.device)
        rates.append(seen / (time.perf_counter() - start))
    return statistics.median(rates[1:])


def archdsl_options(plan: GpuPlan) -> dict:
    """archdsl's settings for the recipe, as TrainConfig fields; the GPU input pipeline and
    the cache once TrainConfig has them."""
    options = dict(epochs=plan.epochs, batch_size=plan.batch, lr=0.1, momentum=0.9,
                   weight_decay=1e-4, label_smoothing=0.1, precision="bf16",
                   compile=plan.compile, val_split=0.0, workers=plan.workers, quiet=True,
                   device=plan.device)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    if "cache" in known:
        options["cache"] = "memory"
    if "augment_on" in known:
        options["augment_on"] = "gpu"  # on the device, whichever it is (the CPU for --smoke)
    return options


def archdsl_gpu_run(spec: Path, dataset: str, plan: GpuPlan) -> float:
    """Median images/s of archdsl's training epochs (the first not counted)."""
    torch._dynamo.reset()

    def log(line: str) -> None:  # no validation set, by design: that warning is expected
        if line.startswith("warning:") and "no validation images" not in line:
            print(line, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(**archdsl_options(plan))
        run = train(spec, dataset, config, out=str(Path(tmp) / "run"), log=log)
        with open(run / "metrics.csv") as f:
            rates = [float(r["images_per_s"]) for r in csv.DictReader(f)]
    return statistics.median(rates[1:])


def jpeg_folder(root: Path, count: int, classes: int, seed: int = 0) -> Path:
    """`count` JPEGs of 224 to 320 pixels a side in `classes` folders: mild noise over a tinted
    gradient, and a few filled shapes, so they compress and decode more like photographs than
    noise would."""
    grain = np.random.default_rng(seed).integers(0, 24, (640, 640, 3), dtype=np.uint8)

    def one(i: int) -> None:
        rng = np.random.default_rng([seed, i])
        label = i % classes
        height, width = (int(v) for v in rng.integers(224, 321, 2))
        top, left = (int(v) for v in rng.integers(0, 640 - 320, 2))
        ramp = np.linspace(0, 96, width).astype(np.uint8)[None, :, None]
        tint = np.array([(label * 53) % 128, (label * 97) % 128, (label * 31) % 128], np.uint8)
        pixels = grain[top:top + height, left:left + width] + ramp + tint
        image = Image.fromarray(pixels)
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(2, 6))):
            x0, y0 = (int(v) for v in rng.integers(0, min(height, width) - 40, 2))
            x1, y1 = x0 + int(rng.integers(20, 120)), y0 + int(rng.integers(20, 120))
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape([x0, y0, x1, y1], fill=colour)
        image.save(root / f"class{label}" / f"{i:05d}.jpg", quality=90)

    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(one, range(count)))
    return root


def spec_at(spec: Path, size: int, folder: Path) -> Path:
    """The spec itself at 224x224, or a copy of it at size x size (for --smoke)."""
    text = spec.read_text()
    if size == 224:
        return spec
    copy = folder / spec.name
    copy.write_text(text.replace("input 3x224x224", f"input 3x{size}x{size}"))
    return copy


def recipe_comparison(plan: GpuPlan) -> dict:
    """Every figure of the comparison, measured in this process on this device."""
    started = time.perf_counter()
    results = {"plan": dataclasses.asdict(plan), "rows": [], "options": archdsl_options(plan)}
    print(f"bf16 matmul peak ({plan.matmul_n}x{plan.matmul_n}) ...", flush=True)
    results["peak"] = matmul_peak(plan.device, plan.matmul_n)
    print(f"  {results['peak'] / 1e12:.1f} TFLOP/s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = jpeg_folder(Path(tmp) / "jpegs", plan.jpegs, plan.classes)
        synthetic = f"synthetic:{plan.synthetic_images}x{plan.classes}"
        for name in plan.models:
            spec = spec_at(ROOT / "specs" / f"{name}.arch", plan.size, Path(tmp))
            macs = archdsl.load(spec, num_classes=plan.classes).macs
            for data, label, hand in (
                    (synthetic, f"synthetic ({plan.synthetic_images:,} images)",
                     lambda: hand_synthetic(name, plan)),
                    (str(folder), f"{plan.jpegs:,} JPEGs",
                     lambda: hand_folder(name, folder, plan))):
                row = {"model": name, "data": label, "macs": macs, "batch": plan.batch}
                for side, measure in (("hand", hand),
                                      ("archdsl", lambda: archdsl_gpu_run(spec, data, plan))):
                    print(f"{name}, {label}, {side} ...", flush=True)
                    try:
                        row[side] = measure()
                    except Exception as exc:  # noqa: BLE001 - one failure costs one figure
                        row[side + "_error"] = f"{type(exc).__name__}: " \
                            f"{(str(exc).splitlines() or [''])[0][:200]}"
                        print(f"  failed: {row[side + '_error']}", flush=True)
                    else:
                        print(f"  {row[side]:.0f} img/s, MFU "
                              f"{mfu(row[side], macs, results['peak']):.1%}", flush=True)
                    if plan.device == "cuda":
                        torch.cuda.empty_cache()
                results["rows"].append(row)
    results["seconds"] = time.perf_counter() - started
    return results


def mfu(images_per_s: float, macs: int, peak: float) -> float:
    """Model FLOP utilisation: forward and backward (3 forwards of 2 FLOP per MAC) over peak."""
    return images_per_s * 3 * 2 * macs / peak


def cli_equivalent(options: dict) -> str:
    """The `archdsl train` options that give these TrainConfig fields."""
    flags = {"cache": "--cache", "augment_on": "--augment-on", "epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr",
             "momentum": "--momentum", "weight_decay": "--weight-decay",
             "label_smoothing": "--label-smoothing", "precision": "--precision",
             "val_split": "--val-split", "workers": "--workers", "device": "--device"}
    words = [f"{flags[k]} {v:g}" if isinstance(v, float) else f"{flags[k]} {v}"
             for k, v in options.items() if k in flags]
    return " ".join(words + (["--compile"] if options.get("compile") else []) + ["--quiet"])


def recipe_section(results: dict, command: str) -> str:
    """The comparison with the recipe as a docs section: settings, commands, figures."""
    plan, peak = results["plan"], results["peak"]
    if plan["device"] == "cuda":
        props = torch.cuda.get_device_properties(0)
        device = f"{props.name} ({props.total_memory / 2**30:.0f} GiB)"
    else:
        device = cpu_name()
    cuda_version = f", CUDA {torch.version.cuda}" if torch.version.cuda else ""
    options = ", ".join(f"{k}={v!r}" for k, v in results["options"].items() if k != "quiet")
    macs = {r["model"]: r["macs"] for r in results["rows"]}
    lines = [
        "## Training on a GPU: `archdsl train` against torchvision's reference recipe by hand",
        "",
        f"`{command}` on {datetime.date.today()}: {device}, {os.cpu_count()} CPU cores; "
        f"torch {torch.__version__}, torchvision {__import__('torchvision').__version__}"
        f"{cuda_version}. Both sides at {plan['size']}x{plan['size']}, batch {plan['batch']}, "
        "bf16 autocast, channels_last, "
        + ("torch.compile, " if plan["compile"] else "no compilation, ")
        + "SGD lr 0.1 momentum 0.9 weight decay 1e-4, label smoothing 0.1, "
        f"{plan['classes']} classes.",
        "",
        "- **hand**: torchvision.models with the reference recipe's step (loss.item() every "
        f"step); on synthetic data {plan['timed_steps']} steps on one random batch already on "
        f"the GPU after {plan['warmup_steps']} warm-up steps (no input pipeline: the ceiling); "
        "on the JPEG folder torchvision's ImageFolder with the recipe's transforms "
        f"(RandomResizedCrop, flip, normalise) in {plan['workers']} loader workers, "
        f"{plan['epochs']} epochs, the first not counted.",
        f"- **archdsl**: `archdsl.train.train(specs/MODEL.arch, DATA, TrainConfig({options}))`, "
        f"DATA being `synthetic:{plan['synthetic_images']}x{plan['classes']}` (random 256x256 "
        "images through archdsl's input pipeline) or the same JPEG folder; images_per_s of "
        "metrics.csv, median of the epochs after the first. On the command line: "
        f"`archdsl train specs/MODEL.arch DATA {cli_equivalent(results['options'])}`.",
        f"- **MFU**: images/s x 3 x 2 x forward MACs (archdsl's count: "
        + ", ".join(f"{m} {v / 1e9:.2f} G" for m, v in macs.items())
        + f") over the bf16 matmul peak measured here: {peak / 1e12:.1f} TFLOP/s "
        f"({plan['matmul_n']}x{plan['matmul_n']} products, best of 10).",
        "",
        "| model | data | hand (img/s) | archdsl (img/s) | archdsl / hand | MFU hand | "
        "MFU archdsl |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for r in results["rows"]:
        cells = []
        for side in ("hand", "archdsl"):
            if side in r:
                cells.append(f"{r[side]:.0f}")
            else:
                cells.append("failed")
                notes.append(f"{r['model']}, {r['data']}, {side}: {r[side + '_error']}")
        both = "hand" in r and "archdsl" in r
        ratio = f"{r['archdsl'] / r['hand']:.2f}" if both else "n/a"
        util = [f"{mfu(r[s], r['macs'], peak):.1%}" if s in r else "n/a"
                for s in ("hand", "archdsl")]
        lines.append(f"| {r['model']} | {r['data']} | {cells[0]} | {cells[1]} | {ratio} | "
                     f"{util[0]} | {util[1]} |")
    lines += ["", f"The whole comparison took {results['seconds']:.0f} s."]
    if notes:
        lines += ["", "Failures:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _spin(stop) -> None:
    """A competing process: one core kept busy until `stop` is set."""
    while not stop.is_set():
        sum(range(10000))


def loaded_rates(threads: tuple, epochs: int, rounds: int) -> dict:
    """Training-pass img/s of the README's main job (lenet5 on the digits) for each thread
    count (0: archdsl's own choice), while as many busy processes as this process has
    cores compete for them; rounds alternate the settings. The median of each."""
    import multiprocessing

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    stop = multiprocessing.Event()
    load = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
            for _ in range(cores)]
    for p in load:
        p.start()
    rates = {t: [] for t in threads}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(rounds):
                for t in threads:
                    out = Path(tmp) / f"{t}-{r}"
                    train(ROOT / "specs" / "lenet5.arch", "digits",
                          TrainConfig(epochs=epochs, quiet=True, threads=t), out=str(out))
                    with open(out / "metrics.csv") as f:
                        rates[t] += [float(row["images_per_s"]) for row in csv.DictReader(f)]
    finally:
        stop.set()
        for p in load:
            p.join()
    return {"cores": cores, "rates": {t: statistics.median(v) for t, v in rates.items()}}


def loaded_section(result: dict) -> str:
    lines = [f"lenet5 on the digits, {result['cores']} core(s), each kept busy by another "
             "process; training-pass images per second (median):", "",
             "| --threads | img/s |", "|---|---|"]
    for t, rate in result["rates"].items():
        lines.append(f"| {t if t else 'auto (' + str(max(result['cores'], 1)) + ')'} | "
                     f"{rate:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs, steps and images")
    parser.add_argument("--gpu-only", action="store_true",
                        help="only the comparison with torchvision's recipe (CUDA)")
    parser.add_argument("--smoke", action="store_true",
                        help="the recipe comparison's code on the CPU, tiny; nothing written")
    parser.add_argument("--doc", type=Path, default=DOC, help="the Markdown file to update")
    parser.add_argument("--json", type=Path, help="also write the recipe comparison's figures")
    parser.add_argument("--models", nargs="+", choices=("resnet18", "resnet50"),
                        help="only these models in the comparison (its own docs section)")
    parser.add_argument("--loaded", action="store_true",
                        help="img/s of the main job under a competing load, per --threads; "
                             "printed only")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    if args.loaded:
        print(loaded_section(loaded_rates((0, 1), epochs=1, rounds=1 if args.quick else 3)))
        return
    if args.smoke:
        results = recipe_comparison(GpuPlan.make(quick=True, smoke=True))
        print(recipe_section(results, "python benchmarks/train_speed.py --smoke"))
        if any(k.endswith("_error") for r in results["rows"] for k in r):
            sys.exit(1)
        return
    if not args.gpu_only:
        device = "cuda" if cuda else "cpu"
        write_section(same_pipeline_section(device, args.quick), f"train_speed_{device}",
                      args.doc)
    if not cuda:
        print(f"no CUDA GPU: the comparison with torchvision's recipe waits for one "
              f"(`{GPU_COMMAND}` there)", flush=True)
        return
    plan = GpuPlan.make(args.quick, smoke=False)
    if args.models:
        plan.models = tuple(args.models)
    results = recipe_comparison(plan)
    command = "python benchmarks/train_speed.py" + " --gpu-only" * args.gpu_only + \
        " --quick" * args.quick + \
        (" --models " + " ".join(args.models) if args.models else "")
    if args.json:
        args.json.write_text(json.dumps({**results, "device": torch.cuda.get_device_name(),
                                         "torch": torch.__version__}, indent=1))
    key = "train_speed_gpu_recipe" + "".join(f"_{m}" for m in args.models or ())
    write_section(recipe_section(results, command), key, args.doc)


if __name__ == "__main__":
    main()
