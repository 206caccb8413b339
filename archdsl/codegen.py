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
from .layers.base import fmt_shape


@dataclass
class _Item:
    """A layer (module path + node) or a container (group) in the spec's structure."""

    name: str
    node: dict | None = None
    group: object | None = None
    children: list["_Item"] = field(default_factory=list)
    merge: dict | None = None  # for combinators: the merge node


def _tree(graph) -> _Item:
    groups = {g.name: g for g in graph.graph["groups"].values()}
    root = _Item("")
    index = {"": root}
    for nid in graph.graph["order"]:
        node = graph.nodes[nid]
        if node["op"] == "input":
            continue
        parts = nid.split(".")
        for depth in range(1, len(parts)):
            path = ".".join(parts[:depth])
            if path not in index:
                item = _Item(parts[depth - 1], group=groups.get(path))
                index[".".join(parts[:depth - 1])].children.append(item)
                index[path] = item
        parent = index[".".join(parts[:-1])]
        if node["kind"].family == "merge":
            parent.merge = node
        else:
            parent.children.append(_Item(parts[-1], node=node))
    return root


# Constructor arguments where a single number does not mean "the same in every dimension":
# nn.LayerNorm(4) normalises over the last dimension only, nn.LayerNorm((4, 4, 4)) over all.
_WHOLE_TUPLES = frozenset({"normalized_shape"})


def _module_source(module) -> str:
    """`nn.Conv2d(3, 64, kernel_size=(11, 11), stride=(4, 4), padding=(2, 2))` for a module."""
    import torch.nn as nn

    cls = type(module)
    sig = inspect.signature(cls.__init__)
    args, positional = [], True
    for name, p in list(sig.parameters.items())[1:]:
        if name in ("device", "dtype") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if name == "bias" and hasattr(module, "bias") and not isinstance(module.bias, bool):
            value = module.bias is not None
        elif name == "init" and isinstance(module, nn.PReLU):
            value = round(float(module.weight.detach().flatten()[0]), 6)
        elif hasattr(module, name):
            value = getattr(module, name)
        elif name == "affine" and hasattr(module, "elementwise_affine"):
            value = module.elementwise_affine
        else:
            positional = False
            continue
        if isinstance(value, list):
            value = tuple(value)
        if (isinstance(value, tuple) and value and all(v == value[0] for v in value)
                and name not in _WHOLE_TUPLES):
            value = value[0]  # (3, 3) -> 3, as one writes it
        if p.default is p.empty and positional:
            args.append(repr(value))
        elif p.default is p.empty or value != p.default:
            positional = False
            args.append(f"{name}={value!r}")
        else:
            positional = False
    return f"nn.{cls.__name__}({', '.join(args)})"


def _class_name(label: str, taken: set[str]) -> str:
    words = re.findall(r"[A-Za-z0-9]+", label)
    base = words[0][:1].upper() + words[0][1:] if words else "Block"
    name = base if base not in taken else "_".join([base] + words[1:])
    while name in taken or keyword.iskeyword(name):
        name += "_"
    taken.add(name)
    return name


class _Writer:
    """Writes the classes of one network, sharing a class between identical block calls."""

    def __init__(self, modules: dict[str, object]):
        self.modules = modules  # node name -> built torch module (from to_torch)
        self.classes: list[str] = []
        self.class_for: dict[tuple, str] = {}
        self.taken: set[str] = set()

    # -- __init__ -----------------------------------------------------------------------
    def construct(self, item: _Item, indent: str) -> str:
        """The constructor expression of one child: a module, a block class, a container."""
        if item.node is not None:
            return _module_source(self.modules[item.node["name"]])
        group = item.group
        if group is not None and group.kind == "block":
            return f"{self.block_class(item)}()"
        if group is not None and group.kind == "repeat":
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
            lines.append((f"{dst} = {path}({src})", fmt_shape(item.node["shape"])))
            return
        group = item.group
        kind = group.kind if group is not None else "branch"
        if kind == "block":
            shape = self.output_shape(item)
            lines.append((f"{dst} = {path}({src})", fmt_shape(shape)))
            return
        if kind in ("repeat", "iteration", "branch"):
            self.forward(item.children, src, dst, path, lines, counter)
            return
        # a combinator: each branch reads the fork's value into its own variable
        counter[0] += 1
        fork = src  # branches write their own variables, so the fork's value stays intact
        outs = []
        for i, branch in enumerate(item.children):
            var = f"y{counter[0]}_{i + 1}" if len(item.children) > 1 or kind != "residual" \
                else f"y{counter[0]}"
            self.forward(branch.children, fork, var, f"{path}.{branch.name}", lines, counter)
            outs.append(var)
        merge = item.merge
        shape = fmt_shape(merge["shape"])
        if kind == "residual":
            other = outs[1] if len(outs) > 1 else fork
            lines.append((f"{dst} = {outs[0]} + {other}", shape))
        elif kind == "concat":
            lines.append((f"{dst} = torch.cat([{', '.join(outs)}], dim=1)", shape))
        else:
            lines.append((f"{dst} = " + f" {'+' if kind == 'add' else '*'} ".join(outs), shape))

    def output_shape(self, item: _Item):
        last = item
        while last.node is None:
            if last.merge is not None and last.group is not None and last.group.kind in (
                    "residual", "concat", "add", "mul"):
                return last.merge["shape"]
            last = last.children[-1]
        return last.node["shape"]

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
                out.append((child.name, _module_source(self.modules[child.node["name"]])))
            else:
                out.append((child.name, self.signature(child)))
        return tuple(out)

    def class_source(self, name: str, doc: str, children: list[_Item], init_args: str = "") -> str:
        body = [f"class {name}(nn.Module):", f'    """{doc}"""', "",
                f"    def __init__(self{init_args}):", "        super().__init__()"]
        for child in children:
            expr = self.construct(child, "        ")
            body.append(f"        self.{child.name} = {expr}")
        body += ["", "    def forward(self, x: torch.Tensor) -> torch.Tensor:"]
        lines: list[tuple[str, str | None]] = []
        self.forward(children, "x", "x", "self", lines, [0])
        width = max((len(code) for code, _ in lines), default=0)
        for code, shape in lines:
            comment = f"  # {shape}" if shape else ""
            body.append(f"        {code.ljust(width) if comment else code}{comment}")
        body.append("        return x")
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


