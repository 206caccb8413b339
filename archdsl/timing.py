"""`archdsl time`: where a compiled network spends its time, layer by layer, like `caffe time`.

The spec is checked and compiled (`Network.to_torch()`), then trained on one random batch
again and again: each pass is forward, then backward from a fixed random gradient of the
output (no loss, no optimiser step). A round is three passes of the same module, in turns:
one with forward pre/post hooks on every layer's module, one with full backward pre/post
hooks, and a plain one without hooks. A layer's time is what happens between its hooks; a
merge (the `+` of a residual, a concat) gets what its combinator's module does outside its
branches. The per-layer medians are set beside the plain pass's median: the two should add
up (the ratio), and a hooked pass's excess over the plain one is what the hooks cost.

On the CPU a clock mark is `time.perf_counter_ns()`; on a GPU it is a CUDA event recorded
on the current stream, read after one synchronisation at the end of each pass.

    >>> from archdsl.timing import time_network
    >>> timing = time_network(archdsl.load("specs/lenet5.arch"), batch_size=8)
    >>> timing.layers[0].name, timing.ratio()

The command is archdsl/cli/timing.py (`archdsl time SPEC`, or `python -m archdsl time SPEC`);
this module imports no CLI.
"""

from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass, field
from functools import partial
from typing import Any

__all__ = ["LayerTime", "Timing", "time_network", "table", "to_json", "TOP"]

TOP = 5  # the costliest layers the table ranks


# ----------------------------------------------------------------------------- clocks


class CpuClock:
    """Marks are nanoseconds of `time.perf_counter_ns`."""

    def mark(self):
        return time.perf_counter_ns()

    def seconds(self, start, end) -> float:
        return (end - start) / 1e9

    def wait(self) -> None:
        pass


class CudaClock:
    """Marks are CUDA events recorded on the current stream; `wait` synchronises once, after
    which the events can be read (a synchronisation per layer would change what is timed)."""

    def __init__(self, device):
        import torch

        self.torch, self.device = torch, device

    def mark(self):
        event = self.torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def seconds(self, start, end) -> float:
        return start.elapsed_time(end) / 1e3

    def wait(self) -> None:
        self.torch.cuda.synchronize(self.device)


# ----------------------------------------------------------------------------- the hooks


