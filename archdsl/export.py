"""`archdsl export`: a checked network in the formats people deploy.

    python       standalone PyTorch source (archdsl/codegen.py)
    onnx         torch.onnx.export (the dynamo exporter), opset chosen by torch
    torchscript  torch.jit.trace, saved with torch.jit.save
    exported     torch.export.export, saved with torch.export.save (.pt2)

Weights come from a checkpoint when one is given (archdsl/checkpoints.py: a safetensors file,
or a state_dict saved with torch.save, read with weights_only=True, so loading never executes
code); otherwise the module keeps its initialisation. Files are written next to their
destination and renamed into place, so a failed export leaves nothing half-written.
"""

from __future__ import annotations

from pathlib import Path

from .checkpoints import fit_state, read_state
from .files import atomic_write

FORMATS = {"python": ".py", "onnx": ".onnx", "torchscript": ".ts", "exported": ".pt2"}


class ExportError(Exception):
    """An export that cannot be done, with a message for the user."""


def default_output(spec_path: Path, fmt: str) -> Path:
    return Path(spec_path.stem + FORMATS[fmt])


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
        fit_state(network, model, read_state(weights), f"the checkpoint {weights}")
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
