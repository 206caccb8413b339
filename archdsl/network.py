"""The front half of the compiler in one call: parse, expand, check, lint -> Network."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from .diagnostics import Diagnostic, Span, SpecError, error, sort_key, trim_notes
from .layers.base import fmt_shape


class Network:
    """A checked network: its layer graph, totals and any warnings."""

    def __init__(self, graph, diagnostics: list[Diagnostic]):
        self.graph = graph
        self.diagnostics = diagnostics

    # -- what the graph says ----------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def file(self) -> str:
        return self.graph.file

    @property
    def source(self) -> str:
        return self.graph.source

    @property
    def arch_params(self) -> dict[str, Any]:
        """The resolved values of the `arch` header's parameters."""
        return dict(self.graph.params)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.graph.input_shape)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.graph.shape(self.graph.output)

    @property
    def params(self) -> int:
        """Trainable parameters: what torch's `parameters()` would count."""
        return self.graph.totals.params

    trainable_params = params

    @property
    def buffers(self) -> int:
        """Values in buffers (batch norm's running statistics)."""
        return self.graph.totals.buffers

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one forward pass of one sample (conv and linear)."""
        return self.graph.totals.macs

    @property
    def memory(self) -> dict[str, int]:
        """Bytes (float32): parameters and buffers, and all layer outputs of one sample."""
        t = self.graph.totals
        return {"params": t.param_bytes, "activations": t.activation_bytes}

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    def layers(self) -> list[dict[str, Any]]:
        """One record per layer in topological order (the input excluded)."""
        from .report import layer_records

        return layer_records(self.graph)

    def to_torch(self):
        """Compile into a torch.nn.Module whose structure mirrors the spec (imports torch)."""
        from .torch_backend import to_torch

        return to_torch(self)

    def summary(self) -> str:
        """The per-layer table `archdsl check` prints, with totals."""
        from .report import table

        return table(self)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of `archdsl check --format json`."""
        from .report import to_json

        return to_json(self, self.diagnostics)

    def _repr_html_(self) -> str:
        """Jupyter's view: the summary table and the drawing, folded (<details>) when the
        table is longer than 40 rows."""
        import html

        table, picture = self.summary(), self._repr_svg_()
        rows = table.count("\n") + 1
        body = f"<pre>{html.escape(table)}</pre>"
        if picture is not None:  # inline: without the XML prologue
            body += f"\n<div style='max-width:100%;overflow:auto'>{picture[picture.find('<svg'):]}</div>"
        head = f"<code>{html.escape(repr(self))}</code>"
        if rows > 40:
            return f"<details><summary>{head} ({rows} table rows)</summary>\n{body}</details>"
        return f"<div>{head}\n{body}</div>"

    def _repr_svg_(self) -> str | None:
        """The drawing alone, as SVG (None without Graphviz's `dot`)."""
        from .draw import to_dot

        try:
            return to_dot(self.graph, self.diagnostics).pipe(format="svg").decode("utf-8")
        except Exception:  # noqa: BLE001 - no dot binary: Jupyter shows the table alone
            return None

    def __repr__(self) -> str:
        return (f"<Network {self.name}: {fmt_shape(self.input_shape)} -> "
                f"{fmt_shape(self.output_shape)}, {self.params:,} params, {self.macs:,} MACs>")


def analyse(text: str, file: str = "<string>", params: dict[str, Any] | None = None,
            input_shape: tuple[int, ...] | None = None):
    """Run every stage; return (Network or None, diagnostics sorted by position).

    Never raises for any input text: unexpected failures become an E-INTERNAL diagnostic.
    """
    spec, graph, diagnostics = analyse_graph(text, file, params, input_shape)
    if graph is None or any(d.is_error for d in diagnostics):
        return None, diagnostics
    return Network(graph, diagnostics), diagnostics


def analyse_graph(text: str, file: str = "<string>", params: dict[str, Any] | None = None,
                  input_shape: tuple[int, ...] | None = None):
    """Like `analyse`, but keep the layer graph even when the spec has errors (for drawing
    as much as can be drawn): return (spec or None, graph or None, diagnostics)."""
    collecting = gc.isenabled()
    gc.disable()  # the graph is thousands of small objects and no cycles to free: the
    try:          # collector's full passes made big networks a third slower (benchmarks.md)
        return _analyse(text, file, params or {}, input_shape)
    except RecursionError:
        return None, None, [error("E-NESTING", "the spec is nested too deeply to check",
                                  Span(file, 1, 1, 1, 2),
                                  hint="define a `block` for the inner part")]
    except Exception as exc:  # noqa: BLE001 - the promise is: no traceback for any input
        return None, None, [error("E-INTERNAL", f"archdsl failed on this spec "
                                  f"({type(exc).__name__}: {exc})", Span(file, 1, 1, 1, 2),
                                  hint="this is a bug in archdsl; please report it with the spec")]
    finally:
        if collecting:
            gc.enable()


