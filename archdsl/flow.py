"""The forward pass of a dataflow graph: the graph's nodes run in order, each reading the
values it is connected to, for a network whose values go elsewhere than its nesting says
(named values, blocks of several inputs or outputs, several outputs).

The modules stay where the spec's structure registers them (state_dict keys are the same as
in a nested network); a Flow holds plain references to them and the steps: each node's
module (or merge), the slots it reads, the slots whose value is read for the last time (freed
at once, as a Sequential frees them), and whether it serves only outputs used in training
(skipped in eval, as torchvision's GoogLeNet skips its auxiliary heads). Several outputs come
back as a named tuple in training; in eval, the outputs not marked `aux`: one of them as the
tensor itself.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Step:
    module: object  # an nn.Module, or a merge kind (its `merge(outputs)`)
    merges: bool
    reads: tuple[int, ...]  # slots
    writes: int
    frees: tuple[int, ...]  # slots read for the last time here
    train_only: bool


class Flow:
    """The steps of one compiled dataflow graph, and how its outputs come back."""

    def __init__(self, graph, network: nn.Module):
        import networkx as nx

        order = graph.order
        slot = {nid: i for i, nid in enumerate(order)}
        main = [o for o in graph.outputs if o.aux is None]
        needed_in_eval = set().union(*(nx.ancestors(graph.dag, o.node) | {o.node} for o in main))
        last_read: dict[str, int] = {}
        for i, nid in enumerate(order):
            for p in graph.inputs(nid):
                last_read[p] = i
        kept = {o.node for o in graph.outputs}
        frees: dict[int, list[int]] = {}
        for nid, i in last_read.items():
            if nid not in kept:
                frees.setdefault(i, []).append(slot[nid])
        self.steps = []
        for i, nid in enumerate(order[1:], start=1):
            node = graph.layer(nid)
            merges = node.kind.merges
            self.steps.append(Step(
                node.kind.bound(node.args) if merges else network.get_submodule(nid), merges,
                tuple(slot[p] for p in graph.inputs(nid)), i, tuple(frees.get(i, ())),
                nid not in needed_in_eval))
        self.slots = len(order)
        self.outputs = [(o.name, slot[o.node], o.aux is not None) for o in graph.outputs]
        self.cls = "".join(p.capitalize() for p in graph.name.split("_")) + "Outputs"
        self._tuples()
        self.as_dict = False  # several outputs in eval as a dict by name (export's)

    def _tuples(self) -> None:
        """The named tuples of every output (training) and of the main ones (eval)."""
        names = [n for n, _, _ in self.outputs]
        self.every = namedtuple(self.cls, names) if len(names) > 1 else None
        eval_names = [n for n, _, aux in self.outputs if not aux]
        self.in_eval = namedtuple(self.cls, eval_names) if len(eval_names) > 1 else None

    def __getstate__(self):  # a pickled network (torch.save(model)) leaves the classes out
        state = dict(self.__dict__)
        state.pop("every"), state.pop("in_eval")
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._tuples()

    def run(self, network: nn.Module, x: torch.Tensor):
        values: list = [None] * self.slots
        values[0] = x
        training = network.training
        for step in self.steps:
            if step.train_only and not training:
                continue
            if step.merges:
                out = step.module.merge([values[r] for r in step.reads])
            else:
                out = step.module(values[step.reads[0]])
            for f in step.frees:
                values[f] = None
            values[step.writes] = out
        if len(self.outputs) == 1:
            return values[self.outputs[0][1]]
        if training:
            return self.every(*(values[s] for _, s, _ in self.outputs))
        mains = [values[s] for _, s, aux in self.outputs if not aux]
        if self.in_eval is None:
            return mains[0]
        if self.as_dict:  # torch.export saves a dict of tensors, not a class of ours
            return dict(zip(self.in_eval._fields, mains))
        return self.in_eval(*mains)


def main_output(out):
    """The main output of what a network returns: the first of several, or the one tensor."""
    return out[0] if isinstance(out, tuple) else out


def weighted_loss(out, target, loss_fn, weights):
    """(main output, loss): the main output's loss, plus each auxiliary output's weighted by
    `weights` (one per output, None for the main one and any other output not marked
    `aux`, which adds nothing)."""
    if not isinstance(out, tuple):
        return out, loss_fn(out.float(), target)
    loss = loss_fn(out[0].float(), target)
    for weight, extra in zip(weights[1:], out[1:]):
        if weight:
            loss = loss + weight * loss_fn(extra.float(), target)
    return out[0], loss
