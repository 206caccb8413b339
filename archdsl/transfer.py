"""`archdsl.transfer_weights`: copy one network's tensors into another's by their place.

Two networks that compute the same function seldom agree on names, and need not agree on the
order their modules are registered in: timm's DLA registers a tree's projection before the
block it feeds, an archdsl spec writes it as the shortcut after the body; timm's HRNet
registers its head's branches before the convolutions that join them, which run between
them. So a tensor's place is where the forward pass uses it: one forward of each network in
eval mode, under torch.no_grad(), is followed call by call (a TorchFunctionMode), and gives
every module that holds tensors

* when its tensors first meet the data (the execution order), and
* which modules' outputs those tensors are applied to (the dataflow: a batch norm reads the
  convolution before it; the k-th of two parallel branches is not a place, as torchvision's
  ResNet runs a block's body before its downsample and archdsl's residual the shortcut first).

Modules holding the same tensors (names, shapes, roles) then pair by the dataflow and the
execution order (`_module_pairs`), the tensors left by shape and role in execution order
(checkpoints.pair_by_structure). Where neither tells same-shaped tensors apart, a ValueError
names them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

from .checkpoints import Pairing, _by_structure, _modules, pair_by_structure, value_kind

_INPUT = "(input)"  # the example's place in the dataflow; no module path has parentheses
_LOOK_AHEAD = 3     # how many modules downstream tell two same-fed modules apart
# normalisations: their output has their input's shape and dtype
_NORMS = {nn.functional.batch_norm, nn.functional.layer_norm, nn.functional.group_norm,
          nn.functional.instance_norm, torch.batch_norm, torch.layer_norm, torch.group_norm,
          torch.instance_norm}


def transfer_weights(src: nn.Module, dst: nn.Module, example=None) -> None:
    """Copy every parameter and buffer of `src` into `dst`, matched by their place.

    Parameters pair with parameters and buffers with buffers, never one with the other. A
    module of `dst` takes the tensors of the module of `src` that holds the same names, shapes
    and roles (a batch norm of 64 channels) and sits at the same place, name by name: the
    place is where the forward pass reaches it. One forward of each network on `example` (a
    tensor, or a tuple of the forward's arguments; by default zeros of `dst.input_shape`,
    which a compiled archdsl network has) tells which modules' outputs each module's tensors
    are applied to and the order they are first used in. Among the modules of a structure, one
    of `dst` (taken in execution order) takes the one of `src` that reads the partners of what
    it reads (a batch norm follows its own convolution, whichever of two parallel branches
    runs first), then the one followed by the same kinds of modules, then the first in
    execution order. Each forward runs in eval mode under torch.no_grad(), on the meta device
    (shapes only) or where that fails on the network's own, with the random number generator
    saved; train/eval modes are restored and no value changes.

    A module the forward never reaches (an auxiliary head used only in training, a layer the
    forward skips) comes after every reached one, in registration order: never-reached modules
    pair with the never-reached module of the same path on the other side, else the k-th with
    the k-th in registration order. Where the forward reaches one side's and not the other's,
    among several of their structure, a ValueError names them. The tensors left (torchvision's
    ConvNeXt keeps a block's `layer_scale` in the block, a spec in a layer of its own) go by
    shape and role, the k-th in execution order to the k-th, the same refusal applying.

    Without an example (no `example`, no `input_shape`), or where a forward fails on both
    devices (it raises, or the network holds lazy modules), both networks' modules keep their
    registration order, the k-th of a structure to the k-th; nothing says so. Raises
    ValueError, naming the tensors, when the two do not hold the same shapes the same number
    of times, when same-shaped tensors could go to several places and neither names nor places
    tell which, or when a tensor of floating-point values would take integer, boolean or
    complex ones (or the reverse).
    """
    src_state, dst_state = src.state_dict(), dst.state_dict()
    source, target = _entries(src, src_state), _entries(dst, dst_state)
    flows = _flows(src, dst, example)
    guesses = []
    if flows is None:
        plan = pair_by_structure(source, target)
    else:
        plan, guesses = _plan(source, target, *flows)
    if plan.fresh or plan.unused:
        _raise_misfit(list(src_state.items()), list(dst_state.items()), plan)
    if plan.ambiguous:
        s_keys, d_keys, shape, role = plan.ambiguous[0]
        raise ValueError(f"source {' and '.join(s_keys)} ({role}s of shape {shape}) could each "
                         f"go to destination {' or '.join(d_keys)}: one module holds several "
                         "of them and no name says which is which")
    if guesses:
        raise ValueError(guesses[0])
    for s, d in plan.pairs:
        if value_kind(src_state[s]) != value_kind(dst_state[d]):
            raise ValueError(f"source {s} holds {src_state[s].dtype} values, destination {d} "
                             f"{dst_state[d].dtype}: {value_kind(src_state[s])} values cannot "
                             f"stand for {value_kind(dst_state[d])} ones")
    with torch.no_grad():
        for s, d in plan.pairs:
            dst_state[d].copy_(src_state[s])


def _entries(module: nn.Module, state: dict) -> list:
    """(key, shape, role) of each tensor of `state`, `module`'s state_dict."""
    buffers = {k for k, _ in module.named_buffers(remove_duplicate=False)}
    return [(k, tuple(v.shape), "buffer" if k in buffers else "parameter")
            for k, v in state.items()]


def _raise_misfit(src_items, dst_items, plan) -> None:
    """The ValueError for two state dicts that cannot be matched: the first pair by order
    whose shapes differ, or the first tensor without a partner."""
    for i, ((s_name, s_val), (d_name, d_val)) in enumerate(zip(src_items, dst_items)):
        if s_val.shape != d_val.shape:
            raise ValueError(f"tensor #{i} does not fit: source {s_name} has shape "
                             f"{tuple(s_val.shape)}, destination {d_name} has {tuple(d_val.shape)}")
    if len(src_items) == len(dst_items):  # the same shapes, as parameters on one side only
        side, key = ("destination", plan.fresh[0]) if plan.fresh else ("source", plan.unused[0])
        shape = tuple(dict(dst_items if plan.fresh else src_items)[key].shape)
        raise ValueError(f"the first without a partner is {side} {key} {shape}: the other "
                         "side's tensors of that shape are parameters where these are buffers, "
                         "or the reverse")
    shorter, longer = ("source", "destination") if len(src_items) < len(dst_items) else \
        ("destination", "source")
    first_extra = (dst_items if shorter == "source" else src_items)[min(len(src_items),
                                                                        len(dst_items))]
    raise ValueError(f"the {shorter} has {min(len(src_items), len(dst_items))} tensors and the "
                     f"{longer} {max(len(src_items), len(dst_items))}: the first without a "
                     f"partner is {longer} {first_extra[0]} {tuple(first_extra[1].shape)}")


# ----------------------------------------------------------------------------- the forward pass


@dataclass
class _Flow:
    """One forward pass, by module path (a state_dict key's prefix): `first` numbers the
    modules whose tensors met the data, in the order they first did; `reads` holds the modules
    (or _INPUT) whose outputs those tensors were applied to."""

    first: dict = field(default_factory=dict)
    reads: dict = field(default_factory=dict)


class _Tracer(TorchFunctionMode):
    """Follows every torch call of a forward pass. Each tensor remembers the modules it comes
    from and whether it carries the data: an operation on data and a module's tensors (or
    tensors made from them: a reshaped weight, a relative position bias) comes from that
    module, one on data alone from where its data came from (an add after a residual body,
    a concatenation), one on a module's tensors alone is that module's, still without data."""

    def __init__(self, owners: dict):
        super().__init__()
        self.owners = owners                 # id of a state_dict tensor -> module paths
        self.origin = WeakIdKeyDictionary()  # tensor -> (module paths, carries data)
        self.flow = _Flow()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        first = args[0] if args else kwargs.get("input")
        if func in _NORMS and isinstance(first, torch.Tensor) and first.is_meta:
            out = torch.empty_like(first)  # the shape it keeps, without meta's slow decomposition
        else:
            out = func(*args, **kwargs)
        held, data, fed = set(), set(), False
        for t in _tensors((args, kwargs)):
            if id(t) in self.owners:
                held |= self.owners[id(t)]
            elif t in self.origin:
                paths, carries = self.origin[t]
                if carries:
                    data |= paths
                    fed = True
                else:
                    held |= paths
        if fed:
            for path in held:
                self.flow.first.setdefault(path, len(self.flow.first))
                self.flow.reads.setdefault(path, set()).update(data)
        if held or fed:
            tag = (frozenset(held or data), fed)
            for t in _tensors(out if out is not None else args[:1]):  # x[i] = y: x
                self.origin[t] = tag
        return out


def _tensors(value):
    """The tensors in a call's arguments or results (nested tuples, lists and dicts)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


def _flows(src: nn.Module, dst: nn.Module, example):
    """(source flow, destination flow), or None where there is no example or either forward
    fails: the caller then pairs by registration order alone."""
    if example is None:
        shape = getattr(dst, "input_shape", None)
        try:
            example = torch.zeros(1, *shape) if shape is not None else None
        except (TypeError, ValueError, RuntimeError):  # not a shape of whole numbers
            example = None
    if example is None:
        return None
    flows = (_trace(src, example), _trace(dst, example))
    return None if None in flows else flows


def _trace(model: nn.Module, example) -> _Flow | None:
    """The flow of one forward of `model` on `example`, or None where it cannot run. It runs
    on the meta device first (shapes only: no arithmetic, and the model's own tensors never
    enter it), where an operation needs values on the model's own device."""
    tensors = dict(model.named_parameters(remove_duplicate=False))
    buffers = dict(model.named_buffers(remove_duplicate=False))
    tensors.update(buffers)
    if not tensors or any(nn.parameter.is_lazy(t) for t in tensors.values()):
        return None  # a lazy module would take its shapes from the example: not ours to do
    kept = set(model.state_dict(keep_vars=True))  # not the buffers a checkpoint leaves out
    inputs = tuple(example) if isinstance(example, (tuple, list)) else (example,)
    for on_meta in (True, False):
        flow = _trace_once(model, inputs, _stand_ins(tensors, set(buffers), on_meta), kept)
        if flow is not None:
            return flow
    return None


def _stand_ins(tensors: dict, buffers: set, on_meta: bool) -> dict:
    """What the traced forward uses for the model's tensors: empty meta tensors, or its own
    parameters and copies of its buffers (a forward that updates a buffer updates the copy);
    a tensor held under several names stays one tensor."""
    made: dict[int, torch.Tensor] = {}
    for name, t in tensors.items():
        if id(t) not in made:
            made[id(t)] = torch.empty_like(t, device="meta") if on_meta else \
                t.detach().clone() if name in buffers else t
    return {name: made[id(t)] for name, t in tensors.items()}


def _trace_once(model, inputs, tensors: dict, kept: set) -> _Flow | None:
    """One forward of `model` on `inputs` with `tensors` standing in for its own, followed;
    train/eval modes and the tensors it keeps as attributes (a cache) put back after."""
    owners: dict[int, set] = {}
    for name, t in tensors.items():
        if name in kept:
            owners.setdefault(id(t), set()).add(name.rpartition(".")[0])
    floats = [t for t in tensors.values() if t.is_floating_point()]
    inputs = tuple(_like(x, next(iter(tensors.values())), floats) for x in inputs)
    tracer, modes = _Tracer(owners), {m: m.training for m in model.modules()}
    attributes = {m: _tensor_attributes(m) for m in model.modules()}
    try:
        for x in _tensors(inputs):
            tracer.origin[x] = (frozenset({_INPUT}), True)
        with torch.no_grad(), torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.eval()
            with tracer:
                torch.func.functional_call(model, tensors, inputs)
    except Exception:  # noqa: BLE001 - any failure: the next try, or registration order
        return None
    finally:
        for m, training in modes.items():
            m.training = training
        for m, before in attributes.items():  # a cache filled with stand-ins' values
            for name, value in _tensor_attributes(m).items():
                if before.get(name) is not value:
                    if name in before:
                        setattr(m, name, before[name])
                    else:
                        delattr(m, name)
    return tracer.flow if tracer.flow.first else None


def _tensor_attributes(module: nn.Module) -> dict:
    """The tensors a module keeps as plain attributes (not parameters or buffers)."""
    return {k: v for k, v in vars(module).items() if isinstance(v, torch.Tensor)}


def _like(x, first: torch.Tensor, floats: list):
    """`x` on the device of the model's tensors, floating-point values in their dtype."""
    if not isinstance(x, torch.Tensor):
        return x
    dtype = floats[0].dtype if floats and x.is_floating_point() else x.dtype
    if first.is_meta:
        return torch.empty_like(x, device="meta", dtype=dtype)
    return x.to(device=first.device, dtype=dtype)


# ----------------------------------------------------------------------------- pairing by place


def _plan(source: list, target: list, src_flow: _Flow, dst_flow: _Flow):
    """The Pairing of `source`'s entries with `target`'s by place, and the messages of the
    guesses it would have had to make."""
    pairs, guesses = _module_pairs(_modules(source), _modules(target), src_flow, dst_flow)
    plan = pair_by_structure(_in_flow_order(source, src_flow),
                             _in_flow_order(target, dst_flow), modules=pairs)
    return plan, guesses + _leftover_guesses(plan, pairs, source, src_flow, dst_flow)


def _in_flow_order(entries: list, flow: _Flow) -> list:
    """`entries` by the execution order of their modules, those never reached after, in
    registration order; a module's own tensors keep theirs."""
    registered = {}
    for key, _, _ in entries:
        registered.setdefault(key.rpartition(".")[0], len(registered))

    def place(entry):
        module = entry[0].rpartition(".")[0]
        return (0, flow.first[module]) if module in flow.first else (1, registered[module])
    return sorted(entries, key=place)


def _module_pairs(src_modules: dict, dst_modules: dict, src_flow: _Flow, dst_flow: _Flow):
    """(source, destination) module paths of the structures both sides hold equally often,
    and the guesses left. The destination's reached modules go in execution order; each takes,
    of the source's reached modules of its structure still free, the one that reads most of
    the partners of what it reads, then the one whose downstream modules are of the same
    kinds, then the one that reads fewest others, then the first in execution order."""
    src_kinds, dst_kinds = _by_structure(src_modules), _by_structure(dst_modules)
    even = {k for k, paths in dst_kinds.items() if len(src_kinds.get(k, ())) == len(paths)}
    kind_of = {path: k for k, paths in dst_kinds.items() for path in paths}
    src_ahead, dst_ahead = _downstream(src_flow, src_kinds), _downstream(dst_flow, dst_kinds)
    free = {k: [p for p in src_kinds[k] if p in src_flow.first] for k in even}
    partner = {_INPUT: _INPUT}  # destination path -> source path
    reached = [p for p in dst_flow.first if kind_of.get(p) in even]
    for d in sorted(reached, key=dst_flow.first.get):
        candidates = free[kind_of[d]]
        if not candidates:
            continue
        want = {partner[p] for p in dst_flow.reads.get(d, ()) if p in partner}

        def fit(s, want=want, d=d):
            reads = src_flow.reads.get(s, set())
            return (len(want & reads), src_ahead.get(s) == dst_ahead.get(d),
                    -len(reads - want), -src_flow.first[s])
        best = max(candidates, key=fit)
        candidates.remove(best)
        partner[d] = best
    del partner[_INPUT]
    pairs, guesses = [(s, d) for d, s in partner.items()], []
    for k in (k for k in dst_kinds if k in even):  # registration order: the first guess
        taken = set(partner.values())
        more, mixed = _unreached_pairs([p for p in src_kinds[k] if p not in taken],
                                       [p for p in dst_kinds[k] if p not in partner],
                                       src_flow, dst_flow)
        pairs += more
        if mixed and len(dst_kinds[k]) == 1:  # one of its kind on each side: no choice
            pairs += zip(*mixed)
        elif mixed:
            held = ", ".join(f"{key.rpartition('.')[2]} {shape}"
                             for key, shape, _ in dst_modules[mixed[1][0]][:3])
            held += ", …" if len(dst_modules[mixed[1][0]]) > 3 else ""
            guesses.append(_guess_message(*mixed, f"{len(dst_kinds[k])} modules holding {held}"))
    return pairs, guesses


def _unreached_pairs(src_left: list, dst_left: list, src_flow: _Flow, dst_flow: _Flow):
    """Pairs of the modules of one structure that execution left, those the forward pass
    never reaches: by equal paths, then the k-th with the k-th in registration order. Where
    the forward pass reaches one side's and not the other's, (source paths, destination paths)
    instead, for the caller to pair or refuse."""
    same = set(src_left) & set(dst_left)
    pairs = [(p, p) for p in dst_left if p in same]
    src_left = [p for p in src_left if p not in same]
    dst_left = [p for p in dst_left if p not in same]
    if any(p in src_flow.first for p in src_left) or any(p in dst_flow.first for p in dst_left):
        return pairs, (src_left, dst_left)
    return pairs + list(zip(src_left, dst_left)), None


def _guess_message(src_keys: list, dst_keys: list, kind: str) -> str:
    return (f"source {' and '.join(src_keys)} could go to destination {' or '.join(dst_keys)}, "
            "but the forward pass reaches one side's and not the other's (an auxiliary head "
            f"run in training only?): of the {kind} on each side, no place says which these "
            "stand for; give them the same names on both sides, or copy them yourself")


def _downstream(flow: _Flow, kinds: dict) -> dict:
    """Each reached module's view downstream: its structure, and those of the modules that
    read it, _LOOK_AHEAD steps deep (a hash, compared between the two networks)."""
    kind_of = {path: k for k, paths in kinds.items() for path in paths}
    readers: dict[str, list] = {p: [] for p in flow.first}
    for path, reads in flow.reads.items():
        for p in reads:
            readers.setdefault(p, []).append(path)
    own = {p: hash(kind_of.get(p)) for p in readers}
    view = dict(own)
    for _ in range(_LOOK_AHEAD):
        view = {p: hash((own[p], tuple(sorted(view[r] for r in readers[p])))) for p in readers}
    return view


def _leftover_guesses(plan: Pairing, module_pairs: list, source: list, src_flow: _Flow,
                      dst_flow: _Flow) -> list:
    """The tensors left after whole modules, paired by shape and role in execution order
    (those never reached after the others), where that order was a guess: among several of a
    shape and role, one whose module the forward pass reaches paired with one whose module it
    does not."""
    whole = {d for _, d in module_pairs}
    shape = {key: (s, role) for key, s, role in source}
    groups: dict[tuple, list] = {}
    for s, d in plan.pairs:
        if d.rpartition(".")[0] not in whole:
            groups.setdefault(shape[s], []).append((s, d))
    guesses = []
    for (size, role), pairs in groups.items():
        mixed = [(s, d) for s, d in pairs if (s.rpartition(".")[0] in src_flow.first)
                 != (d.rpartition(".")[0] in dst_flow.first)]
        if mixed and len(pairs) > 1:
            guesses.append(_guess_message([s for s, _ in mixed], [d for _, d in mixed],
                                          f"{len(pairs)} {role}s of shape {size} left"))
    return guesses
