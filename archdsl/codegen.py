"""Checked network -> a standalone, readable PyTorch source file (`archdsl export --to python`).

The file imports nothing but torch. It has one class per block call (calls with the same
arguments on the same input share a class) and one for the network, with `__init__` and
`forward` written out and the output shape as a comment on each line of forward. Its
modules sit at the same paths as in `Network.to_torch()`, so both have the same state_dict
keys and, with the same weights, the same outputs.

The network class takes the `arch` parameters as keyword arguments with their defaults. A
parameter that only sets constructor arguments of top-level layers (`linear num_classes`)
is passed through as a name; one that changes shapes deeper in the network cannot be, so
the class accepts only the value the file was generated for and says how to regenerate.
"""

from __future__ import annotations

import inspect
import keyword
import re
from dataclasses import dataclass, field

from . import __version__
from .graph import BlockCall, CombinatorGroup, RepeatGroup
from .layers.base import Args, Symbol, fmt_shape
from .layers.merge import combinator


@dataclass
class _Item:
    """A layer (its node name) or a container (a group) in the spec's structure."""

    name: str
    node: str | None = None
    group: object | None = None
    children: list["_Item"] = field(default_factory=list)
    merge: str | None = None  # for combinators: the merge node


def _tree(graph) -> _Item:
    """The group tree of the graph, as the modules nest (archdsl.graph.LayerGraph.contents)."""
    contents = graph.contents()
    merges = {node.merge.group: nid for nid, node in graph.layers() if node.merge is not None}

    def item(path: str, entry) -> _Item:
        if not isinstance(entry, int):
            return _Item(path, node=entry)
        group = graph.groups[entry]
        return _Item(path, group=group, merge=merges.get(entry),
                     children=[item(p, e) for p, e in contents.get(entry, [])])

    return _Item("", children=[item(p, e) for p, e in contents.get(None, [])])


def _class_name(label: str, taken: set[str]) -> str:
    """A class name for a network or a block call: its name in CamelCase, each `_`-separated
    part capitalised (`mobilenet_v2` -> `MobilenetV2`, `inverted_residual` ->
    `InvertedResidual`), a part that starts with a digit kept after its `_`
    (`squeezenet1_0` -> `Squeezenet1_0`). A later call with other arguments appends them
    (`Basic_128_s_2`), and a name still taken gets `_` until it is free."""
    head, rest = re.match(r"\W*(\w*)(.*)", label, re.S).groups()
    parts = re.findall(r"[A-Za-z0-9]+", head) or ["Block"]
    base = parts[0][:1].upper() + parts[0][1:]
    for part in parts[1:]:  # a part starting with a digit keeps its `_`: squeezenet1_0
        base += "_" + part if part[0].isdigit() else part[:1].upper() + part[1:]
    if base[:1].isdigit():  # a class name cannot start with a digit: `1net` -> `Net1net`
        base = "Net" + base
    name = base if base not in taken else "_".join([base] + re.findall(r"[A-Za-z0-9]+", rest))
    while name in taken or keyword.iskeyword(name):
        name += "_"
    taken.add(name)
    return name


