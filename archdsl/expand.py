"""Syntax tree + parameter values -> layer graph (a networkx DiGraph).

One node per layer instance, in topological order (graph.graph["order"]), with its op, its
resolved arguments and its source span. Edges carry tensors; at a merge the edge's `port` is
the branch index. Blocks, repeats and combinators are recorded as groups
(graph.graph["groups"]) so that drawing and module naming can group by them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import layers
from .diagnostics import Diagnostic, DiagnosticError, Span, did_you_mean, error
from .layers.base import BOOL, CHOICE, FLOAT, INT, PADDING, PAIR, Arg, Args
from .layers.merge import MergeKind
from .syntax import (BinOp, BlockDef, Branch, Combinator, Keyword, Layer, Name, Neg, Num, Repeat,
                     ShapeLit, Spec)

COMBINATORS = {"residual": "add", "add": "add", "mul": "mul", "concat": "concat"}
# Beyond the deepest published networks (ResNet-152 has 516 layers, DenseNet-264 about 1,000,
# the CIFAR ResNet-1202 about 3,600); stops runaway repeats, and keeps checking and drawing
# the largest spec it allows under a second on a laptop-class CPU.
MAX_NODES = 5_000
# Block calls, repeats and combinators nested inside each other (a combinator or a repeat
# counts twice: itself and its branch or iteration). PyTorch runs nested modules by Python
# recursion, and a forward pass through much deeper nesting would hit its recursion limit.
MAX_DEPTH = 100


class Word(str):
    """A bare word that names no parameter: `same`, `reflect`, `nobias`, `k3`, `true`."""


@dataclass
class Group:
    """A block call, a repeat (and each of its iterations), a combinator or one of its branches."""

    id: int
    kind: str  # block, repeat, iteration, residual, concat, add, mul, branch
    name: str  # dotted path, as used for node names
    label: str  # what the user wrote, e.g. `basic 128 s=2`
    span: Span
    parent: int | None
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Scope:
    values: dict[str, Any]
    prefix: str
    groups: tuple[int, ...]
    counts: dict[str, int] = field(default_factory=dict)
    depth: int = 0

    def child_name(self, base: str) -> str:
        self.counts[base] = self.counts.get(base, 0) + 1
        sep = "_" if base[-1].isdigit() else ""  # relu6_1, not relu61
        return f"{self.prefix}{base}{sep}{self.counts[base]}"


def expand(spec: Spec, overrides: dict[str, Any] | None = None,
           input_shape: tuple[int, ...] | None = None):
    """Build the layer graph of `spec`. Returns (graph or None, diagnostics)."""
    return _Expander(spec).run(overrides or {}, input_shape)


class _Expander:
    def __init__(self, spec: Spec):
        import networkx as nx

        self.spec = spec
        self.graph = nx.DiGraph()
        self.order: list[str] = []
        self.groups: dict[int, Group] = {}
        self.diagnostics: list[Diagnostic] = []
        self.call_stack: list[str] = []

    # ------------------------------------------------------------------------- entry
    def run(self, overrides: dict[str, Any], input_shape):
        spec = self.spec
        for block in spec.blocks.values():
            if layers.get(block.name) is not None or block.name == "init":
                self.diagnostics.append(error(
                    "E-DUPLICATE", f"`{block.name}` is already a layer kind, so a block cannot take "
                    "that name", block.name_span, hint=f"rename the block, e.g. `my_{block.name}`"))
        values = self._arch_params(overrides)
        dims = self._input_dims(input_shape)
        g = self.graph
        init = (spec.init.scheme, spec.init.options) if spec.init else ("pytorch", ())
        g.graph.update(name=spec.name, file=spec.file, source=spec.source, order=self.order,
                       groups=self.groups, params=dict(values), input_shape=dims, init=init)
        span = spec.input.span if spec.input else Span(spec.file, 1, 1, 1, 1)
        self._add_node("input", op="input", kind=None, args=Args({}), span=span, groups=())
        scope = _Scope(values=values, prefix="", groups=())
        try:
            last = self._emit(spec.body, "input", scope)
        except DiagnosticError as exc:  # too big or too deep: nothing sensible to check
            self.diagnostics.append(exc.diagnostic)
            return None, self.diagnostics
        g.graph["output"] = last
        if any(d.is_error for d in self.diagnostics) and len(g) <= 1:
            return None, self.diagnostics
        return g, self.diagnostics

    def _arch_params(self, overrides: dict[str, Any]) -> dict[str, Any]:
        header = self.spec.arch
        params = header.params if header else ()
        declared = {p.name for p in params}
        values: dict[str, Any] = {}
        for name in overrides:
            if name not in declared:
                hint = did_you_mean(name, declared) or (
                    f"the spec's parameters are: {', '.join(sorted(declared))}" if declared
                    else "the spec declares no parameters (`arch name(param=default)`)")
                self.diagnostics.append(error("E-PARAM", f"unknown parameter `{name}`",
                                              header.span if header else
                                              Span(self.spec.file, 1, 1, 1, 2), hint=hint))
        for p in params:
            if p.name in overrides:
                values[p.name] = overrides[p.name]
            elif p.default is not None:
                try:
                    values[p.name] = self._eval(p.default, values, words_ok=True)
                except DiagnosticError as exc:
                    self.diagnostics.append(exc.diagnostic)
            else:
                self.diagnostics.append(error(
                    "E-PARAM", f"parameter `{p.name}` has no default and was not set", p.span,
                    hint=f"give it a default (`{p.name}=…`) or set it: `--set {p.name}=…`"))
        return values

    def _input_dims(self, override):
        spec = self.spec
        if override is not None:
            dims, span = tuple(override), spec.input.span if spec.input else None
        elif spec.input is None:
            self.diagnostics.append(error(
                "E-NO-INPUT", "the spec has no `input` line, so no shape can be checked",
                Span(spec.file, 1, 1, 1, 2),
                hint="declare one sample's shape, channels first: `input 3x224x224`"))
            return None
        else:
            dims, span = spec.input.dims, spec.input.span
        if len(dims) not in (1, 3):
            self.diagnostics.append(error(
                "E-INPUT", f"input {'x'.join(map(str, dims))} has {len(dims)} dimensions",
                span, hint="give CxHxW for images (e.g. `input 1x28x28`) or a feature count"))
            return None
        if min(dims) < 1:
            self.diagnostics.append(error("E-INPUT", "every input dimension must be at least 1",
                                          span))
            return None
        return dims

    # ------------------------------------------------------------------------- graph helpers
    def _add_node(self, node_id: str, **attrs) -> str:
        if len(self.order) > MAX_NODES:  # the input node and MAX_NODES layers
            raise DiagnosticError(error(
                "E-TOO-BIG", f"the network expands to more than {MAX_NODES:,} layers",
                attrs.get("span"), hint="check the `repeat` counts"))
        attrs.setdefault("inserted", False)
        self.graph.add_node(node_id, name=node_id, **attrs)
        self.order.append(node_id)
        return node_id

    def _new_group(self, kind, name, label, span, scope: _Scope, args=None) -> int:
        gid = len(self.groups)
        parent = scope.groups[-1] if scope.groups else None
        self.groups[gid] = Group(gid, kind, name, label, span, parent, dict(args or {}))
        return gid

    def _child(self, scope: _Scope, name: str, gid: int, values=None) -> _Scope:
        if scope.depth >= MAX_DEPTH:
            raise DiagnosticError(error("E-NESTING", f"blocks, repeats and combinators nest more "
                                        f"than {MAX_DEPTH} levels deep", self.groups[gid].span,
                                        hint="flatten the nesting, or define a `block` for a part "
                                             "that repeats"))
        return _Scope(values=scope.values if values is None else values, prefix=f"{name}.",
                      groups=scope.groups + (gid,), depth=scope.depth + 1)

    # ------------------------------------------------------------------------- statements
    def _emit(self, stmts, src: str, scope: _Scope) -> str:
        for st in stmts:
            try:
                if isinstance(st, Layer):
                    src = self._layer(st, src, scope)
                elif isinstance(st, Repeat):
                    src = self._repeat(st, src, scope)
                elif isinstance(st, Combinator):
                    src = self._combinator(st, src, scope)
            except DiagnosticError as exc:
                if exc.diagnostic.code in ("E-TOO-BIG", "E-NESTING"):
                    raise
                self.diagnostics.append(exc.diagnostic)
        return src

    def _layer(self, st: Layer, src: str, scope: _Scope) -> str:
        if st.op in self.spec.blocks:
            return self._call_block(st, self.spec.blocks[st.op], src, scope)
        kind = layers.get(st.op)
        if kind is None or isinstance(kind, MergeKind):
            if st.op in COMBINATORS:
                raise DiagnosticError(error(
                    "E-COMBINATOR", f"`{st.op}` joins branches and is written with angle brackets",
                    st.op_span, hint=f"write `{st.op}< branch | branch >`"))
            known = [k for k, v in layers.REGISTRY.items() if not isinstance(v, MergeKind)]
            hint = did_you_mean(st.op, known + list(self.spec.blocks))
            raise DiagnosticError(error("E-UNKNOWN-LAYER", f"unknown layer `{st.op}`", st.op_span,
                                        hint=hint or "see `docs/language.md` for the layer kinds"))
        args, spans, ok = self._resolve(kind, st, scope)
        name = scope.child_name(st.op)
        self._add_node(name, op=st.op, kind=kind, args=args, span=st.span, groups=scope.groups,
                       invalid=not ok, arg_spans=spans)
        self.graph.add_edge(src, name, port=0)
        return name

    def _repeat(self, st: Repeat, src: str, scope: _Scope) -> str:
        count = self._eval(st.count, scope.values)
        if isinstance(count, float) and count.is_integer():
            count = int(count)
        if not isinstance(count, int) or isinstance(count, bool):
            raise DiagnosticError(error("E-ARG-TYPE", f"repeat needs a whole number, got "
                                        f"{_show(count)}", st.count.span))
        if count < 0:
            raise DiagnosticError(error("E-ARG-RANGE", f"repeat count {count} is negative",
                                        st.count.span))
        estimate = len(self.order) - 1 + count * self._size(st.body, scope.values)
        if estimate > MAX_NODES:
            raise DiagnosticError(error("E-TOO-BIG", f"repeat {_count(count)} would make the "
                                        f"network more than {MAX_NODES:,} layers (about "
                                        f"{_count(estimate)})",
                                        st.count.span, hint="check the `repeat` counts"))
        name = scope.child_name("repeat")
        gid = self._new_group("repeat", name, f"repeat {count}", st.span, scope, {"n": count})
        outer = self._child(scope, name, gid)
        for i in range(count):
            iname = f"{name}.{i}"
            igid = self._new_group("iteration", iname, f"{i + 1} of {count}", st.span, outer)
            errors = len(self.diagnostics)
            src = self._emit(st.body, src, self._child(outer, iname, igid))
            if len(self.diagnostics) > errors:
                break  # every further iteration would only repeat the same errors
        return src

    def _combinator(self, st: Combinator, src: str, scope: _Scope) -> str:
        merge = COMBINATORS.get(st.kind)
        if merge is None:
            raise DiagnosticError(error("E-COMBINATOR", f"unknown combinator `{st.kind}<`",
                                        st.kind_span,
                                        hint=did_you_mean(st.kind, COMBINATORS) or
                                        "the combinators are residual, concat, add and mul"))
        n = len(st.branches)
        if st.kind == "residual" and n > 2:
            raise DiagnosticError(error("E-COMBINATOR", "residual takes a body and at most one "
                                        "shortcut", st.branches[2].span,
                                        hint="write `residual< body | shortcut >`"))
        if st.kind != "residual" and n < 2:
            raise DiagnosticError(error("E-COMBINATOR", f"{st.kind} needs at least two branches",
                                        st.span, hint=f"separate branches with `|`: "
                                        f"`{st.kind}< identity | … >`"))
        for b in st.branches:
            if not b.body:
                raise DiagnosticError(error("E-COMBINATOR", "empty branch", b.span,
                                            hint="write `identity` for a branch that passes its "
                                                 "input through"))
        name = scope.child_name(st.kind)
        gid = self._new_group(st.kind, name, f"{st.kind}<…>", st.span, scope)
        inner = self._child(scope, name, gid)
        roles = ["body", "shortcut"] if st.kind == "residual" else [f"branch{i + 1}" for i in range(n)]
        ends = []
        errors = len(self.diagnostics)
        for role, branch in zip(roles, st.branches):
            bname = f"{name}.{role}"
            bgid = self._new_group("branch", bname, role, branch.span, inner)
            bscope = self._child(inner, bname, bgid)
            end = self._emit(branch.body, src, bscope)
            if end == src:  # the branch made no layer (e.g. `repeat 0`): pass the input through
                end = self._add_node(f"{bname}.identity", op="identity",
                                     kind=layers.get("identity"), args=Args({}), span=branch.span,
                                     groups=bscope.groups, inserted=True)
                self.graph.add_edge(src, end, port=0)
            ends.append(end)
        merge_id = self._add_node(f"{name}.{merge}", op=merge, kind=layers.get(merge), args=Args({}),
                                  span=st.span, groups=inner.groups, combinator=st, fork=src,
                                  auto_shortcut=st.kind == "residual" and n == 1,
                                  scope_prefix=inner.prefix,
                                  # a branch with errors may lack layers: no shapes to compare
                                  invalid=len(self.diagnostics) > errors)
        if st.kind == "residual" and n == 1:
            ends.append(src)
        for port, end in enumerate(ends):
            self.graph.add_edge(end, merge_id, port=port)
        return merge_id

    def _call_block(self, st: Layer, block: BlockDef, src: str, scope: _Scope) -> str:
        if block.name in self.call_stack:
            chain = " → ".join(self.call_stack[self.call_stack.index(block.name):] + [block.name])
            raise DiagnosticError(error("E-RECURSION", f"block `{block.name}` calls itself "
                                        f"({chain})", st.op_span,
                                        hint="a block cannot contain itself; use `repeat` for "
                                             "repetition"))
        values = dict(self.graph.graph["params"])
        given: dict[str, Any] = {}
        by_keyword: set[str] = set()
        names = [p.name for p in block.params]
        positional = [a for a in st.args if not isinstance(a, Keyword)]
        if len(positional) > len(names):
            extra = positional[len(names)]
            raise DiagnosticError(error("E-ARG-COUNT", f"block `{block.name}` takes {len(names)} "
                                        f"argument{'s' if len(names) != 1 else ''}, but "
                                        f"{len(positional)} were given", extra.span,
                                        hint=f"its parameters are ({', '.join(names)})"))
        for p, a in zip(block.params, positional):
            given[p.name] = self._eval(a, scope.values, words_ok=True)
        for a in st.args:
            if isinstance(a, Keyword):
                if a.name not in names:
                    raise DiagnosticError(error(
                        "E-UNKNOWN-ARG", f"block `{block.name}` has no parameter `{a.name}`",
                        a.span, hint=did_you_mean(a.name, names) or
                        f"its parameters are ({', '.join(names)})"))
                if a.name in given:
                    raise DiagnosticError(error("E-ARG-DUPLICATE", f"`{a.name}` is given twice",
                                                a.span))
                given[a.name] = self._eval(a.value, scope.values, words_ok=True)
                by_keyword.add(a.name)
        for p in block.params:
            if p.name in given:
                values[p.name] = given[p.name]
            elif p.default is not None:
                values[p.name] = self._eval(p.default, values, words_ok=True)
            else:
                raise DiagnosticError(error(
                    "E-ARG-COUNT", f"block `{block.name}` needs a value for `{p.name}`", st.span,
                    hint=f"call it as `{block.name} {' '.join(names)}`"))
        name = scope.child_name(block.name)
        # the call as written, with its values resolved: `inverted 16 24 6 s=2`
        label = " ".join([block.name] + [
            f"{p}={_show(given[p])}" if p in by_keyword else _show(given[p])
            for p in names if p in given])
        gid = self._new_group("block", name, label, st.span, scope,
                              {p.name: values[p.name] for p in block.params})
        self.call_stack.append(block.name)
        try:
            inner = self._child(scope, name, gid, values=values)
            return self._emit(block.body, src, inner)
        finally:
            self.call_stack.pop()

    def _size(self, stmts, env: dict[str, Any], depth: int = 0) -> int:
        """How many layers `stmts` will make, known before making them (1 where unknown), so
        that a runaway `repeat` is refused at once rather than after minutes of expansion."""
        total = 0
        for st in stmts:
            if depth > 20:
                return total + 1
            if isinstance(st, Repeat):
                try:
                    count = self._eval(st.count, env)
                except DiagnosticError:
                    count = 1
                count = count if isinstance(count, int) and count >= 0 else 1
                total += count * self._size(st.body, env, depth + 1)
            elif isinstance(st, Combinator):
                total += 1 + sum(self._size(b.body, env, depth + 1) for b in st.branches)
            elif isinstance(st, Layer) and st.op in self.spec.blocks:
                block = self.spec.blocks[st.op]
                inner = dict(self.graph.graph["params"])
                positional = [a for a in st.args if not isinstance(a, Keyword)]
                for p, a in zip(block.params, positional):
                    inner[p.name] = self._try_eval(a, env)
                for a in st.args:
                    if isinstance(a, Keyword):
                        inner[a.name] = self._try_eval(a.value, env)
                for p in block.params:
                    if p.name not in inner and p.default is not None:
                        inner[p.name] = self._try_eval(p.default, inner)
                total += self._size(block.body, inner, depth + 1)
            else:
                total += 1
            if total > MAX_NODES:
                return total
        return total

    def _try_eval(self, e, env):
        try:
            return self._eval(e, env, words_ok=True)
        except DiagnosticError:
            return None

    # ------------------------------------------------------------------------- arguments
    def _resolve(self, kind, st: Layer, scope: _Scope) -> tuple[Args, dict[str, Span], bool]:
        """Map a layer's written arguments onto its declared ones; report what does not fit."""
        values: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        ok = True
        flags = kind.flags()  # cached by the kind
        positional = list(kind.positional)
        by_name = {a.name: a for a in kind.args}
        keyword_names = {**{a.name: a.name for a in kind.args}, **flags}

        def put(arg_name: str, value, span: Span, value_span: Span | None = None):
            nonlocal ok
            arg = by_name[arg_name]
            if isinstance(value, Word) and (arg.type in (INT, FLOAT, PAIR) or (
                    arg.type == PADDING and value not in ("same", "valid"))):
                ok = False
                self.diagnostics.append(error(
                    "E-UNKNOWN-NAME", f"unknown name `{value}`", value_span or span,
                    hint=did_you_mean(value, scope.values) or (
                        f"names in scope: {', '.join(sorted(scope.values))}" if scope.values
                        else f"{kind.name} {arg_name} takes a number here")))
                return
            if arg_name in values:
                ok = False
                self.diagnostics.append(error("E-ARG-DUPLICATE", f"`{arg_name}` is given twice",
                                              span, hint=f"the first value is at column "
                                                         f"{spans[arg_name].column}"))
                return
            try:
                values[arg_name] = _coerce(arg, value, span, kind.name)
                spans[arg_name] = span
            except DiagnosticError as exc:
                ok = False
                self.diagnostics.append(exc.diagnostic)

        for a in st.args:
            try:
                if isinstance(a, Keyword):
                    target = keyword_names.get(a.name)
                    if target is None:
                        choices = list(keyword_names) + list(kind.words)
                        raise DiagnosticError(error(
                            "E-UNKNOWN-ARG", f"{kind.name} has no argument `{a.name}`",
                            a.span, hint=did_you_mean(a.name, choices) or _arg_list(kind)))
                    put(target, self._eval(a.value, scope.values, words_ok=True), a.span,
                        a.value.span)
                    continue
                value = self._eval(a, scope.values, words_ok=True)
                if isinstance(value, Word):
                    word = str(value)
                    if word in kind.words:
                        target, fixed = kind.words[word]
                        put(target, fixed, a.span)
                        continue
                    m = re.fullmatch(r"([a-z])([0-9]+(?:x[0-9]+)?)", word)
                    if m and m.group(1) in flags:
                        dims = tuple(int(d) for d in m.group(2).split("x"))
                        put(flags[m.group(1)], dims[0] if len(dims) == 1 else dims, a.span)
                        continue
                    choices = list(kind.words) + [f"{f}…" for f in flags] + list(scope.values)
                    if m and m.group(1) not in flags:
                        hint = (f"{kind.name} has no `{m.group(1)}` flag; its flags are "
                                + ", ".join(f"`{f}`" for f in flags)) if flags else \
                            f"{kind.name} takes no flags"
                    else:
                        hint = did_you_mean(word, list(kind.words) + list(scope.values)) or \
                            _arg_list(kind)
                    raise DiagnosticError(error("E-UNKNOWN-NAME", f"`{word}` is not a parameter, "
                                                f"flag or word that {kind.name} knows", a.span,
                                                hint=hint))
                if not positional:
                    raise DiagnosticError(error(
                        "E-ARG-COUNT", f"{kind.name} takes no more positional values", a.span,
                        hint=_arg_list(kind)))
                put(positional.pop(0), value, a.span)
                continue
            except DiagnosticError as exc:
                ok = False
                self.diagnostics.append(exc.diagnostic)
        for arg in kind.args:
            if arg.name not in values:
                if arg.required:
                    if ok:
                        self.diagnostics.append(error(
                            "E-ARG-MISSING", f"{kind.name} needs {arg.doc or arg.name}",
                            st.span, hint=_missing_hint(kind, arg)))
                    ok = False
                else:
                    values[arg.name] = _normalise_default(arg)
        return Args(values, frozenset(spans)), spans, ok

    # ------------------------------------------------------------------------- expressions
    def _eval(self, e, env: dict[str, Any], words_ok: bool = False):
        if isinstance(e, Num):
            return e.value
        if isinstance(e, ShapeLit):
            return e.dims
        if isinstance(e, Name):
            if e.name in env:
                return env[e.name]
            if e.name in ("true", "false"):
                return e.name == "true"
            if words_ok:
                return Word(e.name)
            raise DiagnosticError(error("E-UNKNOWN-NAME", f"unknown name `{e.name}`", e.span,
                                        hint=did_you_mean(e.name, env) or
                                        (f"names in scope: {', '.join(sorted(env))}" if env
                                         else "no parameters are in scope here")))
        if isinstance(e, Neg):
            v = self._eval(e.operand, env)
            _need_number(v, e.operand.span)
            return -v
        if isinstance(e, BinOp):
            left, right = self._eval(e.left, env), self._eval(e.right, env)
            _need_number(left, e.left.span)
            _need_number(right, e.right.span)
            if e.op in ("/", "//", "%") and right == 0:
                raise DiagnosticError(error("E-EXPR", "division by zero", e.right.span))
            if e.op == "+":
                return left + right
            if e.op == "-":
                return left - right
            if e.op == "*":
                result = left * right
                if abs(result) > 10**15:
                    raise DiagnosticError(error("E-EXPR", "this value is too large", e.span))
                return result
            if e.op == "//":
                return left // right
            if e.op == "%":
                return left % right
            if isinstance(left, int) and isinstance(right, int) and left % right == 0:
                return left // right
            return left / right
        raise AssertionError(f"unknown expression {e!r}")


