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

from .checkpoints import CheckpointError, fit_state, read_state
from .errors import EXIT_USAGE, ArchdslError
from .files import atomic_write

FORMATS = {"python": ".py", "onnx": ".onnx", "torchscript": ".ts", "exported": ".pt2"}


class ExportError(ArchdslError):
    """An export that cannot be done, with a message for the user (a usage error, exit 2)."""

    exit_code = EXIT_USAGE


def default_output(spec_path: Path, fmt: str) -> Path:
    return Path(spec_path.stem + FORMATS[fmt])


EXAMPLE_BATCH = 2  # torch.export specialises a batch of 1; 2 keeps the batch dynamic


def _refuse_a_huge_example(network, fmt: str) -> None:
    """Tracing runs the network once on an example batch: refuse, before allocating it,
    when the batch, the layer outputs and the parameters cannot fit in memory."""
    from math import prod

    from .memory import memory_size
    from .report import human_bytes

    per_sample = 4 * (prod(network.input_shape) + network.memory["activations"])
    need = EXAMPLE_BATCH * per_sample + network.memory["params"]
    limit = memory_size()
    if need > limit:
        raise ExportError(
            f"exporting to {fmt} runs the network once on an example batch of {EXAMPLE_BATCH} "
            f"{'x'.join(map(str, network.input_shape))} inputs, which needs about "
            f"{human_bytes(need)} (inputs, layer outputs and parameters), more than the "
            f"{human_bytes(limit)} of memory here; export for a smaller input with --input "
            "(the exported program keeps the input's size; only the batch is free)")


def export(network, fmt: str, out: Path, weights: Path | None = None) -> Path:
    """Write `network` to `out` in `fmt`; return the path written."""
    if fmt == "python":
        if weights is not None:
            raise ExportError("a Python file holds no weights; export the code, then load the "
                              "checkpoint with model.load_state_dict(...)")
        from .codegen import to_python

        atomic_write(out, lambda tmp: Path(tmp).write_text(to_python(network)))
        return out

    _refuse_a_huge_example(network, fmt)
    import torch

    model = network.to_torch().eval()
    if weights is not None:
        try:
            state = read_state(weights)
        except CheckpointError as exc:  # --weights names no usable file: a usage error
            raise ExportError(str(exc)) from None
        fit_state(network, model, state, f"the checkpoint {weights}")  # a mismatch fails (1)
    example = torch.randn(EXAMPLE_BATCH, *network.input_shape)
    batch = ({0: torch.export.Dim("batch")},)  # any batch size, one dynamic dimension
    # the outputs eval returns, by name: ONNX's output names, torch.export's dict keys
    names = [o.name for o in network.graph.outputs if o.aux is None]
    if fmt == "onnx":
        def write(tmp):
            torch.onnx.export(model, (example,), tmp, dynamo=True, external_data=False,
                              input_names=["input"],
                              output_names=names if len(names) > 1 else ["output"],
                              dynamic_shapes=batch, verbose=False)
    elif fmt == "torchscript":
        def write(tmp):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                torch.jit.save(torch.jit.trace(model, example), tmp)
    elif fmt == "exported":
        if len(names) > 1:
            model.flow.as_dict = True

        def write(tmp):
            torch.export.save(torch.export.export(model, (example,), dynamic_shapes=batch), tmp)
    else:
        raise ExportError(f"unknown format {fmt!r}")
    atomic_write(out, write)
    return out
