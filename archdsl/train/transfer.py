"""Starting from weights (`--init SOURCE`) and freezing layers (`--freeze NAME...`,
`--unfreeze-at EPOCH`).

A source's tensors are mapped onto the spec's by structure, not by name: both state_dicts in
module order, the k-th tensor of each shape in the source goes to the k-th tensor of that
shape in the spec (as archdsl.transfer_weights does, so torchvision's own names and archdsl's
never need to agree). A shape that the two hold a different number of times is not guessed
at: the spec's tensors of that shape keep their fresh initialisation (re-initialised; a head
for another number of classes) and the source's are unused. One summary says which.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from .errors import TrainError


# ----------------------------------------------------------------------------- sources


def _natural(key: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]


def _run_order(run: Path, saved: dict) -> list[str]:
    """The module order of the network an archdsl run trained (its spec copy, built on the
    meta device)."""
    from ..network import load

    network = load(run / saved["spec"], **dict(saved.get("parameters") or {}))
    with torch.device("meta"):
        return list(network.to_torch().state_dict())


def torchvision_file(spec_path: Path, params: dict) -> Path:
    """The local file of the torchvision weights of the model specs/torchvision.toml says
    `spec_path` (with `params`) is; TrainError naming the file and folder when it is absent
    (nothing is downloaded)."""
    import torchvision

    name = _torchvision_name(spec_path, params)
    weights = torchvision.models.get_model_weights(name).DEFAULT
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    path = folder / Path(weights.url).name
    if not path.is_file():
        raise TrainError(f"--init torchvision needs {name}'s weights ({weights}) in {path}, "
                         f"which is not there; nothing is downloaded. Put the file {path.name} "
                         f"(from {weights.url}) in {folder} (the folder follows TORCH_HOME)")
    return path


def _torchvision_name(spec_path: Path, params: dict) -> str:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    table = Path(spec_path).resolve().parent / "torchvision.toml"
    if not table.is_file():  # a copy of a zoo spec elsewhere: the project's own table
        table = Path(__file__).resolve().parents[2] / "specs" / "torchvision.toml"
    zoo = tomllib.loads(table.read_text()) if table.is_file() else {}
    mine = {k: v for k, v in params.items() if k != "num_classes"}
    for name, entry in zoo.items():
        if entry.get("spec") == Path(spec_path).name and entry.get("set", {}) == mine:
            return name
    raise TrainError(f"--init torchvision: {spec_path} is none of torchvision's models that "
                     f"{table} lists (with these parameters); give a weights file instead")


def read_source(source: str, spec_path: Path, params: dict) -> tuple[dict, str]:
    """The source's tensors in module order, and the file they came from."""
    from ..checkpoints import CheckpointError, read_state
    from .run_folder import read_config

    path = Path(source)
    if source == "torchvision" and not path.exists():
        path = torchvision_file(spec_path, params)
    order = None
    if path.is_dir():
        saved = read_config(path)
        order = _run_order(path, saved)
        path = path / "best.safetensors"
    try:
        state = read_state(path)
    except CheckpointError as exc:
        raise TrainError(f"--init: {exc}") from None
    if isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if order is None and path.suffix == ".safetensors":
        order = sorted(state, key=_natural)  # safetensors does not keep the order
    if order is not None and set(order) == set(state):
        state = {k: state[k] for k in order}
    return state, str(path)


# ----------------------------------------------------------------------------- mapping


def mapped(source: dict, target: dict) -> tuple[list, list, list]:
    """(source key, target key) pairs, the target keys left re-initialised and the source
    keys unused: the k-th tensor of each shape to the k-th, for shapes both hold equally
    often."""
    def by_shape(state):
        out: dict[tuple, list[str]] = {}
        for k, v in state.items():
            out.setdefault(tuple(v.shape), []).append(k)
        return out

    src, dst = by_shape(source), by_shape(target)
    pairs, fresh, unused = [], [], []
    for shape, keys in dst.items():
        if len(src.get(shape, [])) == len(keys):
            pairs += zip(src[shape], keys)
        else:
            fresh += keys
            unused += src.get(shape, [])
    unused += [k for shape, keys in src.items() if shape not in dst for k in keys]
    order = {k: i for i, k in enumerate(target)}
    return sorted(pairs, key=lambda p: order[p[1]]), sorted(fresh, key=order.get), unused


def initialise_from(model: nn.Module, network, source: str, spec_path: Path,
                    params: dict) -> dict:
    """Load `source` into `model` by structure; the summary that config.json keeps."""
    from ..checkpoints import layer_of

    state, path = read_source(source, spec_path, params)
    target = model.state_dict()
    pairs, fresh, unused = mapped(state, target)
    if not any(target[d].numel() for _, d in pairs if not d.endswith("num_batches_tracked")):
        raise TrainError(f"--init {source}: none of its tensors fits {spec_path} (no shape in "
                         "common); give weights of the same architecture")
    with torch.no_grad():
        for s, d in pairs:
            target[d].copy_(state[s])
    return {"source": source, "file": path, "loaded": len(pairs),
            "values": sum(target[d].numel() for _, d in pairs),
            "reinitialised": [f"{k} {_shape(target[k])}" for k in fresh],
            "reinitialised_layers": sorted({layer_of(network, k) for k in fresh}),
            "unused": [f"{k} {_shape(state[k])}" for k in unused]}


def _shape(t) -> str:
    return "x".join(map(str, t.shape)) or "scalar"


def summary_line(info: dict) -> str:
    """The one line a run prints about --init."""
    line = (f"--init {info['source']}: loaded {info['loaded']} tensors ({info['values']:,} "
            f"values) from {info['file']}")
    if info["reinitialised"]:
        line += (f"; re-initialised {len(info['reinitialised'])} that do not fit (fresh, "
                 f"seeded): {', '.join(info['reinitialised_layers'][:4])}")
    if info["unused"]:
        line += f"; unused from the source: {', '.join(info['unused'][:4])}" + \
            (" …" if len(info["unused"]) > 4 else "")
    return line


# ----------------------------------------------------------------------------- freezing


def frozen_modules(model: nn.Module, names: list[str]) -> list[str]:
    """The module paths `names` freeze: a path as `check` and the errors show it
    (basic3.residual1.body.conv1), a group on it (basic3), or a block's name (basic: every
    call of it). TrainError for a name that is none."""
    paths = [n for n, m in model.named_modules() if n and any(True for _ in
                                                              m.parameters(recurse=False))]
    chosen = []
    for name in names:
        hits = [p for p in paths if p == name or p.startswith(name + ".")
                or re.sub(r"\d+$", "", p.split(".")[0]) == name]
        if not hits:
            tops = sorted({p.split(".")[0] for p in paths})
            raise TrainError(f"--freeze {name}: the spec has no layer or group of that name; "
                             f"its top-level names are {', '.join(tops[:12])}"
                             f"{' …' if len(tops) > 12 else ''}")
        chosen += [p for p in hits if p not in chosen]
    return chosen


def set_frozen(model: nn.Module, paths: list[str], frozen: bool) -> None:
    """Freeze (or thaw) the modules at `paths`: no gradients, and batch norm in eval mode
    (its running statistics stay as loaded). Called after model.train() each epoch."""
    modules = dict(model.named_modules())
    for path in paths:
        module = modules[path]
        for p in module.parameters(recurse=False):
            p.requires_grad_(not frozen)
        if frozen and isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
