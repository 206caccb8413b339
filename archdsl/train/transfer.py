"""Starting from weights (`--init SOURCE`) and freezing layers (`--freeze NAME...`,
`--unfreeze-at EPOCH`).

A source's tensors are mapped onto the spec's by structure, as archdsl.transfer_weights maps
them (checkpoints.pair_by_structure), so torchvision's own names and archdsl's never need to
agree: a module pairs with the module of the same tensor names and shapes (the k-th batch norm
of 64 channels with the k-th), name by name, and the tensors left go by order within each
shape. A shape that the two hold a different number of times is not guessed at: the spec's
tensors of that shape keep their fresh initialisation (re-initialised; a head for another
number of classes) and the source's are unused. One summary says which. What cannot be mapped
safely is refused in one line: tensors that no name tells apart, and integer, boolean or
complex values where the spec holds floating-point ones.

A classifier's weights onto a network built on its backbone (an ImageNet ResNet-50 for a
DeepLabv3) share the backbone's modules, in order, and little else: there the modules pair
from the first on, while each side's next module holds the same tensors, and what follows
(the classifier, the new head) is unused and re-initialised. Of the two mappings, the one
that loads more values is taken.

`--init torchvision` reads torchvision's weights of the model the spec is (specs/
torchvision.toml says which), and `--init torchvision:NAME` those of torchvision's model NAME
(`torchvision:resnet50`, the ImageNet classifier a segmentation backbone starts from), both
from torch's cache only.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import torch
from torch import nn

from .errors import TrainError, TrainUsageError


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


def torchvision_file(spec_path: Path, params: dict, name: str | None = None) -> Path:
    """The local file of the torchvision weights of model `name`, or of the model
    specs/torchvision.toml says `spec_path` (with `params`) is; TrainError naming the file and
    folder when it is absent (nothing is downloaded), or naming the models when `name` is
    none of torchvision's."""
    import torchvision

    name = name or _torchvision_name(spec_path, params)
    try:
        weights = torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError):
        close = difflib.get_close_matches(name, torchvision.models.list_models(), n=1)
        hint = f"did you mean `torchvision:{close[0]}`? " if close else ""
        raise TrainError(f"--init torchvision:{name}: torchvision has no model of that name; "
                         f"{hint}torchvision.models.list_models() lists them") from None
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
            return entry.get("model", name)  # googlenet_aux: googlenet's weights
    raise TrainError(f"--init torchvision: {spec_path} is none of torchvision's models that "
                     f"{table} lists (with these parameters); give a weights file instead")


def read_source(source: str, spec_path: Path, params: dict) -> tuple[dict, str]:
    """The source's tensors in module order, and the file they came from."""
    from ..checkpoints import CheckpointError, read_state
    from .run_folder import read_config

    path = Path(source)
    if source == "torchvision" and not path.exists():
        path = torchvision_file(spec_path, params)
    elif source.startswith("torchvision:") and not path.exists():
        path = torchvision_file(spec_path, params, source.partition(":")[2])
    order = None
    if path.is_dir():
        saved = read_config(path)
        order = _run_order(path, saved)
        path = path / "best.safetensors"
    try:
        state = read_state(path)
    except CheckpointError as exc:
        raise TrainError(f"--init: {exc}") from None
    if order is None and path.suffix == ".safetensors":
        order = sorted(state, key=_natural)  # safetensors does not keep the order
    if order is not None and set(order) == set(state):
        state = {k: state[k] for k in order}
    return state, str(path)


# ----------------------------------------------------------------------------- mapping


def mapped(source: dict, model: nn.Module):
    """How `source`'s tensors map onto `model`'s (a checkpoints.Pairing), and whether by the
    leading modules (a backbone) rather than by structure: whichever loads more values. A
    source tensor counts as a buffer when the spec's buffers carry its name (running_mean,
    …)."""
    from ..checkpoints import pair_by_structure

    target = model.state_dict()
    buffers = {k for k, _ in model.named_buffers(remove_duplicate=False)}
    buffer_names = {k.rpartition(".")[2] for k in buffers} | {
        "running_mean", "running_var", "num_batches_tracked"}

    def role(key):
        return "buffer" if key.rpartition(".")[2] in buffer_names else "parameter"

    theirs = [(k, tuple(v.shape), role(k)) for k, v in source.items()]
    mine = [(k, tuple(v.shape), "buffer" if k in buffers else "parameter")
            for k, v in target.items()]
    plan, leading = pair_by_structure(theirs, mine), leading_modules(theirs, mine)

    def values(p):
        return sum(target[d].numel() for _, d in p.pairs)

    return (leading, True) if values(leading) > values(plan) else (plan, False)


def leading_modules(source: list, target: list):
    """The Pairing of the modules both sides begin with: from the first module on, while the
    next of each holds the same tensors (names, shapes, roles); every tensor after them is
    fresh (target) or unused (source). `source` and `target` are (key, shape, role) lists in
    module order."""
    from ..checkpoints import Pairing, _modules, pair_by_structure

    src_modules, dst_modules = _modules(source), _modules(target)
    pairs = []
    for (s, s_entries), (d, d_entries) in zip(src_modules.items(), dst_modules.items()):
        if _structure(s_entries) != _structure(d_entries):
            break
        pairs.append((s, d))
    src_done = {e for s, _ in pairs for e in src_modules[s]}
    dst_done = {e for _, d in pairs for e in dst_modules[d]}
    plan = pair_by_structure([e for e in source if e in src_done],
                             [e for e in target if e in dst_done], modules=pairs)
    return Pairing(pairs=plan.pairs, fresh=[e[0] for e in target if e not in dst_done],
                   unused=[e[0] for e in source if e not in src_done])


