"""Habits from other frameworks, read from the kinds' own declarations: what PyTorch, Keras and
Caffe call a kind (`LayerKind.aliases`) or an argument (`Arg.aliases`), the order in which
their constructors take positional values (`LayerKind.orders`), and the keywords archdsl
infers or decides itself. The expansion's hints ask here for the archdsl way of writing what
a learner wrote, so that a hint can give the exact replacement (`BatchNorm2d` -> `bn`,
`kernel_size=3` -> `k3`, `conv 3 64 k3` -> `conv 64 k3`).

Registers no kind; the family modules declare the data beside each kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .base import REGISTRY, Arg, LayerKind
from .types import ArgumentError

# Keywords of other frameworks' constructors that name the input size, which archdsl infers
# from the layer before (nn.Conv2d's in_channels, nn.BatchNorm2d's num_features, Keras's
# input_shape): leave them out.
INFERRED = ("in_channels", "in_features", "num_features", "num_channels", "normalized_shape",
            "input_shape", "input_dim", "input_size", "embed_dim")

# Keywords that archdsl decides itself, with the reason a hint gives.
DECIDED = {
    "inplace": "archdsl makes a layer work in place where that is safe",
    "name": "archdsl names every layer itself (conv1, relu2, …)",
}

INPUT = "in"  # an order's place for the input size archdsl infers

_GLUED = re.compile(r"([A-Za-z_]+?)_?([0-9]+(?:x[0-9]+)*)")
_PLAIN = re.compile(r"[0-9]+(?:x[0-9]+)?")


def _key(name: str) -> str:
    """A name as compared across frameworks: `BatchNorm2d`, `batch_norm2d` -> `batchnorm2d`."""
    return name.lower().replace("_", "")


def kinds_called(name: str) -> list[tuple[LayerKind, str]]:
    """The kinds another framework's `name` means, each with how archdsl writes it
    (`globalavgpool` -> adaptiveavgpool, "adaptiveavgpool 1"); case and `_` aside, and a
    trailing `2d` (`MaxPool2d`, `Conv2D`). Several for a name that could mean either (`pool`)."""
    key = _key(name)
    for candidate in (key, key[:-2] if key.endswith("2d") else None):
        if not candidate:
            continue
        kind = REGISTRY.get(candidate)
        if kind is not None:
            return [(kind, kind.name)]
        found = [(k, f"{k.name} {rest}".strip()) for k in REGISTRY.values()
                 for alias, rest in k.aliases.items() if _key(alias) == candidate]
        if found:
            return found
    return []


def kind_hint(name: str) -> str | None:
    """`archdsl calls it `bn``: the hint for an unknown layer named as another framework names
    a kind; None when no kind is meant."""
    found = kinds_called(name)
    if not found:
        return None
    if len(found) > 1:
        return "archdsl says which one: " + " or ".join(f"`{written}`" for _, written in found)
    (kind, written), = found
    if kind.merges:
        return f"archdsl joins branches with a combinator: `{kind.name}< … | … >`"
    return f"archdsl {'calls' if written == kind.name else 'writes'} it `{written}`"


def argument_called(kind: LayerKind, name: str) -> Arg | None:
    """The argument of `kind` that another framework calls `name` (`kernel_size`, `strides`,
    `pad`), or whose own name it is with another case or `_`."""
    key = _key(name)
    return next((a for a in kind.args
                 if key == _key(a.name) or key in map(_key, a.aliases)), None)


def written(kind: LayerKind, arg: Arg, text: str) -> str:
    """How archdsl writes argument `arg` with the value `text`, away from its place among the
    positional values: a flag for a plain number (`k3`), the word the kind declares for a
    true or false (`nobias`), else a keyword (`slope=0.2`), true and false in lower case."""
    if arg.flag and _PLAIN.fullmatch(text):
        return f"{arg.flag}{text}"
    if text.lower() in ("true", "false"):
        fixed = (arg.name, text.lower() == "true")
        word = next((w for w, meaning in kind.words.items() if meaning == fixed), None)
        return word or f"{arg.name}={text.lower()}"
    return f"{arg.name}={text}"


def glued(kind: LayerKind, word: str) -> tuple[Arg, str] | None:
    """A name and a number written as one word, as other frameworks' names (`stride2`, `pad1`,
    `kernel_size3`): the argument meant and the number; None if `word` is no such thing."""
    m = _GLUED.fullmatch(word)
    if m is None:
        return None
    arg = argument_called(kind, m.group(1))
    return (arg, m.group(2)) if arg is not None else None


@dataclass(frozen=True)
class Reading:
    """Positional values read in another framework's order: each value's argument name
    (INPUT for the input size, to be left out), and the framework's label."""

    framework: str
    names: tuple[str, ...]


def readings(kind: LayerKind, values: list, given: set[str]) -> list[Reading]:
    """The orders of other frameworks (`kind.orders`) that read every positional value
    written, clash with no argument given otherwise, keep each value in its argument's type
    and range, and leave no required argument out."""
    by_name = {a.name: a for a in kind.args}
    found = []
    for framework, order in kind.orders.items():
        names = order[:len(values)]
        if len(values) > len(order) or given.intersection(names):
            continue
        if all(_fits(kind, by_name.get(n), v) for n, v in zip(names, values)) and all(
                a.name in given or a.name in names for a in kind.args if a.required):
            found.append(Reading(framework, tuple(names)))
    return found


def _fits(kind: LayerKind, arg: Arg | None, value) -> bool:
    """Whether `value` fits `arg` (None: the input size, a whole number)."""
    if arg is None:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1
    try:
        arg.type.coerce(arg, value, kind.name)
    except ArgumentError:
        return False
    return True
