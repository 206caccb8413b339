"""Gradient health: per-layer gradient norms, and what to do when they vanish or explode."""

from __future__ import annotations

import torch

VANISHING = 1e-4  # a layer's mean gradient norm below this fraction of the largest layer's
EXPLODING = 1e3  # a mean gradient norm above this


def _layers(network):
    """(name, kind, span) of each layer of the network in order, the input left out."""
    return [(name, node.kind, node.span) for name, node in network.graph.layers()
            if node.kind is not None]


def layer_weights(model, name: str, kind) -> list:
    """The weight tensors of layer `name` in `model`, as its kind declares them (`weights`:
    a convolution's kernel, an attention's projections), never assumed to be `.weight`."""
    module = model.get_submodule(name)
    return [module.get_parameter(w) for w in kind.weights]


class GradientHealth:
    """Tracks each weighted layer's gradient norm over an epoch (without syncing per step):
    the norm of all of the layer's weights together, as its kind declares them."""

    def __init__(self, network, model):
        self.layers = [(name, layer_weights(model, name, kind), f"{span.file}:{span.line}")
                       for name, kind, span in _layers(network) if kind.weighted]
        self.owner = None  # the layer of each weight tensor, on the gradients' device
        self.sums = None
        self.steps = 0

    def record(self) -> None:
        grads = [w.grad for _, weights, _ in self.layers for w in weights]
        if not grads or any(g is None for g in grads):
            return
        per_tensor = torch.stack(torch._foreach_norm(grads)).float().detach()
        if self.owner is None or self.owner.device != per_tensor.device:
            self.owner = torch.tensor([i for i, (_, weights, _) in enumerate(self.layers)
                                       for _ in weights], device=per_tensor.device)
        squares = torch.zeros(len(self.layers), device=per_tensor.device)
        norms = squares.index_add_(0, self.owner, per_tensor.square()).sqrt()
        self.sums = norms if self.sums is None else self.sums + norms
        self.steps += 1

    def end_epoch(self) -> list[str]:
        """Warnings for this epoch (naming the layer and its spec line), then start again."""
        if self.sums is None:
            return []
        means = (self.sums / self.steps).cpu().tolist()
        self.sums, self.steps = None, 0
        warnings = []
        bad = next((i for i, m in enumerate(means) if not torch.isfinite(torch.tensor(m))
                    or m > EXPLODING), None)
        if bad is not None:
            name, _, where = self.layers[bad]
            warnings.append(
                f"gradients are exploding at {name} ({where}): mean norm {means[bad]:.3g}; lower "
                "the learning rate (--lr), clip gradients (--clip-grad 1.0), or add "
                "normalisation (`bn`) after the convolutions")
        finite = [m for m in means if m == m and m != float("inf")]
        top = max(finite, default=0.0)
        if top > 0 and means[0] < VANISHING * top:
            name, _, where = self.layers[0]
            warnings.append(
                f"gradients are vanishing toward the first layers: {name} ({where}) gets a mean "
                f"norm of {means[0]:.2g}, {means[0] / top:.1g} of the largest layer's; add "
                "normalisation (`bn`) or residual connections (`residual< … >`), or use a "
                "higher learning rate")
        return warnings


def first_non_finite_layer(network, model, x) -> str:
    """`: the first non-finite values come out of conv3 (spec.arch:7)`, or '' if none do."""
    found = []
    hooks = []
    spans = {}
    for nid, kind, span in _layers(network):
        spans[nid] = span
        if kind.merges:
            continue  # a merge is its combinator's work, with no module of its own

        def hook(module, inputs, output, nid=nid):
            if not found and not torch.isfinite(output).all():
                found.append(nid)

        hooks.append(model.get_submodule(nid).register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    if not found:
        return ""
    span = spans[found[0]]
    return f" (the first non-finite values come out of {found[0]}, {span.file}:{span.line})"


def first_non_finite_gradient(network, model) -> str:
    """` at conv3.weight (spec.arch:7)`: the parameter nearest the output whose gradient is not
    finite (where the fault entered, as gradients flow back from the loss), or ''."""
    from ..checkpoints import layer_of

    for key, parameter in reversed(list(model.named_parameters())):
        if parameter.grad is not None and not torch.isfinite(parameter.grad).all():
            return f" at {layer_of(network, key, with_tensor=True)}"
    return ""


def first_non_finite_tensor(network, tensors: dict) -> str:
    """` at layer conv1's weight (spec.arch:3)`: the first tensor of a state_dict (weights and
    buffers) holding NaN or an infinity, or '' when all are finite."""
    from ..checkpoints import layer_of

    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return f" at {layer_of(network, key, with_tensor=True)}"
    return ""