def _generate(network, modules) -> tuple[str, str]:
    writer = _Writer(modules)
    root = _tree(network.graph)
    cls = _class_name(network.name, writer.taken)
    params = network.arch_params
    init_args = "".join(f", {p}={v!r}" for p, v in params.items())
    main = writer.class_source(cls, f"{network.name}: {fmt_shape(network.input_shape)} -> "
                                    f"{fmt_shape(network.output_shape)}", root.children,
                               init_args=init_args)
    header = HEADER.format(name=network.name, version=__version__, file=network.file, cls=cls,
                           input=fmt_shape(network.input_shape))
    source = "\n\n\n".join([header.rstrip()] + writer.classes + [main]) + "\n"
    return source, cls


def to_python(network) -> str:
    """The standalone PyTorch source of a checked network."""
    source, cls = _generate(network, _modules(network))
    params = network.arch_params
    probes = {name: _probe_value(value, k) for k, (name, value) in enumerate(params.items())}
    passthrough = {name for name, probe in probes.items()
                   if probe is not None and _substitutions(network, source, cls, {name: probe})}
    subs = _substitutions(network, source, cls, {n: probes[n] for n in passthrough}) \
        if passthrough else {}
    if subs is None:  # the parameters interact: keep every one fixed
        passthrough, subs = set(), {}
    fixed = {n: v for n, v in params.items() if n not in passthrough}
    return _finish(source, cls, subs, fixed)


def _modules(network) -> dict:
    model = network.to_torch()
    return {name: module for name, module in model.named_modules() if name}


def _probe_value(value, k: int):
    """An unlikely value to try a parameter with, different for each parameter."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value * 7 + 1013 + 1000 * k if isinstance(value, int) else value * 0.5 + 0.123 + k


def _pattern(value) -> str:
    return rf"(?<![\w.]){re.escape(repr(value))}(?![\w.])"


def _main_init(source: str, cls: str) -> tuple[int, int]:
    lines = source.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(f"class {cls}("))
    init = next(i for i in range(start, len(lines)) if lines[i].startswith("    def __init__"))
    end = next(i for i in range(init, len(lines)) if lines[i].startswith("    def forward"))
    return init, end


def _substitutions(network, source: str, cls: str, probes: dict) -> dict[int, str] | None:
    """Regenerate with the probe values. If they only moved literals in the network class's
    constructor, return {line index: that line with the parameter names}; else None."""
    from .network import analyse

    params = {**network.arch_params, **probes}
    other, _ = analyse(network.source, network.file, params, network.input_shape)
    if other is None:
        return None
    changed, _ = _generate(other, _modules(other))
    a, b = source.split("\n"), changed.split("\n")
    if len(a) != len(b):
        return None
    init, end = _main_init(source, cls)
    out = {}
    for i, (x, y) in enumerate(zip(a, b)):
        code_x, _, comment = x.partition("  # ")
        code_y = y.partition("  # ")[0]
        if code_x == code_y or code_x.lstrip().startswith('"""') or i == init:
            continue  # the same, or only a shape comment or a docstring moved
        if not init < i < end:
            return None
        back, named = code_y, code_y
        for name, probe in probes.items():
            back = re.sub(_pattern(probe), repr(network.arch_params[name]), back)
            named = re.sub(_pattern(probe), name, named)
        if back != code_x:
            return None
        out[i] = named + (f"  # {comment}" if comment else "")
    return out


def _finish(source: str, cls: str, subs: dict[int, str], fixed: dict) -> str:
    lines = source.split("\n")
    for i, line in subs.items():
        lines[i] = line
    init, end = _main_init(source, cls)
    checks = []
    for name, value in fixed.items():
        checks += [f"        if {name} != {value!r}:",
                   f"            raise ValueError(\"this file was built for {name}={value!r}; for "
                   f"another value run `archdsl export` again with --set {name}=...\")"]
    if checks:
        at = next(i for i in range(init, end) if "super().__init__()" in lines[i]) + 1
        lines[at:at] = checks
    return "\n".join(lines)
