"""Syntax tree + parameter values -> the typed layer graph (archdsl/graph.py).

Split by idea: arguments.py (a statement's arguments onto a kind's declared ones, each type
coercing itself), expressions.py (evaluating `c*2`), binder.py (a block call's arguments,
shared with the size estimate), walk.py (statements -> nodes, edges, groups) and
shortcuts.py (the projection pass, run after the walk by `archdsl.network`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import layers
from ..declarations import declaration_problems
from ..diagnostics import Diagnostic, DiagnosticError, Span, did_you_mean, error, warning
from ..graph import LayerGraph, LayerNode
from ..layers.base import Args
from ..syntax import Combinator, Keyword, Layer, Name, Repeat, Spec
from .budget import WorkLimit, bounded
from .expressions import FUNCTIONS, Word, defined, evaluate, repeat_indices
from .shortcuts import insert_shortcuts
from .named import outputs, port_problems, unused
from .walk import MAX_DEPTH, MAX_NODES, Scope, Walk


def expand(spec: Spec, overrides: dict[str, Any] | None = None,
           input_shape: tuple[int, ...] | None = None):
    """Build the layer graph of `spec`. Returns (LayerGraph or None, diagnostics)."""
    diagnostics: list[Diagnostic] = declaration_problems(spec, FUNCTIONS)
    if any(d.is_error for d in diagnostics):  # which of two same-named parameters is meant?
        return None, diagnostics
    for block in spec.blocks.values():
        if layers.get(block.name) is not None:  # a kind added since the spec was written
            diagnostics.append(warning(
                "W-SHADOW", f"block `{block.name}` has the name of a built-in layer kind: in "
                f"this file `{block.name}` means the block", block.name_span,
                hint=f"to use the built-in `{block.name}` here, rename the block, e.g. "
                     f"`my_{block.name}`"))
        diagnostics += port_problems(spec, block)
    graph = LayerGraph(spec.name, spec.file, spec.source)
    graph.params = {}
    with defined(spec.functions, graph.params), repeat_indices(_indices(spec)), bounded():
        try:
            return _expand(spec, graph, overrides, input_shape, diagnostics)
        except WorkLimit as exc:  # a runaway `def` or repeat: nothing sensible to check
            return None, diagnostics + [exc.diagnostic]


def _indices(spec: Spec) -> dict[str, Span]:
    """Each repeat index the spec names (`repeat n as i`), with the first place it is named."""
    found: dict[str, Span] = {}
    todo = [spec.body, *(b.body for b in spec.blocks.values())]
    while todo:
        for st in todo.pop():
            if isinstance(st, Repeat):
                if st.index is not None:
                    found.setdefault(st.index.name, st.index.span)
                todo.append(st.body)
            elif isinstance(st, Combinator):
                todo.extend(b.body for b in st.branches)
    return found


def _expand(spec: Spec, graph: LayerGraph, overrides, input_shape, diagnostics):
    graph.params.update(_arch_params(spec, overrides or {}, diagnostics, graph.params))
    if spec.arch and any(p.name not in graph.params for p in spec.arch.params):
        return None, diagnostics  # a parameter without a value: its E-PARAM says all there is
    graph.input_shape = _input_dims(spec, input_shape, diagnostics)
    graph.shaping_params = _shaping_names(spec) & set(graph.params)
    if spec.init:
        graph.init = (spec.init.scheme, spec.init.options)
    span = spec.input.span if spec.input else Span(spec.file, 1, 1, 1, 1)
    graph.add(LayerNode("input", None, Args({}), span))
    scope = Scope(values=dict(graph.params), prefix="", groups=(), taken=frozenset(spec.blocks))
    try:
        walk = Walk(spec, graph, diagnostics)
        end = walk.emit(spec.body, "input", scope)
    except DiagnosticError as exc:  # too big or too deep: nothing sensible to check
        diagnostics.append(exc.diagnostic)
        return None, diagnostics
    graph.outputs = outputs(spec.outputs, scope.names, end, graph, walk.known, diagnostics,
                            spec.body[-1].span if spec.body else None)
    graph.output = graph.outputs[0].node
    if (graph.names or graph.dataflow) and not any(d.is_error for d in diagnostics):
        diagnostics += unused(graph, graph.outputs)  # (without names every value is read)
    if any(d.is_error for d in diagnostics) and len(graph) <= 1:
        return None, diagnostics
    return graph, diagnostics


def _shaping_names(spec: Spec) -> set[str]:
    """Every name the spec reads, except a whole argument of a top-level layer (`linear
    num_classes`): a parameter read only there sets that layer's argument and nothing else."""
    whole = set()
    for st in spec.body:
        if isinstance(st, Layer) and st.op not in spec.blocks:
            for a in st.args:
                expr = a.value if isinstance(a, Keyword) else a
                if isinstance(expr, Name):
                    whole.add(id(expr))
    found: set[str] = set()
    todo: list = [spec.body, list(spec.blocks.values()), list(spec.functions.values()), spec.arch]
    while todo:
        item = todo.pop()
        if isinstance(item, Name):
            if id(item) not in whole:
                found.add(item.name)
        elif isinstance(item, (list, tuple)):
            todo.extend(item)
        elif dataclasses.is_dataclass(item) and not isinstance(item, Span):
            todo.extend(getattr(item, f.name) for f in dataclasses.fields(item))
    return found


