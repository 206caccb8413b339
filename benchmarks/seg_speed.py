"""`archdsl train` on a segmentation folder against torchvision's segmentation recipe written by
hand: deeplabv3_resnet50 at 512x512, bf16 autocast, channels_last (CUDA).

    python benchmarks/seg_speed.py            # the figures, written to docs/benchmarks.md
    python benchmarks/seg_speed.py --quick    # fewer images and epochs (a few minutes)
    python benchmarks/seg_speed.py --compile  # torch.compile on both sides
    python benchmarks/seg_speed.py --smoke    # the same code on the CPU at 64x64 (2 steps an
                                              # epoch, one thread), printed only

The data: a folder of JPEG images and PNG masks written here (DATA/images/*.jpg and
DATA/masks/*.png, the same stems; palette masks of class indices): archdsl's built-in shapes
(archdsl/train/shapes.py) drawn at 128x128 and enlarged to 520 to 700 pixels a side, the
masks by nearest neighbour. Both sides read it with a DataLoader of the same workers, batch,
shuffling and pinned memory.

- **hand**: torchvision.models.segmentation.deeplabv3_resnet50 (no weights; the auxiliary
  head where archdsl's spec has one) trained as torchvision's references/segmentation/train.py
  trains it: its SegmentationPresetTrain (PIL, transforms.v2: RandomResize of the short side
  from half to twice 520, a flip, a padded RandomCrop to 512, normalise) in the loader
  workers, SGD lr 0.02 momentum 0.9 weight decay 1e-4 (the auxiliary head at ten times the
  rate), the polynomial schedule stepped every step, cross-entropy with ignore index 255 on
  `out` plus 0.5 times that of `aux`, loss.item() every step as its logger does; with bf16
  autocast and channels_last (the recipe's --amp is fp16 with a scaler).
- **archdsl**: `archdsl.train.train(SPEC, DATA, TrainConfig(...))` with the same batch, SGD
  settings, bf16 and workers, its crops and flips on the device (--augment-on gpu); the
  `images_per_s` of metrics.csv (the training pass; validation and checkpoints excluded).

Runs alternate archdsl / hand (A B A B); the first epoch of every run is a warm-up and is not
counted. The figure is the ratio of the medians of the counted epochs' images per second,
archdsl / hand: 1.00 means as fast.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import re
import statistics
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archdsl  # noqa: E402
from archdsl.train import TrainConfig, train  # noqa: E402
from archdsl.train import shapes  # noqa: E402
from docsection import DOC, cpu_name, write_section  # noqa: E402

SPECS = ROOT / "specs"
# specs/torchvision.toml's entries for the model, the one with the auxiliary head first
ENTRIES = ("deeplabv3_resnet50_aux", "deeplabv3_resnet50")
IGNORE = 255  # a mask value that is no class (the recipe's ignore_index)
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # the recipe's normalisation
BASE = 520  # the recipe's base size: RandomResize from BASE / 2 to 2 BASE


@dataclass
class SegPlan:
    """How much the comparison runs (SegPlan.make: the full, --quick and --smoke sizes)."""

    device: str
    size: int = 512  # the crop both sides train at
    base: int = BASE  # the recipe's RandomResize range, half to twice this
    sides: tuple = (520, 700)  # the written images' sides, drawn between these
    images: int = 960  # a multiple of the batch: every step full, on both sides
    batch: int = 16
    epochs: int = 4  # of each run; the first is a warm-up
    rounds: int = 2  # A B per round
    workers: int = 16
    threads: int = 0  # torch's CPU threads on both sides; 0: archdsl's and torch's own choice
    compile: bool = False
    lr: float = 0.02

    @classmethod
    def make(cls, quick: bool, smoke: bool, compile_: bool = False) -> "SegPlan":
        workers = min(16, os.cpu_count() or 1)
        if smoke:
            return cls("cpu", size=64, base=65, sides=(64, 88), images=4, batch=2, epochs=2,
                       rounds=1, workers=0, threads=1, compile=compile_)
        if quick:
            return cls("cuda", images=480, epochs=3, workers=workers, compile=compile_)
        return cls("cuda", workers=workers, compile=compile_)


# ----------------------------------------------------------------------------- the data


def seg_folder(root: Path, count: int, sides: tuple, seed: int = 0) -> Path:
    """`count` JPEG images (quality 90) and their palette PNG masks under root/images and
    root/masks: archdsl's built-in shapes drawn at 128x128 and enlarged to a random width and
    height between `sides` (the image bicubic, the mask nearest), and classes.txt."""
    pixels, labels = shapes.generate(count, 128, seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(shapes.CLASSES) + "\n")

    def one(i: int) -> None:
        rng = np.random.default_rng([seed, i])
        width, height = (int(v) for v in rng.integers(sides[0], sides[1] + 1, 2))
        image = Image.fromarray(pixels[i]).resize((width, height), Image.BICUBIC)
        image.save(root / "images" / f"{i:05d}.jpg", quality=90)
        mask = Image.fromarray(labels[i], mode="P").resize((width, height), Image.NEAREST)
        mask.putpalette(shapes.PALETTE)
        mask.save(root / "masks" / f"{i:05d}.png")

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(one, range(count)))
    return root


def recipe_transform(size: int, base: int):
    """SegmentationPresetTrain of torchvision's references (PIL backend, transforms.v2):
    (PIL image, tv_tensors.Mask) -> (normalised float image, int64 mask). The recipe pads a
    crop that does not fit (PadIfSmaller) then crops; RandomCrop's pad_if_needed does both."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    return v2.Compose([
        v2.RandomResize(min_size=int(0.5 * base), max_size=int(2.0 * base)),
        v2.RandomHorizontalFlip(0.5),
        v2.RandomCrop(size, pad_if_needed=True, fill={tv_tensors.Mask: IGNORE, "others": 0}),
        v2.PILToTensor(),
        v2.ToDtype({torch.Tensor: torch.float32, tv_tensors.Mask: torch.int64, "others": None},
                   scale=True),
        v2.Normalize(MEAN, STD),
        v2.ToPureTensor(),
    ])