class _Writer:
    """Writes the classes of one network, sharing a class between identical block calls."""

    def __init__(self, graph, symbols: dict[str, dict[str, str]]):
        self.graph = graph
        self.symbols = symbols  # node name -> {argument: arch parameter written by name}
        self.classes: list[str] = []
        self.class_for: dict[tuple, str] = {}
        self.taken: set[str] = set()
        self.own: dict[str, object] = {}  # archdsl's own module classes used, by name

    # -- __init__ -----------------------------------------------------------------------
    def construct(self, item: _Item, indent: str) -> str:
        """The constructor expression of one child: a module, a block class, a container."""
        if item.node is not None:
            return self.module_source(item.node)
        group = item.group
        if isinstance(group, BlockCall):
            return f"{self.block_class(item)}()"
        if isinstance(group, RepeatGroup):
            inner = indent + "    "
            parts = [f"{inner}{self.construct(it, inner)}," for it in item.children]
            return "nn.ModuleList([\n" + "\n".join(parts) + f"\n{indent}])"
        inner = indent + "    "
        parts = [f"{inner}{child.name}={self.construct(child, inner)}," for child in item.children]
        return "container(\n" + "\n".join(parts) + f"\n{indent})"

    # -- forward ------------------------------------------------------------------------
    def forward(self, items: list[_Item], src: str, dst: str, path: str, lines: list[str],
                counter: list[int]) -> None:
        """Write the statements of `items`, reading `src` first and leaving the result in `dst`."""
        for item in items:
            self.step(item, src, dst, f"{path}.{item.name}" if not item.name.isdigit()
                      else f"{path}[{item.name}]", lines, counter)
            src = dst

    def step(self, item: _Item, src: str, dst: str, path: str, lines, counter) -> None:
        if item.node is not None:
            lines.append((f"{dst} = {path}({src})", fmt_shape(self.graph.shape(item.node))))
            return
        group = item.group
        if isinstance(group, BlockCall):
            shape = self.output_shape(item)
            lines.append((f"{dst} = {path}({src})", fmt_shape(shape)))
            return
        if not isinstance(group, CombinatorGroup):  # a repeat, an iteration, a branch
            self.forward(item.children, src, dst, path, lines, counter)
            return
        # a combinator: each branch reads the fork's value into its own variable
        counter[0] += 1
        fork = src  # branches write their own variables, so the fork's value stays intact
        how = combinator(group.combinator)
        single = len(item.children) == 1 and how.auto_shortcut(1)
        outs = []
        for i, branch in enumerate(item.children):
            var = f"y{counter[0]}" if single else f"y{counter[0]}_{i + 1}"
            self.forward(branch.children, fork, var, f"{path}.{branch.name}", lines, counter)
            outs.append(var)
        shape = fmt_shape(self.graph.shape(item.merge))
        lines.append((f"{dst} = {how.python(outs, fork)}", shape))

    def output_shape(self, item: _Item):
        last = item
        while last.node is None:
            if last.merge is not None:
                return self.graph.shape(last.merge)
            last = last.children[-1]
        return self.graph.shape(last.node)

    def module_source(self, nid: str) -> str:
        """The constructor of one layer, from its kind's declared torch call; an argument set
        by a passed-through `arch` parameter is written as the parameter's name."""
        node = self.graph.layer(nid)
        (pred,) = self.graph.inputs(nid)
        args = node.args
        named = self.symbols.get(nid)
        if named:
            args = Args({**args.as_dict(), **{a: Symbol(p) for a, p in named.items()}},
                        args.given)
        torch_call = node.kind.torch(args, self.graph.shape(pred))
        if torch_call.own:
            self.own.setdefault(torch_call.name, torch_call.module_class())
        return torch_call.source(inplace=self.graph.may_work_in_place(pred))

    # -- classes ------------------------------------------------------------------------
    def block_class(self, item: _Item) -> str:
        group = item.group
        key = (group.label, self.signature(item))
        if key in self.class_for:
            return self.class_for[key]
        name = _class_name(group.label, self.taken)
        self.class_for[key] = name
        span = group.span
        self.classes.append(self.class_source(
            name, f"`{group.label}` ({span.file}:{span.line})", item.children))
        return name

    def signature(self, item: _Item):
        """What makes two block calls build the same modules: their layers' constructors."""
        out = []
        for child in item.children:
            if child.node is not None:
                out.append((child.name, self.module_source(child.node)))
            else:
                out.append((child.name, self.signature(child)))
        return tuple(out)

    def class_source(self, name: str, doc: str, children: list[_Item], init_args: str = "",
                     checks=(), main: bool = False) -> str:
        """A class whose constructor makes `children` and whose forward runs them; `checks`
        are (parameter, value) pairs the constructor accepts no other value for. In a
        dataflow network (named values: `graph.dataflow`) the `main` class's forward runs
        every layer and the other classes only hold modules."""
        if self.graph.dataflow and not main:
            doc += " (its modules run in the network's forward)"
        body = [f"class {name}(nn.Module):", f'    """{doc}"""', "",
                f"    def __init__(self{init_args}):", "        super().__init__()"]
        for param, value in checks:
            body += [f"        if {param} != {value!r}:",
                     f"            raise ValueError(\"this file was built for {param}={value!r}; for "
                     f"another value run `archdsl export` again with --set {param}=...\")"]
        for child in children:
            expr = self.construct(child, "        ")
            body.append(f"        self.{child.name} = {expr}")
        if self.graph.dataflow and not main:  # the network's forward runs every module
            return "\n".join(body)
        lines: list[tuple[str, str | None]] = []
        if self.graph.dataflow:
            returns = flow_forward(self.graph, lines)
            result = "torch.Tensor" if len(self.graph.outputs) == 1 else "tuple"
        else:
            self.forward(children, "x", "x", "self", lines, [0])
            returns, result = "x", "torch.Tensor"
        body += ["", f"    def forward(self, x: torch.Tensor) -> {result}:"]
        width = max((len(code) for code, _ in lines), default=0)
        for code, shape in lines:
            comment = f"  # {shape}" if shape else ""
            body.append(f"        {code.ljust(width) if comment else code}{comment}")
        body.append(f"        return {returns}")
        return "\n".join(body)