class _Recorder:
    """Hooks on the module of every layer (and every combinator, for its merge) that note a
    clock mark as each starts and ends, forward and backward."""

    def __init__(self, module, paths: list[str], clock):
        modules = dict(module.named_modules())
        missing = [p for p in paths if p not in modules]
        if missing:
            raise RuntimeError(f"the compiled module has no submodule {missing[0]!r}")
        self.modules = {p: modules[p] for p in paths}
        self.clock = clock
        # the nearest timed module around each one: its time includes theirs
        self.parent = {p: max((q for q in paths if p.startswith(q + ".")), key=len, default=None)
                       for p in paths}
        self.handles: list = []
        self.start()

    def start(self) -> None:
        self.fwd_pre: dict[str, Any] = {}
        self.fwd_post: dict[str, Any] = {}
        self.grad_in: dict[str, bool] = {}
        self.bwd: list[tuple[str, str, Any]] = []  # (path, "pre" | "post", mark), in order

    def attach(self, direction: str) -> None:
        """Hooks for one direction: the forward pass's (cheap) or the backward pass's (full
        backward hooks, which wrap each module's inputs and outputs while it runs forward)."""
        for p, m in self.modules.items():
            if direction == "forward":
                self.handles += [m.register_forward_pre_hook(partial(self._forward_pre, p)),
                                 m.register_forward_hook(partial(self._forward_post, p))]
            else:
                self.handles += [m.register_forward_pre_hook(partial(self._grad_in, p)),
                                 m.register_full_backward_pre_hook(partial(self._backward, p,
                                                                           "pre")),
                                 m.register_full_backward_hook(partial(self._backward, p,
                                                                       "post"))]

    def detach(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def _forward_pre(self, path, module, args):
        self.fwd_pre[path] = self.clock.mark()

    def _grad_in(self, path, module, args):
        self.grad_in[path] = any(getattr(a, "requires_grad", False) for a in args)

    def _forward_post(self, path, module, args, output):
        self.fwd_post[path] = self.clock.mark()

    def _backward(self, path, kind, module, *grads):
        self.bwd.append((path, kind, self.clock.mark()))

    def _inside(self, path: str | None, outer: str) -> bool:
        return path is not None and (path == outer or path.startswith(outer + "."))

    def backward_intervals(self, end) -> dict[str, float]:
        """Seconds from each module's backward start to its end. A module none of whose inputs
        needs a gradient (the first layer) has no end event of its own (torch calls its hook
        at the start): it ends where the next module outside it starts or ends, or where the
        whole backward pass does, since backward runs one module at a time."""
        events = [e for e in self.bwd if e[1] == "pre" or self.grad_in.get(e[0], True)]
        events.append((None, "end", end))
        started: dict[str, tuple[int, Any]] = {}
        spans: dict[str, float] = {}
        for i, (path, kind, mark) in enumerate(events):
            if kind == "pre":
                started[path] = (i, mark)
            elif kind == "post" and path in started:
                spans[path] = self.clock.seconds(started[path][1], mark)
        for path, (i, mark) in started.items():
            if not self.grad_in.get(path, True):
                nxt = next(e for e in events[i + 1:] if not self._inside(e[0], path))
                spans[path] = self.clock.seconds(mark, nxt[2])
        return spans

    def exclusive(self, inclusive: dict[str, float]) -> dict[str, float]:
        """Each module's own time: its span less the spans of the timed modules inside it."""
        own = {p: inclusive.get(p, 0.0) for p in self.modules}
        for p, parent in self.parent.items():
            if parent is not None:
                own[parent] -= inclusive.get(p, 0.0)
        return {p: max(t, 0.0) for p, t in own.items()}


# ----------------------------------------------------------------------------- the measurement


@dataclass
class LayerTime:
    """One layer's medians (seconds) and its static multiply-accumulates per sample."""

    name: str
    op: str
    line: int
    macs: int
    forward: float = 0.0
    backward: float = 0.0
    rank: int | None = None  # 1 for the costliest layer, up to TOP

    @property
    def total(self) -> float:
        return self.forward + self.backward


@dataclass
class Timing:
    """The result of `time_network`: per-layer medians and whole-pass medians, in seconds."""

    arch: str
    file: str
    input: tuple
    output: tuple
    device: str
    threads: int | None
    batch_size: int
    warmup: int
    repeat: int
    layers: list[LayerTime]
    whole: tuple[float, float]  # forward, backward of a plain pass (no hooks)
    hooked: tuple[float, float]  # forward with forward hooks, backward with backward hooks
    notes: list[str] = field(default_factory=list)

    def sums(self) -> tuple[float, float]:
        return (sum(t.forward for t in self.layers), sum(t.backward for t in self.layers))

    def ratio(self) -> float | None:
        """Sum of the layers over the plain whole pass (1.0: they add up exactly)."""
        whole = sum(self.whole)
        return sum(self.sums()) / whole if whole > 0 else None

    def overhead(self) -> float:
        """Seconds a hooked pass took beyond a plain one."""
        return sum(self.hooked) - sum(self.whole)

    def top(self) -> list[LayerTime]:
        return sorted((t for t in self.layers if t.rank), key=lambda t: t.rank)


def _layer_paths(network) -> list[tuple[dict, str]]:
    """Each layer record of `check` and the module path that runs it: its own module, or for
    a merge its combinator's (None for a merge of named values, which has none)."""
    graph = network.graph
    out = []
    for record in network.layers():
        node = graph.layer(record["name"])
        path = graph.groups[node.merge.group].name if node.merge is not None else \
            None if node.kind.merges else record["name"]  # `a, b; add`: no module of its own
        out.append((record, path))
    return out


def _pass(module, x, grad, clock, recorder=None, direction=None) -> tuple[float, float, dict]:
    """One forward and backward, with one direction's hooks or none: (forward seconds,
    backward seconds, each module's own seconds in the hooked direction); backward from the
    main output (an auxiliary one is left out)."""
    from .flow import main_output

    module.zero_grad(set_to_none=True)
    if recorder is not None:
        recorder.start()
        recorder.attach(direction)
    try:
        with warnings.catch_warnings():  # torch says so when the first layer's hook fires
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            t0 = clock.mark()
            out = main_output(module(x))
            t1 = clock.mark()
            if out.requires_grad:
                out.backward(grad)
            t2 = clock.mark()
            clock.wait()
    finally:
        if recorder is not None:
            recorder.detach()
    if recorder is None:
        own = {}
    elif direction == "forward":
        own = recorder.exclusive({p: clock.seconds(recorder.fwd_pre[p], recorder.fwd_post[p])
                                  for p in recorder.fwd_pre if p in recorder.fwd_post})
    else:
        own = recorder.exclusive(recorder.backward_intervals(t2))
    return clock.seconds(t0, t1), clock.seconds(t1, t2), own


def _out_of_place(module) -> list:
    """Turn every in-place activation off (a full backward hook cannot follow a tensor that
    is overwritten in place); return them, to turn back on after."""
    changed = [m for m in module.modules() if getattr(m, "inplace", None) is True]
    for m in changed:
        m.inplace = False
    return changed


KINDS = (None, "forward", "backward")  # a plain pass, and one hooked for each direction


def time_network(network, *, device: str = "cpu", batch_size: int = 8, warmup: int = 2,
                 repeat: int = 5, clock=None, module=None, seed: int = 0) -> Timing:
    """Time every layer of a checked Network: medians of `repeat` rounds after `warmup`,
    each round a plain pass, a pass with forward hooks and one with backward hooks, in
    turns. `module` is the compiled network (default: `network.to_torch()`); `clock` has
    mark(), seconds(a, b) and wait() (default: the device's)."""
    import torch

    torch.manual_seed(seed)
    dev = torch.device(device)
    module = network.to_torch() if module is None else module
    module.to(dev).train()
    clock = clock or (CudaClock(dev) if dev.type == "cuda" else CpuClock())
    records = _layer_paths(network)
    recorder = _Recorder(module, list(dict.fromkeys(p for _, p in records if p)), clock)
    x = torch.randn(batch_size, *network.input_shape, device=dev)
    grad = torch.randn(batch_size, *network.output_shape, device=dev)
    changed = _out_of_place(module)
    runs: dict = {kind: [] for kind in KINDS}
    try:
        for i in range(warmup + repeat):
            for kind in KINDS[i % 3:] + KINDS[:i % 3]:  # each kind first in turn
                result = _pass(module, x, grad, clock, recorder if kind else None, kind)
                if i >= warmup:
                    runs[kind].append(result)
    finally:
        for m in changed:
            m.inplace = True
        module.zero_grad(set_to_none=True)
    layers = [LayerTime(r["name"], r["op"], r["line"], r["macs"],
                        statistics.median(run[2].get(p, 0.0) for run in runs["forward"]),
                        statistics.median(run[2].get(p, 0.0) for run in runs["backward"]))
              for r, p in records]
    _rank(layers)
    return Timing(network.name, network.file, network.input_shape, network.output_shape,
                  dev.type, torch.get_num_threads() if dev.type == "cpu" else None, batch_size,
                  warmup, repeat, layers, _medians(runs[None]),
                  (statistics.median(r[0] for r in runs["forward"]),
                   statistics.median(r[1] for r in runs["backward"])),
                  notes=_notes(changed))


def _medians(passes: list[tuple[float, float]]) -> tuple[float, float]:
    return (statistics.median(p[0] for p in passes), statistics.median(p[1] for p in passes))


def _rank(layers: list[LayerTime]) -> None:
    costly = sorted((t for t in layers if t.total > 0), key=lambda t: -t.total)[:TOP]
    for i, t in enumerate(costly, 1):
        t.rank = i


def _notes(changed: list) -> list[str]:
    if not changed:
        return []
    return [f"{len(changed)} in-place activation(s) ran out of place while timed (backward "
            "hooks cannot follow a tensor overwritten in place), in the plain passes too"]


# ----------------------------------------------------------------------------- the report


def _gflops(macs: int, batch: int, seconds: float, flops_per_mac: int) -> float | None:
    """Achieved GFLOP/s: a multiply-accumulate is 2 floating-point operations forward; the
    backward pass does twice the forward's (the input's gradient and the weights')."""
    return flops_per_mac * macs * batch / seconds / 1e9 if macs and seconds > 0 else None


def to_json(timing: Timing) -> dict[str, Any]:
    """The JSON document of `archdsl time --format json` (times in milliseconds)."""
    total = sum(timing.sums())
    fwd, bwd = timing.sums()
    ratio = timing.ratio()
    return {
        "arch": timing.arch, "file": timing.file, "input": list(timing.input),
        "output": list(timing.output), "device": timing.device, "threads": timing.threads,
        "batch_size": timing.batch_size, "mode": "train", "warmup": timing.warmup,
        "repeat": timing.repeat,
        "layers": [{"name": t.name, "op": t.op, "line": t.line, "macs": t.macs,
                    "forward_ms": t.forward * 1e3, "backward_ms": t.backward * 1e3,
                    "total_ms": t.total * 1e3, "share": t.total / total if total else None,
                    "forward_gflops": _gflops(t.macs, timing.batch_size, t.forward, 2),
                    "backward_gflops": _gflops(t.macs, timing.batch_size, t.backward, 4),
                    "rank": t.rank} for t in timing.layers],
        "total": {"macs": sum(t.macs for t in timing.layers), "forward_ms": fwd * 1e3,
                  "backward_ms": bwd * 1e3, "total_ms": total * 1e3},
        "whole": {"forward_ms": timing.whole[0] * 1e3, "backward_ms": timing.whole[1] * 1e3,
                  "total_ms": sum(timing.whole) * 1e3},
        "hooked": {"forward_ms": timing.hooked[0] * 1e3, "backward_ms": timing.hooked[1] * 1e3,
                   "total_ms": sum(timing.hooked) * 1e3},
        "ratio": ratio, "adds_up": ratio is not None and abs(ratio - 1) <= 0.1,
        "hook_overhead_ms": timing.overhead() * 1e3,
        "top": [t.name for t in timing.top()],
        "notes": list(timing.notes),
    }


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.3f}"