class MaskFolder(torch.utils.data.Dataset):
    """DATA/images/*.jpg with DATA/masks/STEM.png, read with PIL as the recipe's datasets
    read them, through a joint transform of (image, mask)."""

    def __init__(self, root: Path, transform):
        self.images = sorted((root / "images").glob("*.jpg"))
        self.masks = root / "masks"
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from torchvision import tv_tensors

        path = self.images[i]
        image = Image.open(path).convert("RGB")
        mask = np.array(Image.open(self.masks / f"{path.stem}.png"))
        return self.transform(image, tv_tensors.Mask(torch.from_numpy(mask)))


# ----------------------------------------------------------------------------- the two sides


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def hand_model(plan: SegPlan, classes: int, aux: bool):
    """torchvision's model and the recipe's optimizer (the auxiliary head at ten times the
    learning rate), channels_last, compiled when the plan says."""
    from torchvision.models.segmentation import deeplabv3_resnet50

    torch._dynamo.reset()
    model = deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=classes,
                               aux_loss=aux).to(plan.device)
    model = model.to(memory_format=torch.channels_last)
    if plan.device == "cuda":
        torch.backends.cudnn.benchmark = True
    groups = [{"params": [p for p in model.backbone.parameters() if p.requires_grad]},
              {"params": [p for p in model.classifier.parameters() if p.requires_grad]}]
    if aux:
        groups.append({"params": [p for p in model.aux_classifier.parameters()
                                  if p.requires_grad], "lr": plan.lr * 10})
    optimizer = torch.optim.SGD(groups, lr=plan.lr, momentum=0.9, weight_decay=1e-4)
    return (torch.compile(model) if plan.compile else model), optimizer


def recipe_loss(outputs: dict, target: torch.Tensor) -> torch.Tensor:
    """The recipe's criterion: cross-entropy (ignore index 255) of `out`, plus 0.5 times that
    of `aux` where the model has it."""
    losses = {name: nn.functional.cross_entropy(x, target, ignore_index=IGNORE)
              for name, x in outputs.items()}
    return losses["out"] + 0.5 * losses["aux"] if "aux" in losses else losses["out"]