HEADER = '''"""{name}: generated by archdsl {version} from {file}.

Standalone PyTorch (imports nothing but torch). `{cls}()` builds the network; its modules sit
at the same paths as in `archdsl.build("{file}")`, so state_dict keys match and checkpoints
load into either. Input: one batch of {input} samples.
"""

import torch
from torch import nn


def container(**modules: nn.Module) -> nn.Module:
    """A module that only holds named submodules, so state_dict keys read like the spec."""
    box = nn.Module()
    for name, module in modules.items():
        box.add_module(name, module)
    return box
'''


# What archdsl's own modules (archdsl/nn/) may use; written only when one is.
OWN_IMPORTS = "import torch\nimport torch.nn.functional as F\n"


def to_python(network) -> str:
    """The standalone PyTorch source of a checked network.

    The network class takes the `arch` parameters as keyword arguments. One that only sets
    a whole argument of top-level layers whose output no later constructor reads is passed
    through by name (`nn.Linear(4096, num_classes)`); any other is fixed to the value the
    file was generated for, and the constructor says how to regenerate for another."""
    from .diagnostics import SpecError
    from .memory import build_refusal, memory_size

    graph = network.graph
    refusal = build_refusal(graph, memory_size())  # the file would build what cannot fit
    if refusal is not None:
        raise SpecError([refusal], source=network.source)
    unwritable = _unwritable(network.arch_params)
    if unwritable is not None:
        raise SpecError([unwritable], source=network.source)
    symbols, passthrough = _passthrough(graph)
    writer = _Writer(graph, symbols)
    root = _tree(graph)
    cls = _class_name(network.name, writer.taken)
    params = network.arch_params
    init_args = "".join(f", {p}={v!r}" for p, v in params.items())
    main = writer.class_source(cls, f"{network.name}: {fmt_shape(network.input_shape)} -> "
                                    f"{fmt_shape(network.output_shape)}", root.children,
                               init_args=init_args, main=True,
                               checks=[(n, v) for n, v in params.items() if n not in passthrough])
    header = HEADER.format(name=network.name, version=__version__, file=network.file, cls=cls,
                           input=fmt_shape(network.input_shape))
    if writer.own:
        header = header.replace("import torch\n", OWN_IMPORTS, 1)
    own = [inspect.getsource(c).rstrip() for _, c in sorted(writer.own.items())]
    own += _output_classes(graph)
    return "\n\n\n".join([header.rstrip()] + own + writer.classes + [main]) + "\n"


def _output_classes(graph) -> list[str]:
    """For several outputs: the tuple classes forward returns, each item also read by its
    name as a named tuple's (written out, so that the file imports nothing but torch)."""
    if len(graph.outputs) < 2:
        return []
    kinds = [("Outputs", "Every output (in training)", [o.name for o in graph.outputs])]
    mains = [o.name for o in graph.outputs if o.aux is None]
    if len(mains) > 1 and len(mains) < len(graph.outputs):
        kinds.append(("EvalOutputs", "The outputs eval returns", mains))
    out = []
    for cls, doc, names in kinds:
        lines = [f"class {cls}(tuple):", f'    """{doc}: a tuple whose items are also read by '
                 'name."""', "", f"    _fields = {tuple(names)!r}", "",
                 f"    def __new__(cls, {', '.join(names)}):",
                 f"        return super().__new__(cls, ({', '.join(names)},))", ""]
        lines += [f"    {n} = property(lambda self: self[{i}])" for i, n in enumerate(names)]
        out.append("\n".join(lines))
    return out