def _need_number(v, span: Span):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DiagnosticError(error("E-EXPR", f"`{_show(v)}` is not a number, so it cannot be used "
                                    "in arithmetic", span))


def _normalise_default(arg: Arg):
    if arg.type in (PAIR, PADDING) and isinstance(arg.default, int) and not isinstance(arg.default, bool):
        return (arg.default, arg.default)
    return arg.default


def _arg_list(kind) -> str:
    parts = []
    for a in kind.args:
        if a.name in kind.positional:
            parts.append(f"{a.name} (positional)")
        elif a.flag:
            parts.append(f"`{a.flag}N` / {a.name}=")
        else:
            parts.append(f"{a.name}=")
    parts += [f"`{w}`" for w in kind.words]
    return f"{kind.name} takes: " + ", ".join(parts) if parts else f"{kind.name} takes no arguments"


def _missing_hint(kind, arg: Arg) -> str:
    if arg.flag:
        return f"add a flag such as `{arg.flag}3`, or `{arg.name}=…`"
    if arg.name in kind.positional:
        return f"write it after the name: `{kind.name} …`"
    return f"add `{arg.name}=…`"


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _coerce(arg: Arg, value, span: Span, kind_name: str):
    """Check a value against its declared type and range; return it in canonical form."""
    what = arg.doc or arg.name

    def whole(v):
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if not _is_int(v):
            if isinstance(v, float):
                if arg.name == "out" or "channels" in what or arg.name == "groups":
                    raise DiagnosticError(error(
                        "E-CHANNELS", f"{kind_name} {arg.name} = {v:g} is not a whole number",
                        span, hint="channel counts must be whole: check the division "
                                   "(e.g. use `//` to round down)"))
                raise DiagnosticError(error("E-ARG-TYPE", f"{kind_name} {arg.name} must be a whole "
                                            f"number, got {v:g}", span))
            raise DiagnosticError(error("E-ARG-TYPE", f"{kind_name} {arg.name} must be a number, "
                                        f"got `{_show(v)}`", span, hint=_choice_hint(arg)))
        return v

    def in_range(v):
        for x in (v if isinstance(v, tuple) else (v,)):
            if arg.min is not None and x < arg.min:
                raise DiagnosticError(error("E-ARG-RANGE", f"{kind_name} {arg.name} must be at least "
                                            f"{arg.min:g}, got {_show(x)}", span))
            if arg.max is not None and x > arg.max:
                raise DiagnosticError(error("E-ARG-RANGE", f"{kind_name} {arg.name} must be at most "
                                            f"{arg.max:g}, got {_show(x)}", span))
        return v

    t = arg.type
    if t == INT:
        return in_range(whole(value))
    if t == FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DiagnosticError(error("E-ARG-TYPE", f"{kind_name} {arg.name} must be a number, got "
                                        f"`{_show(value)}`", span))
        return in_range(float(value))
    if t == BOOL:
        if not isinstance(value, bool):
            raise DiagnosticError(error("E-ARG-TYPE", f"{kind_name} {arg.name} must be true or false, "
                                        f"got `{_show(value)}`", span))
        return value
    if t == CHOICE:
        if not isinstance(value, str) or value not in arg.choices:
            raise DiagnosticError(error("E-ARG-TYPE", f"{kind_name} {arg.name} cannot be "
                                        f"`{_show(value)}`", span, hint=_choice_hint(arg, value)))
        return str(value)
    if t in (PAIR, PADDING):
        if t == PADDING and isinstance(value, str) and value in ("same", "valid"):
            return str(value)
        if isinstance(value, tuple):
            if len(value) != 2:
                raise DiagnosticError(error("E-ARG-TYPE", f"{kind_name} {arg.name} takes one number or "
                                            f"HxW, got {_show(value)}", span))
            return in_range(tuple(whole(v) for v in value))
        if isinstance(value, str):
            hint = "write a number, or `same` / `valid`" if t == PADDING else None
            raise DiagnosticError(error("E-ARG-TYPE", f"{kind_name} {arg.name} cannot be "
                                        f"`{value}`", span, hint=hint))
        v = in_range(whole(value))
        return (v, v)
    raise AssertionError(f"unknown argument type {t}")


def _count(n: int) -> str:
    """`1,000,001`, or `1.0e+300` for a count too long to read."""
    return f"{n:,}" if n < 10**15 else f"{float(n):.1e}"


def _show(v) -> str:
    if isinstance(v, tuple):
        return "x".join(map(str, v))
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _choice_hint(arg: Arg, value=None) -> str | None:
    if not arg.choices:
        return None
    close = did_you_mean(str(value), arg.choices) if value is not None else None
    return close or "choose one of: " + ", ".join(arg.choices)


__all__ = ["expand", "Group", "COMBINATORS", "Word", "Branch"]