def hand_run(plan: SegPlan, folder: Path, classes: int, aux: bool) -> list[float]:
    """Images/s of each epoch of the recipe's training loop after the first."""
    torch.manual_seed(0)
    data = MaskFolder(folder, recipe_transform(plan.size, plan.base))
    loader = torch.utils.data.DataLoader(
        data, batch_size=plan.batch, shuffle=True, drop_last=True, num_workers=plan.workers,
        pin_memory=plan.device == "cuda", persistent_workers=plan.workers > 0)
    threads = torch.get_num_threads()
    if plan.threads:  # --smoke: one thread, which a busy machine slows down the least
        torch.set_num_threads(plan.threads)
    try:
        model, optimizer = hand_model(plan, classes, aux)
        return _hand_epochs(model, optimizer, loader, plan)[1:]
    finally:
        torch.set_num_threads(threads)


def _hand_epochs(model, optimizer, loader, plan: SegPlan) -> list[float]:
    """The recipe's training loop: images/s of each epoch."""
    schedule = torch.optim.lr_scheduler.PolynomialLR(
        optimizer, total_iters=len(loader) * plan.epochs, power=0.9)
    model.train()
    rates = []
    for _ in range(plan.epochs):
        seen, start = 0, time.perf_counter()
        for x, y in loader:
            x = x.to(plan.device, non_blocking=True, memory_format=torch.channels_last)
            y = y.to(plan.device, non_blocking=True)
            with torch.autocast(plan.device, dtype=torch.bfloat16):
                loss = recipe_loss(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss.item()  # the recipe's MetricLogger, every step
            seen += len(y)
        _sync(plan.device)
        rates.append(seen / (time.perf_counter() - start))
    return rates


def archdsl_options(plan: SegPlan) -> dict:
    """archdsl's settings for the comparison, as TrainConfig fields."""
    return dict(epochs=plan.epochs, batch_size=plan.batch, lr=plan.lr, momentum=0.9,
                weight_decay=1e-4, precision="bf16", compile=plan.compile, val_split=0.0,
                workers=plan.workers, threads=plan.threads, augment_on="gpu", quiet=True,
                device=plan.device)


def archdsl_run(spec: Path, params: dict, folder: Path, plan: SegPlan) -> list[float]:
    """Images/s of each epoch of `archdsl train` after the first (metrics.csv)."""
    torch._dynamo.reset()

    def log(line: str) -> None:  # no validation set, by design: that warning is expected
        if line.startswith("warning:") and "no validation images" not in line:
            print(line, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        run = train(spec, str(folder), TrainConfig(**archdsl_options(plan)), params=params,
                    out=str(Path(tmp) / "run"), log=log)
        with open(run / "metrics.csv") as f:
            return [float(r["images_per_s"]) for r in csv.DictReader(f)][1:]


def cli_equivalent(plan: SegPlan) -> str:
    """The `archdsl train` options that give archdsl_options."""
    o = archdsl_options(plan)
    return (f"--epochs {o['epochs']} --batch-size {o['batch_size']} --lr {o['lr']:g} "
            f"--momentum {o['momentum']:g} --weight-decay {o['weight_decay']:g} "
            f"--precision {o['precision']} --val-split 0 --workers {o['workers']} "
            f"--augment-on gpu --device {o['device']}" + " --compile" * o["compile"]
            + f" --threads {o['threads']}" * bool(o["threads"])
            + " --quiet")


# ----------------------------------------------------------------------------- the spec


def the_spec(size: int, folder: Path) -> tuple[Path, dict, str]:
    """(spec at size x size, its `--set` values, where they came from): specs/torchvision.toml's
    entry for deeplabv3_resnet50 with the auxiliary head (without it where that entry is
    missing). The copy in `folder` differs from the spec in its `input` line alone."""
    table = tomllib.loads((SPECS / "torchvision.toml").read_text())
    name = next((name for name in ENTRIES if name in table), None)
    if name is None:
        raise SystemExit(f"specs/torchvision.toml has no entry {' or '.join(ENTRIES)}: the "
                         "benchmark trains the spec it names")
    spec, params = SPECS / table[name]["spec"], dict(table[name].get("set", {}))
    origin = f"specs/torchvision.toml's [{name}]"
    text, count = re.subn(r"^input\s+3x\d+x\d+", f"input 3x{size}x{size}",
                          spec.read_text(), count=1, flags=re.MULTILINE)
    if count != 1:
        raise SystemExit(f"{spec} has no `input 3xHxW` line to set to {size}x{size}")
    copy = folder / spec.name
    copy.write_text(text)
    return copy, params, origin


def has_aux(spec: Path, params: dict, classes: int) -> tuple[bool, int]:
    """(whether the network has an auxiliary output, its forward MACs) with `classes`."""
    net = archdsl.load(spec, **{**params, "num_classes": classes})
    return any(o.aux is not None for o in net.graph.outputs), net.macs


# ----------------------------------------------------------------------------- the comparison


def _measure(side: str, measure, row: dict, device: str) -> None:
    """One run of one side: its counted epochs' rates added to row[side], or its error kept
    (one failure costs that side's figure, not the others')."""
    print(f"{side} ...", flush=True)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    try:
        rates = measure()
    except Exception as exc:  # noqa: BLE001
        row[side + "_error"] = f"{type(exc).__name__}: " \
            f"{(str(exc).splitlines() or [''])[0][:300]}"
        print(f"  failed: {row[side + '_error']}", flush=True)
        return
    row.setdefault(side, []).extend(rates)
    if device == "cuda":
        row[side + "_memory"] = max(row.get(side + "_memory", 0),
                                    torch.cuda.max_memory_allocated())
        torch.cuda.empty_cache()
    print("  " + ", ".join(_rate(r) for r in rates) + " img/s", flush=True)


def compare(plan: SegPlan) -> dict:
    """Every figure of the comparison, measured in this process on this device."""
    started = time.perf_counter()
    classes = len(shapes.CLASSES)
    result = {"plan": asdict(plan), "classes": classes}
    with tempfile.TemporaryDirectory() as tmp:
        print(f"writing {plan.images} images and masks ...", flush=True)
        folder = seg_folder(Path(tmp) / "data", plan.images, plan.sides)
        spec, params, origin = the_spec(plan.size, Path(tmp))
        aux, macs = has_aux(spec, params, classes)
        result.update(spec=origin, spec_file=spec.name, params=params, aux=aux, macs=macs)
        settings = f" {params}" if params else ""
        print(f"{origin}{settings} at {plan.size}x{plan.size}, auxiliary head: "
              f"{'yes' if aux else 'no'}", flush=True)
        row: dict = {}
        for _ in range(plan.rounds):
            _measure("archdsl", lambda: archdsl_run(spec, params, folder, plan), row,
                     plan.device)
            _measure("hand", lambda: hand_run(plan, folder, classes, aux), row, plan.device)
        result["row"] = row
    result["seconds"] = time.perf_counter() - started
    return result


def _rate(value: float) -> str:
    """Images per second to one decimal, or three figures below 10 (--smoke's are tiny)."""
    return f"{value:.1f}" if value >= 10 else f"{value:.3g}"


def ratio(result: dict) -> float | None:
    row = result["row"]
    if not row.get("archdsl") or not row.get("hand"):
        return None
    return statistics.median(row["archdsl"]) / statistics.median(row["hand"])


def section(result: dict, command: str) -> str:
    """The comparison as a docs section: settings, commands, figures."""
    plan, row = SegPlan(**result["plan"]), result["row"]
    if plan.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        device = f"{props.name} ({props.total_memory / 2**30:.0f} GiB)"
    else:
        device = f"{cpu_name()} (--smoke: the code, not the figures)"
    cuda_version = f", CUDA {torch.version.cuda}" if torch.version.cuda else ""
    settings = " ".join(f"--set {k}={v}" for k, v in result["params"].items())
    head = "with" if result["aux"] else "without"
    lines = [
        "## Segmentation training: `archdsl train` against torchvision's recipe by hand",
        "",
        f"`{command}` on {datetime.date.today()}: {device}, {os.cpu_count()} CPU cores; torch "
        f"{torch.__version__}, torchvision {__import__('torchvision').__version__}"
        f"{cuda_version}. deeplabv3_resnet50 {head} the auxiliary head, {result['classes']} "
        f"classes ({result['macs'] / 1e9:.1f} G multiply-adds forward, archdsl's count), "
        f"trained at {plan.size}x{plan.size}, batch {plan.batch}, bf16 autocast, "
        "channels_last, " + ("torch.compile, " if plan.compile else "no compilation, ")
        + f"SGD lr {plan.lr:g} momentum 0.9 weight decay 1e-4, {plan.workers} loader workers"
        + (f" and {plan.threads} CPU thread(s)" if plan.threads else "")
        + f" on each side. The data: {plan.images} JPEGs of archdsl's shapes, {plan.sides[0]} to "
        f"{plan.sides[1]} pixels a side, with palette PNG masks. {plan.rounds} run(s) of each "
        f"side, alternating, of {plan.epochs} epochs, the first not counted.",
        "",
        "- **hand**: torchvision.models.segmentation.deeplabv3_resnet50 trained as "
        "references/segmentation/train.py trains it: SegmentationPresetTrain in the loader "
        f"(PIL, transforms.v2: RandomResize {plan.base // 2} to {plan.base * 2}, flip, padded "
        f"RandomCrop {plan.size}, normalise), the polynomial schedule, cross-entropy with "
        "ignore index 255 on `out`" + (" + 0.5 x on `aux`" if result["aux"] else "")
        + ", loss.item() every step.",
        f"- **archdsl**: specs/{result['spec_file']} ({result['spec']}), its `input` line set "
        f"to 3x{plan.size}x{plan.size}, through "
        f"`archdsl train SPEC DATA {settings + ' ' if settings else ''}{cli_equivalent(plan)}` "
        "(crops and flips of image and mask on the device; its random resized crop in place "
        "of the recipe's resize and crop); images_per_s of metrics.csv.",
        "",
        "| model | hand (img/s) | archdsl (img/s) | archdsl / hand |",
        "|---|---:|---:|---:|",
    ]
    cells = [f"{_rate(statistics.median(row[s]))} ({_rate(min(row[s]))}-{_rate(max(row[s]))})"
             if row.get(s) else "failed" for s in ("hand", "archdsl")]
    r = ratio(result)
    lines.append(f"| deeplabv3_resnet50, {plan.size}x{plan.size} | {cells[0]} | {cells[1]} | "
                 f"{f'{r:.2f}' if r is not None else 'n/a'} |")
    lines += ["", "Medians of the counted epochs, their range in brackets. "
                  f"The comparison took {result['seconds']:.0f} s."]
    memory = [f"{s} {row[s + '_memory'] / 2**30:.1f} GiB" for s in ("hand", "archdsl")
              if s + "_memory" in row]
    if memory:
        lines[-1] += " Peak GPU memory: " + ", ".join(memory) + "."
    errors = [f"- {s}: {row[s + '_error']}" for s in ("hand", "archdsl") if s + "_error" in row]
    if errors:
        lines += ["", "Failures:", ""] + errors
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and epochs")
    parser.add_argument("--smoke", action="store_true",
                        help="the comparison's code on the CPU, tiny; nothing written")
    parser.add_argument("--compile", action="store_true", help="torch.compile on both sides")
    parser.add_argument("--doc", type=Path, default=DOC, help="the Markdown file to update")
    args = parser.parse_args(argv)
    if not args.smoke and not torch.cuda.is_available():
        print("seg_speed.py measures on a CUDA GPU and PyTorch sees none here: nothing was "
              "measured or written. Run it on a machine with one, or give --smoke to run its "
              "code on the CPU at a tiny size.", file=sys.stderr)
        sys.exit(1)
    plan = SegPlan.make(args.quick, args.smoke, args.compile)
    result = compare(plan)
    command = "python benchmarks/seg_speed.py" + " --smoke" * args.smoke + \
        " --quick" * args.quick + " --compile" * args.compile
    text = section(result, command)
    print(text)
    if any(k.endswith("_error") for k in result["row"]):
        sys.exit(1)
    if not args.smoke:
        write_section(text, "seg_speed_gpu", args.doc)


if __name__ == "__main__":
    main()
