"""Compiled spec vs hand-written torchvision model: forward + backward, interleaved in one process.

    python benchmarks/backend_speed.py                 # CPU (or CUDA when present), writes docs
    python benchmarks/backend_speed.py --spec resnet18 --batch 8 --size 160 --rounds 20

Each round times one training step (forward, cross-entropy, backward) of both models on the
same batch, alternating which goes first (ABBA), after warm-up steps. The figure is the
ratio of medians, archdsl / torchvision: 1.00 means equally fast. On CUDA the script also
runs bf16 autocast with channels_last, eagerly and under torch.compile.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archdsl  # noqa: E402
from archdsl.torch_backend import transfer_weights  # noqa: E402
from docsection import cpu_name, write_section  # noqa: E402



def step_time(model, x, y, device, autocast_dtype=None) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def compare(spec: str, batch: int, size: int, rounds: int, warmup: int, device: torch.device,
            channels_last=False, autocast_dtype=None, compile_=False) -> dict:
    torch.manual_seed(0)
    reference = getattr(torchvision.models, spec)(weights=None)
    ours = archdsl.build(ROOT / "specs" / f"{spec}.arch")
    transfer_weights(reference, ours)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    models = {"archdsl": ours, "torchvision": reference}
    for name, m in models.items():
        m.to(device=device, memory_format=fmt).train()
        if compile_:
            models[name] = torch.compile(m)
    x = torch.randn(batch, 3, size, size, device=device).to(memory_format=fmt)
    y = torch.randint(0, 1000, (batch,), device=device)
    times = {name: [] for name in models}
    for i in range(warmup + rounds):
        order = list(models) if i % 2 == 0 else list(reversed(models))
        for name in order:
            models[name].zero_grad(set_to_none=True)
            t = step_time(models[name], x, y, device, autocast_dtype)
            if i >= warmup:
                times[name].append(t)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    return {"archdsl_s": med["archdsl"], "torchvision_s": med["torchvision"],
            "ratio": med["archdsl"] / med["torchvision"],
            "images_per_s": batch / med["archdsl"]}


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"
    return f"{cpu_name()}, {torch.get_num_threads()} threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default="resnet50")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    batch = args.batch or (128 if cuda else 4)
    rounds = args.rounds or (30 if cuda else 12)
    runs = [("eager, fp32", {})]
    if cuda:
        torch.backends.cudnn.benchmark = True
        runs += [("eager, bf16 autocast, channels_last",
                  {"channels_last": True, "autocast_dtype": torch.bfloat16}),
                 ("torch.compile, bf16 autocast, channels_last",
                  {"channels_last": True, "autocast_dtype": torch.bfloat16, "compile_": True})]
    rows = []
    for label, options in runs:
        r = compare(args.spec, batch, args.size, rounds, args.warmup, device, **options)
        rows.append((label, r))
        print(f"{label:45s} archdsl {r['archdsl_s'] * 1e3:8.1f} ms  torchvision "
              f"{r['torchvision_s'] * 1e3:8.1f} ms  ratio {r['ratio']:.3f}  "
              f"({r['images_per_s']:.1f} img/s)", flush=True)
    if args.no_write:
        return
    lines = [
        f"## Compiled module vs torchvision ({args.spec}, {device.type})",
        "",
        f"`python benchmarks/backend_speed.py` on {datetime.date.today()}: {machine(device)}; "
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, Python "
        f"{platform.python_version()}. One training step (forward, cross-entropy, backward) of "
        f"batch {batch} at {args.size}x{args.size}, both models in one process, interleaved "
        f"ABBA, {rounds} timed rounds after {args.warmup} warm-up; medians.",
        "",
        "| mode | archdsl (ms/step) | torchvision (ms/step) | ratio archdsl/torchvision |",
        "|---|---:|---:|---:|",
    ]
    for label, r in rows:
        lines.append(f"| {label} | {r['archdsl_s'] * 1e3:.1f} | {r['torchvision_s'] * 1e3:.1f} | "
                     f"{r['ratio']:.3f} |")
    if not cuda:
        lines += ["", "The GPU rows (eager and torch.compile with bf16 and channels_last) come from "
                      "the same script on a CUDA machine; they have not been measured yet."]
    write_section("\n".join(lines) + "\n", f"backend_speed_{device.type}")


if __name__ == "__main__":
    main()
