"""Checked layer graph -> an ordinary torch.nn.Module whose structure mirrors the spec.

Module paths are the node names of the graph, so state_dict keys read like the spec:

    conv1.weight                              a top-level layer (the first conv)
    basic3.residual1.body.conv1.weight        a layer in a residual body inside a block call
    basic3.residual1.shortcut.conv1.weight    the projection shortcut archdsl inserted
    stage2.repeat1.0.conv1.weight             the first iteration of a repeat in a block

They stay the same as long as the spec's structure does, so checkpoints remain loadable.
The forward pass is plain module calls: Sequential chains and small combinator modules.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .graph import BlockCall, CombinatorGroup


class Block(nn.Sequential):
    """A call of a user `block` (or a repeat, an iteration, a branch): its layers in order."""

    def __init__(self, label: str, layers: "OrderedDict[str, nn.Module] | None" = None):
        super().__init__(layers or OrderedDict())
        self.label = label

    def _get_name(self) -> str:
        return self.label


class Residual(nn.Module):
    """`residual< body | shortcut >`: body(x) + shortcut(x), the shortcut being x by default.

    With `inplace` the sum is written into the body's output (`out += identity`, as
    torchvision's ResNet, MobileNetV3, EfficientNet and ConvNeXt blocks add): the backend
    sets it where the body ends in a fresh tensor that nothing else reads and whose backward
    does not need it (graph.may_work_in_place), so autograd is unaffected. Where the two
    differ in dtype or shape (autocast, broadcasting), or the body's output is a view (an
    in-place write would rewrite autograd's history of its base), and under torch.compile
    (which fuses the add, and cannot trace the view check), it adds out of place: the result
    is always `body(x) + identity`'s."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None = None, inplace: bool = False):
        super().__init__()
        self.body = body
        self.shortcut = shortcut
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        out = self.body(x)
        if (self.inplace and not torch.compiler.is_compiling()  # compile fuses the add itself
                and out.dtype == identity.dtype and out.shape == identity.shape
                and not out._is_view()):
            out += identity
            return out
        return out + identity


class Branches(nn.Module):
    """Branches that read the same input, merged by a registered merge kind: `concat< a | b >`
    runs a and b on x and joins their outputs with `torch.cat(…, dim=1)`."""

    def __init__(self, kind, branches: "OrderedDict[str, nn.Module]"):
        super().__init__()
        self.kind = kind
        for name, module in branches.items():
            self.add_module(name, module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.kind.merge([branch(x) for branch in self.children()])

    def _get_name(self) -> str:
        return self.kind.module_name


_MERGE_MODULES = {"Residual": Residual, "Branches": Branches}


class CompiledNetwork(Block):
    """The compiled network: the top-level layers and blocks, in order. Where values go
    elsewhere than the nesting says (named values, several outputs: `graph.dataflow`), the
    modules stay where the spec's structure puts them (so do the state_dict's keys), and the
    forward pass runs the graph's steps instead (archdsl/flow.py's Flow)."""

    def __init__(self, name: str, layers: "OrderedDict[str, nn.Module]", input_shape, output_shape):
        super().__init__(name, layers)
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(output_shape)
        self.flow = None  # a Flow, for a dataflow graph

    def forward(self, x: torch.Tensor):
        if self.flow is None:
            return super().forward(x)
        return self.flow.run(self, x)

    def extra_repr(self) -> str:
        shape = "x".join(map(str, self.input_shape))
        return f"input {shape}"


def to_torch(network, memory_limit: int | None = None) -> CompiledNetwork:
    """Compile a checked archdsl Network into a torch module.

    Raises SpecError (E-TOO-BIG) before allocating anything when the parameters would need
    more than `memory_limit` bytes (default: this machine's memory).
    """
    from .diagnostics import SpecError
    from .memory import build_refusal, memory_size

    graph = network.graph
    refusal = build_refusal(graph, memory_size() if memory_limit is None else memory_limit)
    if refusal is not None:
        raise SpecError([refusal], source=network.source)
    layers = _Assembly(graph).children(None)
    module = CompiledNetwork(network.name, layers, network.input_shape, network.output_shape)
    if graph.dataflow:
        from .flow import Flow

        module.flow = Flow(graph, module)
    scheme, options = graph.init
    initialise(module, scheme, options)
    return module


def initialise(module: nn.Module, scheme: str, options=()) -> None:
    """Apply a spec's `init` line. `pytorch` keeps every layer's own default; `resnet` is
    torchvision's ResNet scheme: Kaiming-normal (fan-out) convolutions, norm weights 1 and
    biases 0, and with `zero_residual` the last batch norm of every residual body zeroed."""
    if scheme == "pytorch":
        return
    if scheme != "resnet":
        raise ValueError(f"unknown initialisation {scheme!r}")
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)) and m.affine:
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    if "zero_residual" in options:
        for m in module.modules():
            if isinstance(m, Residual):
                norms = [n for n in m.body.modules() if isinstance(n, nn.BatchNorm2d) and n.affine]
                if norms:
                    nn.init.constant_(norms[-1].weight, 0)


class _Assembly:
    """One compilation: the graph, what each group holds, the merge node closing each
    combinator's group, and the module built for each layer node."""

    def __init__(self, graph):
        self.graph, self.contents = graph, graph.contents()
        self.merges = {node.merge.group: nid for nid, node in graph.layers()
                       if node.merge is not None}

    def children(self, gid) -> "OrderedDict[str, nn.Module]":
        """The modules directly inside group `gid` (None: the network), in the spec's order."""
        return OrderedDict((path, self.group(item) if isinstance(item, int) else self.layer(item))
                           for path, item in self.contents.get(gid, []))

    def layer(self, nid: str) -> nn.Module:
        node = self.graph.layer(nid)
        (pred,) = self.graph.inputs(nid)
        # in place as torchvision does where it is safe: saves one allocation per activation
        return node.kind.build(node.args, self.graph.shape(pred),
                               inplace=self.graph.may_work_in_place(pred))

    def group(self, gid: int) -> nn.Module:
        """The module of one group: a combinator's, a block call's, or a plain container."""
        from .layers.merge import combinator

        group = self.graph.groups[gid]
        built = self.children(gid)
        if isinstance(group, CombinatorGroup):
            how = combinator(group.combinator)
            module = _MERGE_MODULES[how.torch_module](*how.module_args(built))
            if isinstance(module, Residual):
                module.inplace = self.body_may_take_sum(group)
            return module
        # A block call prints as the block's name; repeats, iterations and branches as
        # containers.
        return Block(group.block if isinstance(group, BlockCall) else "Sequential", built)

    def body_may_take_sum(self, group: CombinatorGroup) -> bool:
        """Whether a residual may add its shortcut into its body's output in place: the
        body's last layer makes a fresh tensor that only the merge reads and its backward
        does not need (graph.may_work_in_place: its kind's `fresh_output` trait). Layers whose
        kind has the `passes_input` trait (dropout, stochastic depth, identity) are looked
        through, each read by the next alone."""
        graph = self.graph
        body = next((c for c in group.children if graph.groups[c].role == "body"), None)
        merge = self.merges.get(group.id)
        if body is None or merge is None:
            return False
        last = graph.inputs(merge)[0]
        while (body in graph.layer(last).groups and len(graph.successors(last)) == 1
               and graph.layer(last).kind.passes_input):
            (last,) = graph.inputs(last)
        if body not in graph.layer(last).groups:
            return False
        return graph.may_work_in_place(last)