def _ratio(part: float, whole: float) -> str:
    return f"{part / whole:.3f}" if whole > 0 else "-"


WIDTH = 80  # the narrow table's width: a terminal's


def _rows(timing: Timing) -> list[tuple[str, ...]]:
    total = sum(timing.sums())
    batch = timing.batch_size
    rows = []
    for t in timing.layers:
        g = (_gflops(t.macs, batch, t.forward, 2), _gflops(t.macs, batch, t.backward, 4))
        rows.append((t.name, t.op, f"{t.macs:,}", _ms(t.forward), _ms(t.backward), _ms(t.total),
                     f"{t.total / total:.1%}" if total else "-",
                     *(f"{v:,.1f}" if v is not None else "-" for v in g),
                     f"#{t.rank}" if t.rank else ""))
    return rows


HEADER = ("layer", "op", "MACs", "forward ms", "backward ms", "total ms", "share",
          "fwd GFLOP/s", "bwd GFLOP/s", "top")
# the narrow table: no op (a layer's name says it: conv1, body.bn2) and no GFLOP/s
NARROW = (0, 2, 3, 4, 5, 6, 9)
NARROW_HEADER = ("layer", "MACs", "fwd ms", "bwd ms", "total ms", "share", "top")
NARROW_FOOT = ("sum of layers", "whole, no hooks", "layers / whole")


