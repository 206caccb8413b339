"""`archdsl train` against the plain PyTorch loop a user would write, in one process.

    python benchmarks/train_speed.py        # CPU here; on a CUDA machine, resnet50 as well

Both sides train the same compiled model on the same data pipeline (archdsl's loaders and
transforms, so only the training loop differs) with the same batch size, SGD settings and
seed. The hand loop does what a user's loop does: forward, cross-entropy, backward, step,
and it keeps the running loss and accuracy. archdsl's figure is the `images_per_s` of its
training pass, which metrics.csv records per epoch (validation and checkpointing excluded).
Runs alternate A B A B; the first epoch of every run is a warm-up and is not counted. The
figure is the ratio of median images per second, archdsl / hand: 1.00 means as fast.
"""

from __future__ import annotations

import csv
import datetime
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archdsl  # noqa: E402
from archdsl.train import TrainConfig, train  # noqa: E402
from archdsl.train.data import load_dataset  # noqa: E402
from archdsl.train.loop import ImageSet, _transforms, normalisation  # noqa: E402
from docsection import cpu_name, write_section  # noqa: E402


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


def main() -> None:
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(compare("lenet5, digits (1x32x32)", ROOT / "specs" / "lenet5.arch", "digits",
                            epochs=4, batch=64, rounds=2, device=device))
        folder = image_folder(Path(tmp) / "pngs", 10, 100, 32, "png")
        rows.append(compare("resnet20, 1,000 PNGs (3x32x32)", ROOT / "specs" / "resnet20.arch",
                            str(folder), epochs=3, batch=64, rounds=2, device=device))
        if cuda:  # not measured here yet: the machine that wrote these docs has no GPU
            jpegs = image_folder(Path(tmp) / "jpegs", 10, 200, 256, "jpg")
            rows.append(compare("resnet50, 2,000 JPEGs (3x224x224)",
                                ROOT / "specs" / "resnet50.arch", str(jpegs), epochs=3,
                                batch=128, rounds=1, device=device))
    machine = torch.cuda.get_device_name() if cuda else f"{cpu_name()}, " \
        f"{torch.get_num_threads()} threads"
    lines = [
        f"## Training loop: `archdsl train` against a hand-written loop ({device})",
        "",
        f"`python benchmarks/train_speed.py` on {datetime.date.today()}: {machine}; torch "
        f"{torch.__version__}. Same compiled model, same data pipeline (archdsl's loaders and "
        "transforms, 0 workers), same batch and SGD settings; the hand loop does forward, "
        "loss, backward, step and keeps the running loss and accuracy. Images per second of "
        "the training pass; runs alternate archdsl / hand, the first epoch of each run is a "
        f"warm-up; medians. The whole script took {time.perf_counter() - started:.0f} s.",
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
    if not cuda:
        lines += ["", "On a CUDA GPU the same script adds resnet50 at 224x224 on a JPEG folder "
                      "(bf16 autocast and channels_last on archdsl's side, as its defaults); "
                      "those figures have not been measured yet."]
    write_section("\n".join(lines) + "\n", f"train_speed_{device}")


if __name__ == "__main__":
    main()