def _arch_params(spec: Spec, overrides: dict[str, Any], diagnostics,
                 values: dict[str, Any]) -> dict[str, Any]:
    """The arch parameters' values, filled into `values` (which `def` functions read)."""
    header = spec.arch
    params = header.params if header else ()
    declared = {p.name for p in params}
    for name in overrides:
        if name not in declared:
            hint = did_you_mean(name, declared) or (
                f"the spec's parameters are: {', '.join(sorted(declared))}" if declared
                else "the spec declares no parameters (`arch name(param=default)`)")
            diagnostics.append(error("E-PARAM", f"unknown parameter `{name}`",
                                     header.span if header else Span(spec.file, 1, 1, 1, 2),
                                     hint=hint))
    for p in params:
        if p.name in overrides and _fits(p, overrides[p.name], values, diagnostics):
            values[p.name] = overrides[p.name]
        elif p.default is not None:
            try:
                values[p.name] = evaluate(p.default, values, words_ok=True)
            except DiagnosticError as exc:
                diagnostics.append(exc.diagnostic)
        else:
            diagnostics.append(error(
                "E-PARAM", f"parameter `{p.name}` has no default and was not set", p.span,
                hint=f"give it a default (`{p.name}=…`) or set it: `--set {p.name}=…`"))
    return values


_SORTS = {bool: "true or false", int: "a number", float: "a number", tuple: "a shape such as 7x7",
          str: "a word"}


def _sort(value) -> str | None:
    """What kind of value this is, in the user's words (whole and decimal numbers alike)."""
    return next((words for t, words in _SORTS.items() if isinstance(value, t)), None)


def _fits(p, value, values: dict[str, Any], diagnostics) -> bool:
    """Whether an override (`--set num_classes=abc`) is the sort of value the parameter's
    default is; if not, an E-PARAM that names the option (it has no place in the file) and
    the default is kept, so the layers that read it are not blamed."""
    if p.default is None:
        return True
    try:
        default = evaluate(p.default, values, words_ok=True)
    except DiagnosticError:
        return True
    want, got = _sort(default), _sort(value)
    if want == got or (want == "a shape such as 7x7" and got == "a number") or None in (want, got):
        return True
    from ..layers.types import show

    diagnostics.append(error(
        "E-PARAM", f"--set {p.name}={show(value)}: `{p.name}` takes {want} (its default is "
        f"{show(default)}), not {got}", None,
        hint=f"e.g. `--set {p.name}={show(default)}` (from Python: "
             f"`archdsl.load(path, {p.name}=…)`)").with_note(
        f"`{p.name}` is declared here", p.span))
    return False


def _input_dims(spec: Spec, override, diagnostics):
    if override is not None:
        dims, span = tuple(override), spec.input.span if spec.input else None
    elif spec.input is None:
        diagnostics.append(error(
            "E-NO-INPUT", "the spec has no `input` line, so no shape can be checked",
            Span(spec.file, 1, 1, 1, 2),
            hint="declare one sample's shape, channels first: `input 3x224x224`"))
        return None
    else:
        dims, span = spec.input.dims, spec.input.span
    if len(dims) not in (1, 3):
        diagnostics.append(error(
            "E-INPUT", f"input {'x'.join(map(str, dims))} has {len(dims)} dimensions",
            span, hint="give CxHxW for images (e.g. `input 1x28x28`) or a feature count"))
        return None
    if min(dims) < 1:
        diagnostics.append(error("E-INPUT", "every input dimension must be at least 1", span))
        return None
    if _channels_last(dims):
        shown, meant = "x".join(map(str, dims)), "x".join(map(str, (dims[2], *dims[:2])))
        diagnostics.append(warning(
            "W-CHANNELS-LAST", f"input {shown} reads as {dims[0]} channels of {dims[1]}x{dims[2]}: "
            "archdsl is channels-first (CxHxW)", span,
            hint=f"for {dims[2]} channel{'s' if dims[2] > 1 else ''} of {dims[0]}x{dims[1]}, "
                 f"write `input {meant}`"))
    return dims


def _channels_last(dims) -> bool:
    """An image shape written HxWxC (Keras's and the image files' order): 1, 3 or 4 channels
    last (grey, RGB, RGBA) after two sizes too large to be a channel count and a height."""
    return len(dims) == 3 and dims[2] in (1, 3, 4) and min(dims[:2]) >= 8


__all__ = ["expand", "insert_shortcuts", "MAX_NODES", "MAX_DEPTH", "Word"]
