"""Reading weights without executing code, and fitting them to a spec with a clear refusal.

Weights are safetensors files, or state_dicts saved by torch.save and read with
`weights_only=True` (PyTorch's restricted loader: tensors and plain containers, no code).
A truncated, tampered or foreign file, or one holding NaN or infinite values or a tensor that
is not dense, is refused naming the file; one that does not fit names the first layer that
differs and its spec line. `pair_by_structure` maps two networks' tensors whose names need
not agree (--init, archdsl.transfer_weights).
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ArchdslError

# the keys a training script commonly keeps its model's state_dict under, beside other things
WRAPPERS = ("state_dict", "model_state_dict", "model")


class CheckpointError(ArchdslError):
    """A checkpoint that cannot be read, with a message for the user."""


class CheckpointMismatch(CheckpointError):
    """The checkpoint's tensors are not the spec's."""


def why_unloadable(exc: Exception) -> str:
    """A short reason a checkpoint did not load: the code a pickle asked for, or the error."""
    import re

    text = str(exc)
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text) or \
        re.search(r"unsupported GLOBAL ([\w.]+)", text)  # a blocked module: os, posix, …
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
    wrapper = next((k for k in WRAPPERS if isinstance(state, dict)
                    and isinstance(state.get(k), dict)), None)
    if wrapper is not None:
        state = state[wrapper]
    if not isinstance(state, dict) or not state or \
            not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"cannot read the checkpoint {path}: it holds no weights (a "
                              "state_dict of tensors, or a dict holding one under "
                              f"{', '.join(WRAPPERS)})")
    # a sparse claim of 100000x100000 would be 40 GB once dense, before any shape is compared
    bad = next((k for k, v in state.items() if v.layout != torch.strided), None)
    if bad is not None:
        raise CheckpointError(f"cannot use the checkpoint {path}: its {bad} is stored "
                              f"{str(state[bad].layout).replace('torch.', '')}, not dense; "
                              "archdsl's layers hold dense tensors: save it with .to_dense()")
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


def _classes_hint(network, needs: tuple, has: tuple) -> str:
    """Where only the class count differs (a run trained on other data): how to say so."""
    classes = network.arch_params.get("num_classes")
    if classes is None or needs[1:] != has[1:] or needs[:1] != (classes,):
        return ""
    return (f"; it was trained for {has[0]} classes: add `--set num_classes={has[0]}`, or give "
            "the run folder instead of the spec")


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
                f"checkpoint has {'x'.join(map(str, state[key].shape))}"
                + _classes_hint(network, tuple(tensor.shape), tuple(state[key].shape)))
    extra = [k for k in state if k not in expected]
    if extra:
        raise CheckpointMismatch(f"{source} does not fit this spec: it has {len(extra)} tensors "
                                 f"the spec lacks, the first {extra[0]}")
    model.load_state_dict(state)


# ----------------------------------------------------------------------------- pairing


@dataclass
class Pairing:
    """How a source's tensors map onto a target's (keys; see pair_by_structure)."""

    pairs: list = field(default_factory=list)      # (source key, target key), target order
    fresh: list = field(default_factory=list)      # target keys nothing fits
    unused: list = field(default_factory=list)     # source keys that fit nothing
    ambiguous: list = field(default_factory=list)  # (source keys, target keys, shape, role)


def pair_by_structure(source: list, target: list, modules: list | None = None) -> Pairing:
    """Map `source`'s tensors onto `target`'s; each a list of (key, shape, role) in module
    order, role "parameter" or "buffer".

    First whole modules: a module's structure is the names, shapes and roles of its own
    tensors (a batch norm of 64 channels), and the k-th module of a structure in the source
    pairs with the k-th in the target where both hold it equally often; their tensors pair by
    name, so the order of keys within a module (a safetensors file's is alphabetical) never
    matters. Then the tensors left, by shape and role, the k-th with the k-th where both hold
    them equally often (torchvision's ConvNeXt keeps layer_scale in its block, a spec in a
    layer of its own). There the order between modules is trusted, the order within one is
    not: where one module holds two of them they pair by name, and those that no name tells
    apart are ambiguous. What is held a different number of times is fresh and unused.

    `modules`, (source module, target module) paths of the same structure, replaces the k-th
    with the k-th for whole modules (archdsl.transfer_weights pairs them by where the forward
    pass reaches them); the order of `source` and `target` then orders the tensors left.
    """
    src_modules, dst_modules = _modules(source), _modules(target)
    plan = Pairing()
    if modules is None:
        modules = _kth_modules(src_modules, dst_modules)
    for s, d in modules:
        names = {_name(key): key for key, _, _ in src_modules[s]}
        plan.pairs += [(names[_name(key)], key) for key, _, _ in dst_modules[d]]
    src_done, dst_done = {s for s, _ in plan.pairs}, {d for _, d in plan.pairs}
    src_rest = _by_shape(e for es in src_modules.values() for e in es if e[0] not in src_done)
    dst_rest = _by_shape(e for es in dst_modules.values() for e in es if e[0] not in dst_done)
    for (shape, role), mine in dst_rest.items():
        theirs = src_rest.get((shape, role), [])
        if len(theirs) != len(mine):
            plan.fresh += mine
            continue
        for s_keys, d_keys in _runs(theirs, mine):
            pairs, left = _by_name(s_keys, d_keys)
            plan.pairs += pairs
            if _one_module_holds_two(left[0]) or _one_module_holds_two(left[1]):
                plan.ambiguous.append((left[0], left[1], shape, role))
            else:
                plan.pairs += zip(*left)
    used = {s for s, _ in plan.pairs} | {s for a in plan.ambiguous for s in a[0]}
    order = {key: i for i, (key, _, _) in enumerate(target)}
    plan.pairs.sort(key=lambda p: order[p[1]])
    plan.fresh.sort(key=order.get)
    plan.unused = [key for key, _, _ in source if key not in used]
    return plan


def _kth_modules(src_modules: dict, dst_modules: dict) -> list:
    """(source, target) module paths: the k-th of a structure with the k-th, where both sides
    hold it equally often."""
    src_kinds, pairs = _by_structure(src_modules), []
    for structure, prefixes in _by_structure(dst_modules).items():
        if len(src_kinds.get(structure, [])) == len(prefixes):
            pairs += zip(src_kinds[structure], prefixes)
    return pairs


def _name(key: str) -> str:
    return key.rpartition(".")[2]


def _module(key: str) -> str:
    return key.rpartition(".")[0]


def _modules(entries) -> dict:
    """Module path -> its own (key, shape, role) entries, modules in order of first mention."""
    out: dict[str, list] = {}
    for key, shape, role in entries:
        out.setdefault(_module(key), []).append((key, tuple(shape), role))
    return out


def _by_structure(modules: dict) -> dict:
    out: dict[tuple, list[str]] = {}
    for prefix, entries in modules.items():
        structure = tuple(sorted((_name(key), shape, role) for key, shape, role in entries))
        out.setdefault(structure, []).append(prefix)
    return out


def _by_shape(entries) -> dict:
    out: dict[tuple, list[str]] = {}
    for key, shape, role in entries:
        out.setdefault((shape, role), []).append(key)
    return out


def _runs(theirs: list, mine: list):
    """The k-th with the k-th, cut where neither side stays in one module: (source keys,
    target keys) stretches whose order within a module would decide the pairing."""
    start = 0
    for i in range(1, len(mine) + 1):
        if i == len(mine) or (_module(theirs[i]) != _module(theirs[i - 1])
                              and _module(mine[i]) != _module(mine[i - 1])):
            yield theirs[start:i], mine[start:i]
            start = i


def _by_name(theirs: list, mine: list) -> tuple[list, tuple[list, list]]:
    """Pairs of keys whose last names agree (a name once on each side), and the keys left."""
    if len(mine) == 1:
        return [(theirs[0], mine[0])], ([], [])
    s_names, d_names = Counter(map(_name, theirs)), Counter(map(_name, mine))
    agree = {n for n in s_names if s_names[n] == 1 and d_names.get(n) == 1}
    pairs = [(s, d) for s in theirs for d in mine if _name(s) == _name(d) and _name(s) in agree]
    return pairs, ([k for k in theirs if _name(k) not in agree],
                   [k for k in mine if _name(k) not in agree])


def _one_module_holds_two(keys: list) -> bool:
    return len({_module(k) for k in keys}) < len(keys)


def value_kind(tensor) -> str:
    """What a tensor holds, for refusing one kind where another is needed: floating-point,
    integer, boolean or complex values."""
    dtype = tensor.dtype
    if dtype.is_complex:
        return "complex"
    if dtype.is_floating_point:
        return "floating-point"
    return "boolean" if str(dtype) == "torch.bool" else "integer"
