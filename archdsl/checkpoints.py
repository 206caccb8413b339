"""Reading weights without executing code, and fitting them to a spec with a clear refusal.

Weights are safetensors files, or state_dicts saved by torch.save and read with
`weights_only=True` (PyTorch's restricted loader: tensors and plain containers, no code).
A truncated, tampered or foreign file, or one holding NaN or infinite values, is refused
naming the file; one that does not fit names the first layer that differs and its spec line.
"""

from __future__ import annotations

import warnings
from pathlib import Path


class CheckpointError(Exception):
    """A checkpoint that cannot be read, with a message for the user."""


class CheckpointMismatch(CheckpointError):
    """The checkpoint's tensors are not the spec's."""


def why_unloadable(exc: Exception) -> str:
    """A short reason a checkpoint did not load: the code a pickle asked for, or the error."""
    import re

    text = str(exc)
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        return f"it asks for {found.group(1)}, which could run code, so it was refused"
    if "WeightsUnpickler error:" in text:  # torch's text goes on to suggest weights_only=False
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0]
        return f"the weights-only loader refused it: {detail}"
    first = (text.strip().splitlines() or [""])[0]
    if len(first) > 100:
        first = first[:100].rsplit(" ", 1)[0] + " …"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def read_state(path: Path) -> dict:
    """A state_dict from a .safetensors file or a torch.save'd dict (loaded weights-only)."""
    import torch

    path = Path(path)
    if not path.is_file():
        reason = "it is a folder" if path.is_dir() else "no such file"
        raise CheckpointError(f"cannot read the checkpoint {path}: {reason}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            with warnings.catch_warnings():  # torch's notes on odd pickles: the error says it
                warnings.simplefilter("ignore")
                state = torch.load(str(path), map_location="cpu", weights_only=True)
    except OSError as exc:  # the file is fine, reading it is not allowed or failed
        raise CheckpointError(f"cannot read the checkpoint {path}: "
                              f"{exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - truncated, tampered or foreign: one clear message
        raise CheckpointError(f"cannot read the checkpoint {path}: it is damaged or not a "
                              f"checkpoint ({why_unloadable(exc)}); nothing in it was run. Use "
                              "another checkpoint, or train the run again") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not state or \
            not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"cannot read the checkpoint {path}: it holds no weights (a "
                              "state_dict of tensors)")
    bad = next((k for k, v in state.items()
                if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise CheckpointError(f"cannot use the checkpoint {path}: its {bad} holds NaN or "
                              "infinite values; it was damaged, or saved from a run that diverged")
    return state


def layer_of(network, key: str, with_tensor: bool = False) -> str:
    """`layer basic3.residual1.body.conv1 (specs/resnet18.arch:5)` for a state_dict key (with
    `with_tensor`: `layer conv1's weight (…)`)."""
    name, _, tensor = key.rpartition(".")
    graph = network.graph
    if name in graph:
        span = graph.layer(name).span
        what = f"layer {name}'s {tensor}" if with_tensor else f"layer {name}"
        return f"{what} ({span.file}:{span.line})"
    return f"tensor {key}"


def fit_state(network, model, state: dict, source: str) -> None:
    """Load `state` into `model` (compiled from `network`), or refuse naming the first layer
    whose tensors are missing, extra or of another shape."""
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise CheckpointMismatch(f"{source} does not fit this spec: it has no {key} for "
                                     f"{layer_of(network, key)}")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointMismatch(
                f"{source} does not fit this spec: {layer_of(network, key)} needs "
                f"{key.rsplit('.', 1)[1]} of shape {'x'.join(map(str, tensor.shape))}, the "
                f"checkpoint has {'x'.join(map(str, state[key].shape))}")
    extra = [k for k in state if k not in expected]
    if extra:
        raise CheckpointMismatch(f"{source} does not fit this spec: it has {len(extra)} tensors "
                                 f"the spec lacks, the first {extra[0]}")
    model.load_state_dict(state)
