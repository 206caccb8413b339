"""A call of a prelude block (archdsl/prelude.arch) as the user sees it: every layer, group and
diagnostic it makes points at the call in the user's file (the prelude's own lines mean
nothing there), and the values it names inside are its own business (not listed)."""

from __future__ import annotations

from dataclasses import replace

from .. import prelude
from ..diagnostics import DiagnosticError


def at_call_site(walk, st, call):
    """Run `call()` (the block's expansion) and move what it made onto `st`'s span."""
    graph = walk.graph
    nodes, groups, names, first = (len(graph.order), len(graph.groups), len(graph.names),
                                   len(walk.diagnostics))
    try:
        return call()
    except DiagnosticError as exc:
        raise DiagnosticError(_moved(exc.diagnostic, st)) from None
    finally:
        for nid in graph.order[nodes:]:
            node = graph.layer(nid)
            node.span, node.arg_spans = st.span, {}
        for gid in range(groups, len(graph.groups)):
            graph.groups[gid].span = st.span
        del graph.names[names:]
        walk.diagnostics[first:] = [_moved(d, st) for d in walk.diagnostics[first:]]


def _inside(span) -> bool:
    return span is not None and span.file == prelude.FILE


def _moved(d, st):
    """`d` pointing at the call `st` where it points into the prelude, with a note saying
    where in the prelude block."""
    notes = tuple(n for n in d.notes if not _inside(n.span))
    if not _inside(d.span):
        return replace(d, notes=notes)
    where = f"inside the prelude block `{st.op}` (archdsl/prelude.arch, line {d.span.line})"
    return replace(d, span=st.span, label=None, notes=notes).with_note(where, None)