def table(timing: Timing, wide: bool = False) -> str:
    """The per-layer table, the total row, the whole pass measured alone and the ratio:
    within 80 columns (long layer names cut in the middle), or with `wide` every column
    (op, GFLOP/s) and whole names."""
    from .layers.base import fmt_shape

    rows = _rows(timing)
    fwd, bwd = timing.sums()
    macs = sum(t.macs for t in timing.layers)
    g = (_gflops(macs, timing.batch_size, fwd, 2), _gflops(macs, timing.batch_size, bwd, 4))
    foot = [("total (sum of layers)", "", f"{macs:,}", _ms(fwd), _ms(bwd), _ms(fwd + bwd),
             "100.0%" if fwd + bwd else "-", *(f"{v:,.1f}" if v else "-" for v in g), ""),
            ("whole pass, no hooks", "", "", *(_ms(s) for s in (*timing.whole,
                                                                 sum(timing.whole))),
             "", "", "", ""),
            ("layers / whole", "", "", _ratio(fwd, timing.whole[0]),
             _ratio(bwd, timing.whole[1]), _ratio(fwd + bwd, sum(timing.whole)), "", "", "", "")]
    header = HEADER
    if not wide:
        header = NARROW_HEADER
        rows = [tuple(r[i] for i in NARROW) for r in rows]
        foot = [(label, *(r[i] for i in NARROW[1:])) for label, r in zip(NARROW_FOOT, foot)]
        rows = _fit_names(rows, foot, header)
    text = _aligned(header, rows, foot, left=1 if not wide else 2)
    where = (f"cpu, {timing.threads} thread{'' if timing.threads == 1 else 's'}"
             if timing.device == "cpu" else timing.device)
    lines = [f"{timing.arch}: {fmt_shape(timing.input)} -> {fmt_shape(timing.output)}   "
             f"({timing.file})",
             f"batch {timing.batch_size} on {where}, train mode; medians of {timing.repeat} "
             f"passes after {timing.warmup} warm-up", *text, ""]
    return "\n".join(lines + _summary(timing, fwd + bwd, None if wide else WIDTH))


