"""`archdsl export`: a checked network in the formats people deploy.

    python       standalone PyTorch source (archdsl/codegen.py)
    onnx         torch.onnx.export (the dynamo exporter), opset chosen by torch
    torchscript  torch.jit.trace, saved with torch.jit.save
    exported     torch.export.export, saved with torch.export.save (.pt2)

Weights come from a checkpoint when one is given (a safetensors file, or a state_dict saved
with torch.save, read with weights_only=True: loading never executes code); otherwise the
module keeps its initialisation. Files are written next to their destination and renamed
into place, so a failed export leaves nothing half-written.
"""

from __future__ import annotations

from pathlib import Path

from .files import atomic_write

FORMATS = {"python": ".py", "onnx": ".onnx", "torchscript": ".ts", "exported": ".pt2"}


class ExportError(Exception):
    """An export that cannot be done, with a message for the user."""


class CheckpointMismatch(ExportError):
    """The checkpoint's tensors are not the spec's."""


def default_output(spec_path: Path, fmt: str) -> Path:
    return Path(spec_path.stem + FORMATS[fmt])


def load_checkpoint(model, path: Path) -> None:
    """Load a state_dict into `model`, naming what does not fit."""
    import torch

    if not path.is_file():
        raise ExportError(f"cannot read the checkpoint {path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except ImportError:
        raise ExportError("reading .safetensors needs the safetensors package: "
                          "pip install safetensors") from None
    except Exception as exc:  # noqa: BLE001 - any unreadable file becomes one clear message
        raise ExportError(f"cannot read the checkpoint {path}: {exc}") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ExportError(f"{path} holds no state_dict")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        first = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise CheckpointMismatch(f"the checkpoint {path} does not fit this spec: {len(missing)} "
                                 f"tensors missing, {len(unexpected)} unexpected (first: {first})")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointMismatch(f"the checkpoint {path} does not fit this spec: {key} has "
                                     f"shape {tuple(value.shape)}, the spec needs "
                                     f"{tuple(expected[key].shape)}")
    model.load_state_dict(state)


def export(network, fmt: str, out: Path, weights: Path | None = None) -> Path:
    """Write `network` to `out` in `fmt`; return the path written."""
    if fmt == "python":
        if weights is not None:
            raise ExportError("a Python file holds no weights; export the code, then load the "
                              "checkpoint with model.load_state_dict(...)")
        from .codegen import to_python

        atomic_write(out, lambda tmp: Path(tmp).write_text(to_python(network)))
        return out

    import torch

    model = network.to_torch().eval()
    if weights is not None:
        load_checkpoint(model, weights)
    example = torch.randn(2, *network.input_shape)
    batch = ({0: torch.export.Dim("batch")},)  # any batch size, one dynamic dimension
    if fmt == "onnx":
        def write(tmp):
            torch.onnx.export(model, (example,), tmp, dynamo=True, external_data=False,
                              input_names=["input"], output_names=["output"],
                              dynamic_shapes=batch, verbose=False)
    elif fmt == "torchscript":
        def write(tmp):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                torch.jit.save(torch.jit.trace(model, example), tmp)
    elif fmt == "exported":
        def write(tmp):
            torch.export.save(torch.export.export(model, (example,), dynamic_shapes=batch), tmp)
    else:
        raise ExportError(f"unknown format {fmt!r}")
    atomic_write(out, write)
    return out