def flow_forward(graph, lines: list) -> str:
    """The forward pass of a dataflow graph as straight-line code, a variable per node (a
    named value's name where one node alone goes by it), the layers serving only outputs
    marked `aux` under `if self.training:`; returns what `forward` returns."""
    import networkx as nx

    counts: dict[str, int] = {}
    for value in graph.names:
        counts[value.name] = counts.get(value.name, 0) + 1
    names = {v.node: v.name for v in graph.names if counts[v.name] == 1}
    var = {"input": "x"}
    taken = {"x", "self", "torch", "nn", "F"}
    main = [o.node for o in graph.outputs if o.aux is None]
    in_eval = set(main).union(*(nx.ancestors(graph.dag, n) for n in main))
    guarded = False
    for nid in graph.order[1:]:
        node = graph.layer(nid)
        name = names.get(nid) or re.sub(r"\W", "_", nid)
        while name in taken or keyword.iskeyword(name):
            name += "_"
        taken.add(name)
        var[nid] = name
        reads = [var[p] for p in graph.inputs(nid)]
        code = (node.kind.bound(node.args).python(reads) if node.kind.merges
                else f"{module_path(nid)}({reads[0]})")
        if (nid not in in_eval) != guarded:
            guarded = not guarded
            if guarded:
                lines.append(("if self.training:  # what only the auxiliary outputs read", None))
        lines.append((("    " if guarded else "") + f"{name} = {code}",
                      fmt_shape(graph.shape(nid))))
    if len(graph.outputs) == 1:
        return var[graph.outputs[0].node]
    every = ", ".join(f"{o.name}={var[o.node]}" for o in graph.outputs)
    mains = [var[o.node] for o in graph.outputs if o.aux is None]
    if len(mains) == len(graph.outputs):  # no auxiliary output: the same in both modes
        return f"Outputs({every})"
    kept = ", ".join(f"{o.name}={var[o.node]}" for o in graph.outputs if o.aux is None)
    lines.append(("if self.training:", None))
    lines.append((f"    return Outputs({every})", None))
    return mains[0] if len(mains) == 1 else f"EvalOutputs({kept})"


def module_path(nid: str) -> str:
    """`self.repeat1[0].pair1.conv1` for the node `repeat1.0.pair1.conv1`."""
    return "self" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in nid.split("."))


def _unwritable(params: dict):
    """E-PARAM for a parameter whose value Python has no literal for (`inf`, `nan`): one set
    from Python and read by no layer, so that no expression refused it."""
    from .diagnostics import error
    from .layers.types import out_of_range, show

    for name, value in params.items():
        problem = out_of_range(value)
        if problem is not None:
            return error("E-PARAM", f"the value of `{name}` is {problem}: {show(value)}", None,
                         hint=f"give `{name}` a finite number")
    return None


def _passthrough(graph) -> tuple[dict[str, dict[str, str]], set[str]]:
    """The `arch` parameters that can be passed through by name, and where they are written:
    those expansion saw only as whole arguments of top-level layers (graph.named_args, and
    never in graph.shaping_params), where the kind's torch call takes the name as it is and
    no constructor after the layer depends on the layer's output shape."""
    uses: dict[str, list[tuple[str, str]]] = {}
    for nid, node in graph.layers():
        for arg, param in node.named_args.items():
            uses.setdefault(param, []).append((nid, arg))
    symbols: dict[str, dict[str, str]] = {}
    passthrough = set()
    for param, where in uses.items():
        if param in graph.shaping_params or not all(_named_ok(graph, n, a, param) for n, a in where):
            continue
        passthrough.add(param)
        for nid, arg in where:
            symbols.setdefault(nid, {})[arg] = param
    return symbols, passthrough


def _named_ok(graph, nid: str, arg: str, param: str) -> bool:
    node = graph.layer(nid)
    (pred,) = graph.inputs(nid)
    args = Args({**node.args.as_dict(), arg: Symbol(param)}, node.args.given)
    x = graph.shape(pred)
    try:
        node.kind.torch(args, x)
    except Exception:  # noqa: BLE001 - the kind computes with the value: keep it fixed
        return False
    other = Args({**node.args.as_dict(), arg: getattr(node.args, arg) + 1}, node.args.given)
    try:
        same_shape = node.kind.shape(other, x) == graph.shape(nid)
    except Exception:  # noqa: BLE001 - another value can fail: keep it fixed
        return False
    return same_shape or all(_shape_free(graph, later) for later in _downstream(graph, nid))


def _downstream(graph, nid: str):
    seen, todo = set(), graph.successors(nid)
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            yield n
            todo += graph.successors(n)


def _shape_free(graph, nid: str) -> bool:
    """Whether a layer's constructor stays the same when its input's channels change."""
    node = graph.layer(nid)
    if node.merge is not None:
        return False
    (pred,) = graph.inputs(nid)
    x = graph.shape(pred)
    other = (x[0] + 1,) + tuple(x[1:])
    try:
        return node.kind.torch(node.args, x) == node.kind.torch(node.args, other)
    except Exception:  # noqa: BLE001 - a rule that fails on the other shape depends on it
        return False
