"""What each training-recipe option costs on top of the fast GPU setup, in one process.

    python benchmarks/recipe_cost.py            # CUDA: the rows below, written to docs/benchmarks.md
    python benchmarks/recipe_cost.py --quick    # fewer images and epochs (a 10-minute slot)
    python benchmarks/recipe_cost.py --smoke    # the same code on the CPU, tiny, printed only

The baseline is issue 6's GPU configuration of `archdsl train`: resnet18 at 224x224 (synthetic
images through archdsl's input pipeline, decoded once into the memory cache, cropped, flipped
and normalised on the GPU), bf16 autocast, channels_last, torch.compile, SGD. Each other row
adds one option of issue 14 to it (--init from a torchvision-structured state_dict, which
must compile as the fresh model does; --mixup and --cutmix; --ema; --augment trivialaugment;
--random-erasing; --sampler balanced), and the last row adds them all, as torchvision's
ResNet-50 recipe does. The figure is images/s of the training pass (metrics.csv's
images_per_s, median of the epochs after the first, which compiles), and its ratio to the
baseline measured in the same run: 1.00 means the option is free.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archdsl.train import TrainConfig, train  # noqa: E402
from docsection import DOC, cpu_name, write_section  # noqa: E402
from train_speed import spec_at  # noqa: E402

ROWS = {  # label -> the TrainConfig fields added to the baseline ("init" is filled in)
    "baseline": {},
    "--init STATE_DICT": {"init": None},
    "--mixup 0.2 --cutmix 1.0": {"mixup": 0.2, "cutmix": 1.0},
    "--ema 0.9999": {"ema": 0.9999},
    "--augment trivialaugment": {"augment": "trivialaugment"},
    "--random-erasing 0.25": {"random_erasing": 0.25},
    "--sampler balanced": {"sampler": "balanced"},
    "all of the above": {"init": None, "mixup": 0.2, "cutmix": 1.0, "ema": 0.9999,
                         "augment": "trivialaugment", "random_erasing": 0.25,
                         "sampler": "balanced"},
}


@dataclasses.dataclass
class Plan:
    device: str
    size: int = 224
    batch: int = 256
    images: int = 12_800
    classes: int = 10
    epochs: int = 4  # the first compiles and is not counted
    compile: bool = True
    workers: int = 8

    @classmethod
    def make(cls, quick: bool, smoke: bool) -> "Plan":
        if smoke:
            return cls("cpu", size=32, batch=8, images=32, classes=2, epochs=2, compile=False,
                       workers=0)
        workers = min(8, os.cpu_count() or 1)
        return cls("cuda", images=6400, epochs=3, workers=workers) if quick else \
            cls("cuda", workers=workers)


def state_dict_file(folder: Path) -> Path:
    """A torchvision-structured state_dict of resnet18 (torchvision's own module, 1000
    classes: the head does not fit and starts fresh, as when fine-tuning)."""
    import torchvision

    path = folder / "resnet18-torchvision.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


def options(plan: Plan, added: dict) -> dict:
    return dict(epochs=plan.epochs, batch_size=plan.batch, lr=0.1, momentum=0.9,
                weight_decay=1e-4, label_smoothing=0.1, precision="bf16" if
                plan.device == "cuda" else "fp32", compile=plan.compile, val_split=0.0,
                workers=plan.workers, quiet=True, device=plan.device, cache="memory",
                augment_on="gpu", **added)


def rate(spec: Path, plan: Plan, added: dict, folder: Path) -> float:
    """Median images/s of the training epochs after the first."""
    torch._dynamo.reset()
    run = train(spec, f"synthetic:{plan.images}x{plan.classes}",
                TrainConfig(**options(plan, added)), out=str(folder / "run"), exist_ok=True,
                log=lambda line: None)
    with open(run / "metrics.csv") as f:
        rates = [float(r["images_per_s"]) for r in csv.DictReader(f)]
    return statistics.median(rates[1:])


def measure(plan: Plan) -> dict:
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = spec_at(ROOT / "specs" / "resnet18.arch", plan.size, folder)
        weights = state_dict_file(folder)
        for label, added in ROWS.items():
            added = {k: (str(weights) if k == "init" else v) for k, v in added.items()}
            print(f"{label} ...", flush=True)
            row = {"label": label}
            try:
                row["rate"] = rate(spec, plan, added, folder)
            except Exception as exc:  # noqa: BLE001 - one failure costs one row
                row["error"] = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
                print(f"  failed: {row['error']}", flush=True)
            else:
                print(f"  {row['rate']:.0f} img/s", flush=True)
            rows.append(row)
            if plan.device == "cuda":
                torch.cuda.empty_cache()
    return {"plan": dataclasses.asdict(plan), "rows": rows,
            "seconds": time.perf_counter() - started}


def section(results: dict, command: str) -> str:
    plan = results["plan"]
    if plan["device"] == "cuda":
        props = torch.cuda.get_device_properties(0)
        device = f"{props.name} ({props.total_memory / 2**30:.0f} GiB)"
    else:
        device = cpu_name()
    base = results["rows"][0].get("rate")
    lines = ["## What each training-recipe option costs on a GPU", "",
             f"`{command}` on {datetime.date.today()}: {device}; torch {torch.__version__}. "
             f"resnet18 at {plan['size']}x{plan['size']}, batch {plan['batch']}, "
             f"{plan['images']:,} synthetic images in {plan['classes']} classes, "
             f"{plan['epochs']} epochs (the first not counted), {plan['workers']} loader "
             "workers, memory cache, the GPU input pipeline, "
             + ("bf16 autocast, channels_last" if plan["device"] == "cuda" else "fp32")
             + (", torch.compile" if plan["compile"] else ", no compilation")
             + "; each row adds its options to the baseline.", "",
             "| options | img/s | / baseline |", "|---|---:|---:|"]
    for r in results["rows"]:
        if "rate" in r:
            ratio = f"{r['rate'] / base:.2f}" if base else "n/a"
            lines.append(f"| {r['label']} | {r['rate']:.0f} | {ratio} |")
        else:
            lines.append(f"| {r['label']} | failed: {r['error']} | n/a |")
    lines += ["", f"The whole run took {results['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and epochs")
    parser.add_argument("--smoke", action="store_true",
                        help="the same code on the CPU, tiny; printed, nothing written")
    parser.add_argument("--doc", type=Path, default=DOC, help="the Markdown file to update")
    args = parser.parse_args(argv)
    if not args.smoke and not torch.cuda.is_available():
        print("no CUDA GPU: these figures wait for one (`python benchmarks/recipe_cost.py "
              "--quick` there); `--smoke` runs the code here", flush=True)
        return 0
    results = measure(Plan.make(args.quick, args.smoke))
    command = "python benchmarks/recipe_cost.py" + " --quick" * args.quick + \
        " --smoke" * args.smoke
    text = section(results, command)
    if args.smoke:
        print(text)
    else:
        write_section(text, "recipe_cost_gpu", args.doc)
    return 1 if any("error" in r for r in results["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