# A spec is text a person writes: the largest legal network (5,000 layers, one per line,
# commented) is a few hundred KiB. Beyond this the file is not a spec, and parsing it would
# take minutes and gigabytes.
MAX_SPEC_BYTES = 1 << 20


def _too_large(text: str, file: str) -> Diagnostic | None:
    if len(text) <= MAX_SPEC_BYTES:
        return None
    from .report import human_bytes

    return error("E-FILE", f"the spec is {human_bytes(len(text))} long; a spec is at most "
                 f"{human_bytes(MAX_SPEC_BYTES)}", Span(file, 1, 1, 1, 2),
                 hint="is this the right file? Networks are written with `block` and `repeat`, "
                      "not layer by layer")


def _analyse(text, file, params, input_shape):
    from .expand import expand, insert_shortcuts
    from .infer import infer
    from .locate import with_calls_at
    from .lints import lint
    from .syntax import parse

    big = _too_large(text, file)
    if big is not None:
        return None, None, [big]
    spec, diagnostics = parse(text, file)
    if spec is None:
        return None, None, sorted(diagnostics, key=sort_key)
    graph, found = expand(spec, params, input_shape)
    diagnostics += found
    if graph is not None:
        insert_shortcuts(graph)
        diagnostics += infer(graph)
    if graph is not None and not any(d.is_error for d in diagnostics):
        diagnostics += [with_calls_at(graph, d) for d in lint(graph)]
    return spec, graph, sorted(_once(diagnostics), key=sort_key)


def _once(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Each finding once: a statement expanded twice (two calls of a block, two iterations)
    that fails alike reports once, with the chain of calls of the first; calls that fail
    differently (another message, another value) stay separate diagnostics."""
    first: dict[Diagnostic, Diagnostic] = {}
    for d in diagnostics:
        first.setdefault(d.without_notes(), trim_notes(d))
    return list(first.values())


def loads(text: str, file: str = "<string>", *, input_shape: tuple[int, ...] | None = None,
          **params) -> Network:
    """Check spec text; return the Network or raise SpecError with every diagnostic (and no
    other exception, whatever the arguments)."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise SpecError([error("E-API", f"loads needs the spec's text as a str, not "
                               f"{type(text).__name__}", None,
                               hint="archdsl.load(path) reads a file")])
    if input_shape is not None:
        input_shape = _input_shape(input_shape, str(file))
    network, diagnostics = analyse(text, str(file), params, input_shape)
    if network is None:
        from .syntax import normalise_source

        raise SpecError(diagnostics, source=normalise_source(text))
    return network


def _input_shape(value, file: str) -> tuple[int, ...]:
    """`input_shape` as a tuple of whole numbers: (3, 224, 224), [3, 224, 224] or "3x224x224"."""
    if isinstance(value, str):
        parts = value.lower().split("x")
        if all(p.strip().isdigit() for p in parts):
            return tuple(int(p) for p in parts)
    elif isinstance(value, (tuple, list)) and all(
            isinstance(d, int) and not isinstance(d, bool) for d in value):
        return tuple(value)
    raise SpecError([error("E-INPUT", f"input_shape must be whole numbers, CxHxW or one feature "
                           f"count, not {value!r}", Span(file, 1, 1, 1, 2),
                           hint="e.g. input_shape=(3, 224, 224) or \"3x224x224\"")])


def load(path: str | Path, *, input_shape: tuple[int, ...] | None = None, **params) -> Network:
    """Read and check a .arch file; `params` override the `arch` header's defaults."""
    return loads(spec_bytes(path), str(path), input_shape=input_shape, **params)


def spec_bytes(path: str | Path) -> bytes:
    """A spec file's bytes, or SpecError E-FILE saying why they cannot be read."""
    try:
        return read_spec_data(Path(path))
    except OSError as exc:
        raise SpecError([error("E-FILE", f"cannot read {path}: {exc.strerror or exc}",
                               None)]) from None


def build(path: str | Path, *, input_shape: tuple[int, ...] | None = None, **params):
    """Load, check and compile a .arch file in one call: `archdsl.build("specs/resnet50.arch")`
    (imports torch)."""
    return load(path, input_shape=input_shape, **params).to_torch()


def read_spec_data(path: Path) -> bytes:
    """A spec file's bytes. Reads at most MAX_SPEC_BYTES (and one more): OSError (EFBIG) for a
    larger file, so that /dev/zero or a 50 MB log is refused at once rather than parsed."""
    import errno

    with open(path, "rb") as f:
        data = f.read(MAX_SPEC_BYTES + 1)
    if len(data) > MAX_SPEC_BYTES:
        from .report import human_bytes

        raise OSError(errno.EFBIG, f"it is larger than {human_bytes(MAX_SPEC_BYTES)}, the most a "
                      "spec can be (is it the right file?)", str(path))
    return data