def _structure(entries: list) -> tuple:
    """A module's tensors as names, shapes and roles, in no particular order."""
    return tuple(sorted((key.rpartition(".")[2], shape, role) for key, shape, role in entries))


def initialise_from(model: nn.Module, network, source: str, spec_path: Path,
                    params: dict) -> dict:
    """Load `source` into `model` by structure, or by its leading modules (a classifier's
    backbone); the summary that config.json keeps (`backbone`: how many of the spec's layers
    the leading modules gave, else None)."""
    from ..checkpoints import layer_of

    state, path = read_source(source, spec_path, params)
    target = model.state_dict()
    plan, backbone = mapped(state, model)
    _refuse_unsafe(plan, state, target, source)
    if not any(target[d].numel() for _, d in plan.pairs
               if not d.endswith("num_batches_tracked")):
        raise TrainError(f"--init {source}: none of its tensors fits {spec_path} (no shape in "
                         "common); give weights of the same architecture")
    with torch.no_grad():
        for s, d in plan.pairs:
            target[d].copy_(state[s])
    return {"source": source, "file": path, "loaded": len(plan.pairs),
            "values": sum(target[d].numel() for _, d in plan.pairs),
            "reinitialised": [f"{k} {_shape(target[k])}" for k in plan.fresh],
            "reinitialised_layers": sorted({layer_of(network, k) for k in plan.fresh}),
            "unused": [f"{k} {_shape(state[k])}" for k in plan.unused],
            "backbone": len({d.rpartition(".")[0] for _, d in plan.pairs}) if backbone else None}


def _refuse_unsafe(plan, state: dict, target: dict, source: str) -> None:
    """TrainError for a mapping that would load something wrong without a word: tensors that no
    name tells apart, or values of another kind (integer, boolean, complex) than the spec's."""
    from ..checkpoints import value_kind

    if plan.ambiguous:
        theirs, mine, shape, _ = plan.ambiguous[0]
        raise TrainError(f"--init {source}: its {' and '.join(theirs)} (shape "
                         f"{'x'.join(map(str, shape)) or 'scalar'}) could each be the spec's "
                         f"{' or '.join(mine)}: one module holds several and no name says "
                         "which is which; rename them to the spec's names")
    for s, d in plan.pairs:
        theirs, mine = value_kind(state[s]), value_kind(target[d])
        if theirs != mine:
            raise TrainError(f"--init {source}: its {s} holds {theirs} values "
                             f"({str(state[s].dtype).replace('torch.', '')}) where the spec's "
                             f"{d} holds {mine} ones; give the weights as saved by training")


def _shape(t) -> str:
    return "x".join(map(str, t.shape)) or "scalar"


def summary_line(info: dict) -> str:
    """The one line a run prints about --init."""
    line = (f"--init {info['source']}: loaded {info['loaded']} tensors ({info['values']:,} "
            f"values) from {info['file']}")
    if info.get("backbone") and info["reinitialised"]:
        line += (f" into the spec's first {info['backbone']} layers with weights (the "
                 f"backbone); re-initialised the {len(info['reinitialised'])} tensors after "
                 f"them (the head: fresh, seeded): {', '.join(info['reinitialised_layers'][:4])}"
                 + (" …" if len(info["reinitialised_layers"]) > 4 else ""))
    elif info["reinitialised"]:
        line += (f"; re-initialised {len(info['reinitialised'])} that do not fit (fresh, "
                 f"seeded): {', '.join(info['reinitialised_layers'][:4])}")
    if info["unused"]:
        line += f"; unused from the source: {', '.join(info['unused'][:4])}" + \
            (" …" if len(info["unused"]) > 4 else "")
    return line


# ----------------------------------------------------------------------------- freezing


def frozen_modules(model: nn.Module, names: list[str], graph) -> list[str]:
    """The module paths `names` freeze: a path as `check` and the errors show it
    (basic3.residual1.body.conv1), a group on it (basic3), or a block's name (basic: every
    call of it, as the spec's `graph` records them). TrainError for a name that is none, or
    that holds no weights."""
    paths = [n for n, m in model.named_modules() if n and any(True for _ in
                                                              m.parameters(recurse=False))]
    layers = [nid for nid, node in graph.layers() if node.kind is not None]
    chosen = []
    for name in names:
        tops = {name} | {g.name for g in graph.groups.values() if g.block == name}
        hits = [p for p in paths if any(p == t or p.startswith(t + ".") for t in tops)]
        if not hits:  # a command-line mistake: exit 2
            raise TrainUsageError(_no_weights(name, tops, layers, paths, graph))
        chosen += [p for p in hits if p not in chosen]
    return chosen


def _no_weights(name: str, tops: set[str], layers: list[str], paths: list[str],
                graph) -> str:
    named = [n for n in layers if any(n == t or n.startswith(t + ".") for t in tops)]
    if named:
        who = "it holds" if named == [name] else \
            f"its layers ({', '.join(named[:3])}{' …' if len(named) > 3 else ''}) hold"
        return (f"--freeze {name}: {who} no weights, so "
                "there is nothing to freeze; name layers with weights (conv, linear, bn, …) or "
                "the block or group around them")
    known = sorted({p.split(".")[0] for p in paths})
    # the names --freeze takes: the spec's blocks, groups and layers
    names = {getattr(g, "block", None) for g in graph.groups.values()} | \
        {g.name for g in graph.groups.values()} | set(layers) | set(known)
    names.discard(None)
    close = difflib.get_close_matches(name, sorted(names), n=1)
    its = f"did you mean `{close[0]}`? Its" if close else "its"
    return (f"--freeze {name}: the spec has no layer or group of that name; {its} top-level "
            f"names are {', '.join(known[:12])}{' …' if len(known) > 12 else ''}")


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
