"""The families issue 23 added, compiled from specs/, against their reference modules: timm's
poolformer_s12, mixer_b16_224 and nf_resnet50, and the 2015 U-Net written from the paper
(tests/unet_reference.py). One training step each (forward, loss, backward), both models in
one process, interleaved ABBA, the weights copied across.

    python benchmarks/family_speed.py                  # CPU (or CUDA when present), writes docs
    python benchmarks/family_speed.py --quick --no-write

The figure is the median of the rounds' ratios, archdsl / reference (1.00: equally fast), as in
benchmarks/backend_speed.py, whose timing loop this reuses. The classifiers take
cross-entropy against random labels, the U-Net per-pixel cross-entropy against a random mask.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import archdsl  # noqa: E402
from archdsl.transfer import transfer_weights  # noqa: E402
from backend_speed import interleaved, machine  # noqa: E402
from docsection import write_section  # noqa: E402
from helpers import copy_in_order  # noqa: E402  (tests/helpers.py)

TARGET = 1.03  # the compiled spec at most 3% slower than its reference, as for the zoo


def timm_model(name: str, **kwargs):
    import timm

    return timm.create_model(name, pretrained=False, **kwargs)


def unet_model(size: int):
    from unet_reference import UNet

    return UNet(in_channels=1, num_classes=2)


# family -> (spec, its settings at `size`, the reference at `size`, input channels, dense)
FAMILIES = {
    "poolformer_s12": ("poolformer_s12.arch", lambda s: {},
                       lambda s: timm_model("poolformer_s12"), 3, False),  # Scale: C, not Cx1x1
    "mixer_b16": ("mixer_b16.arch", lambda s: {"patches": (s // 16) ** 2},
                  lambda s: timm_model("mixer_b16_224", img_size=s), 3, False),
    "nf_resnet50": ("nf_resnet50.arch", lambda s: {}, lambda s: timm_model("nf_resnet50"), 3,
                    False),
    "unet": ("unet.arch", lambda s: {}, unet_model, 1, True),
}


def pair(name: str, size: int):
    spec, settings, make, channels, dense = FAMILIES[name]
    torch.manual_seed(0)
    reference = make(size)
    ours = archdsl.build(ROOT / "specs" / spec, input_shape=(channels, size, size),
                         **settings(size))
    (copy_in_order if name == "poolformer_s12" else transfer_weights)(reference, ours)
    return ours, reference, channels, dense


def measure(name: str, batch: int, size: int, rounds: int, warmup: int, device) -> dict:
    ours, reference, channels, dense = pair(name, size)
    models = {"archdsl": ours.to(device).train(), "reference": reference.to(device).train()}
    x = torch.randn(batch, channels, size, size, device=device)
    y = torch.randint(0, 2, (batch, size, size), device=device) if dense else None
    r = interleaved(models, x, rounds, warmup, device, y=y, reference="reference")
    return {"family": name, **r, "range": r["ratio_range"]}


def section(rows, batch, size, rounds, warmup, device, command) -> str:
    import timm

    lines = [
        f"## Issue 23's families, compiled, vs their references ({device.type})",
        "",
        f"`{command}` on {datetime.date.today()}: {machine(device)}; torch {torch.__version__}, "
        f"timm {timm.__version__}, Python {platform.python_version()}. One training step "
        f"(forward, cross-entropy, backward) of batch {batch} at {size}x{size}, both models in "
        f"one process, interleaved ABBA, {rounds} timed rounds after {warmup} warm-up, weights "
        f"copied across; the U-Net's reference is the paper's network written in "
        f"tests/unet_reference.py. Target: ratio <= {TARGET}. Load average at the end: "
        f"{os.getloadavg()[0]:.1f}.",
        "",
        "| family | archdsl (ms/step) | reference (ms/step) | rounds' ratios, min-max | "
        "ratio (median of rounds) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        verdict = "meets" if r["ratio"] <= TARGET else "misses"
        lines.append(f"| {r['family']} | {r['archdsl_s'] * 1e3:.1f} | {r['reference_s'] * 1e3:.1f}"
                     f" | {r['range'][0]:.2f}-{r['range'][1]:.2f} | {r['ratio']:.3f} ({verdict} "
                     f"the target) |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", nargs="*", default=list(FAMILIES))
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default=None)
    parser.add_argument("--quick", action="store_true", help="batch 2 at 64x64, 4 rounds")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    batch = args.batch or (2 if args.quick else 64 if cuda else 4)
    size = args.size or (64 if args.quick else 224 if cuda else 128)
    rounds = args.rounds or (4 if args.quick else 20 if cuda else 10)
    rows = []
    for name in args.families:
        r = measure(name, batch, size, rounds, args.warmup, device)
        rows.append(r)
        print(f"{name:16s} archdsl {r['archdsl_s'] * 1e3:8.1f} ms  reference "
              f"{r['reference_s'] * 1e3:8.1f} ms  ratio {r['ratio']:.3f}", flush=True)
    if not args.no_write:
        command = "python benchmarks/family_speed.py " + " ".join(sys.argv[1:])
        write_section(section(rows, batch, size, rounds, args.warmup, device, command.strip()),
                      f"family_speed_{device.type}")


if __name__ == "__main__":
    main()