def _aligned(header, rows, foot, left: int) -> list[str]:
    """The table's lines: the first `left` columns to the left, the others to the right."""
    widths = [max(len(r[i]) for r in rows + foot + [header]) for i in range(len(header))]

    def fmt(r):
        return "  ".join(c.ljust(widths[i]) if i < left else c.rjust(widths[i])
                         for i, c in enumerate(r)).rstrip()

    rule = "-" * len(fmt(tuple("-" * w for w in widths)))
    return [fmt(header), rule, *(fmt(r) for r in rows), rule, *(fmt(r) for r in foot)]


def _fit_names(rows, foot, header) -> list[tuple[str, ...]]:
    """The rows with layer names longer than the room WIDTH leaves cut in the middle
    (`basic1.resi…body.conv1`); the footer's labels are never cut."""
    others = sum(max(len(r[i]) for r in rows + foot + [header]) + 2
                 for i in range(1, len(header)))
    room = max(WIDTH - others, max(len(r[0]) for r in foot), 12)
    return [(_cut(r[0], room), *r[1:]) for r in rows]


def _cut(name: str, room: int) -> str:
    if len(name) <= room:
        return name
    head = (room - 1) // 2
    return name[:head] + "…" + name[len(name) - (room - 1 - head):]


def _summary(timing: Timing, total: float, width: int | None) -> list[str]:
    """The lines under the table, wrapped to `width` (None: not wrapped)."""
    import textwrap

    lines = []
    if timing.top():
        # an entry is never split over two lines: its spaces are kept apart until wrapped
        lines.append("costliest: " + ", ".join(f"#{t.rank}\0{t.name}\0{t.total / total:.1%}"
                                                for t in timing.top()))
    lines += _hooks(timing)
    ratio = timing.ratio()
    if ratio is not None and abs(ratio - 1) > 0.1:
        lines.append(f"note: the layers add up to {ratio:.3f} of the whole pass, outside 10%: "
                     "other work on the machine, or layers too quick for their hooks; try "
                     "--repeat 20 or a larger --batch-size")
    lines += [f"note: {n}" for n in timing.notes]
    if width is not None:
        lines = [part for line in lines
                 for part in textwrap.wrap(line, width, subsequent_indent="  ",
                                           break_on_hyphens=False, break_long_words=False)]
    return [line.replace("\0", " ") for line in lines]


def _hooks(timing: Timing) -> list[str]:
    """What the hooks cost: a hooked pass beside a plain one. A hooked pass that was quicker
    says the difference is noise, not a cost."""
    extra, plain = timing.overhead(), sum(timing.whole)
    if plain <= 0:
        return []
    if extra >= 0:
        return [f"hooks: a hooked pass took {_ms(extra)} ms more than a plain one "
                f"({extra / plain:+.1%}), the hooks' own cost; a layer's own time leaves most "
                "of it out"]
    return [f"hooks: a hooked pass took {_ms(-extra)} ms less than a plain one "
            f"({extra / plain:+.1%}): the passes' times varied more than the hooks cost "
            "(other work on the machine?), so the hooks' cost is within the noise; a larger "
            "--repeat steadies the medians"]
