"""The layer registry: each layer kind declares, in one class, its arguments, shape rule,
parameter count, MACs, receptive-field step and torch builder.

A new layer is one decorated class in one of the family modules beside this file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

# Argument types: each coerces a written value itself (types.py)
from .calc import Calc
from .types import BOOL, CHOICE, FLOAT, INT, PADDING, PAIR, ArgType  # noqa: F401

Shape = tuple  # (C, H, W) for feature maps, (N,) for vectors; never the batch dimension

REQUIRED = object()

# Phrases of the layer reference (LayerKind.reference) that several kinds share
UNCHANGED_SHAPE = "the output has the input's shape (feature map or vector)"
UNCHANGED_FIELD = "kernel 1, stride 1: the receptive field passes through unchanged"


@dataclass(frozen=True)
class Arg:
    """One argument of a layer kind, as the user writes it."""

    name: str
    type: ArgType
    default: Any = REQUIRED
    flag: str | None = None  # short flag letter: `k3`, `s2`, `p1`, `d2`, `g32`
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    doc: str = ""
    aliases: tuple[str, ...] = ()  # its keyword in PyTorch, Keras or Caffe (`kernel_size`,
    #   `strides`, `pad`): written so, it is told archdsl's way (`k3`) (habits.py)

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


class LayerError(Exception):
    """Raised by a shape rule where PyTorch would raise; `arg` names the culprit argument."""

    def __init__(self, code: str, message: str, hint: str | None = None, arg: str | None = None,
                 label: str | None = None):
        super().__init__(message)
        self.code, self.message, self.hint, self.arg, self.label = code, message, hint, arg, label


class Args:
    """Resolved argument values with attribute access; `given` holds those the user wrote."""

    def __init__(self, values: dict[str, Any], given: frozenset[str] = frozenset()):
        self.__dict__["_values"] = dict(values)
        self.__dict__["given"] = frozenset(given)

    def __getattr__(self, name: str) -> Any:
        try:  # through __dict__: while unpickling, `_values` is not there yet
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __reduce__(self):
        return Args, (self._values, self.given)

    def __setattr__(self, name, value):
        raise AttributeError("Args are read-only")

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def __eq__(self, other):
        return isinstance(other, Args) and self._values == other._values

    def __repr__(self):
        return f"Args({self._values!r})"


class LayerKind:
    """Base of every layer kind. Subclasses override what differs from an identity layer."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""  # conv, pool, norm, activation, linear, shape
    args: ClassVar[tuple[Arg, ...]] = ()
    positional: ClassVar[tuple[str, ...]] = ()
    words: ClassVar[dict[str, tuple[str, Any]]] = {}
    summary: ClassVar[str] = ""  # one line for docs and help
    # Traits that later stages ask of a kind (never of its name):
    nonlinear: ClassVar[bool] = False  # breaks a chain of linear maps (lints)
    fresh_output: ClassVar[bool] = False  # a new tensor its backward does not need: an
    #                                       activation after it may work in place (torch)
    passes_input: ClassVar[bool] = False  # its output is its input itself, or a new tensor its
    #                                       backward does not need (dropout, stochastic depth):
    #                                       a residual's in-place sum looks through it (torch)
    sliding_window: ClassVar[bool] = False  # slides a kernel with a stride over H and W: it
    #                                         declares how in `window` (lints)
    cancels_bias: ClassVar[bool] = False  # subtracts a per-channel mean (a bias before it is lost)
    scores_to_probabilities: ClassVar[bool] = False  # softmax and log-softmax
    gives_probabilities: ClassVar[bool] = False  # softmax (not log-softmax, whose output
    #   cross-entropy's own log-softmax leaves as it is): a loss after it applies it twice (lints)
    global_field: ClassVar[bool] = False  # every output position sees every input position
    #                                       (attention): its field is the whole input (infer)
    reshapes: ClassVar[bool] = False  # moves, selects or drops values rather than computing on
    #   them (flatten, dropout, identity, tokens): the lints look through it to the layer before
    activation: ClassVar[bool] = False  # an activation function: after the last classifier
    #                                     layer it limits the scores (lints)
    classifier: ClassVar[bool] = False  # the fully connected layer that gives class scores
    #                                     when it comes last (lints)
    normalises: ClassVar[bool] = False  # a normalisation: a deep stack is no longer plain (lints)
    merges: ClassVar[bool] = False  # where a combinator's branches meet (merge.py's MergeKind):
    #   a shortcut for gradients (lints), no module of its own (its combinator's: health)
    # Habits from other frameworks, told archdsl's way with the exact replacement (habits.py):
    aliases: ClassVar[dict[str, str]] = {}  # what PyTorch, Keras or Caffe call this kind (case
    #   and `_` aside, a trailing `2d` too), each with the arguments the name implies ("" for
    #   none): {"batchnorm": ""} tells `BatchNorm2d` "archdsl calls it `bn`",
    #   {"globalavgpool": "1"} tells `globalavgpool` "archdsl writes it `adaptiveavgpool 1`"
    orders: ClassVar[dict[str, tuple[str, ...]]] = {}  # other frameworks' positional orders,
    #   by argument name, "in" the input size archdsl infers: {"PyTorch's Linear": ("in",
    #   "out")} tells `linear 8192 10` to leave out 8192, and {"Keras's Conv2D": ("out",
    #   "kernel", "stride")} `conv 64 3 p1` that the kernel is a flag (`conv 64 k3 p1`)
    weights: ClassVar[tuple[str, ...]] = ()  # its torch module's learnt weight matrices and
    #                                          kernels, by dotted parameter name ("weight",
    #                                          "qkv.weight"): a kind with some is a weighted
    #                                          layer (lints), and gradient health watches them
    # Its rules in words, for the layer reference in docs/language.md (docs/gen_layers.py):
    # "input" what it reads (default: a feature map or a vector), "shape" its output shape,
    # "params" and "buffers" their counts, "macs" its multiply-accumulates (each default 0),
    # "rf" how it grows the receptive field (default UNCHANGED_FIELD), "errors" the codes its
    # shape rule raises, and when. I, O: sizes along one axis (H or W); K, S, P, D: kernel,
    # stride, padding, dilation along that axis; C: input channels. The default is an
    # identity's: a kind that overrides `shape` declares its own.
    reference: ClassVar[dict[str, str]] = {"shape": UNCHANGED_SHAPE}

    def flags(self) -> dict[str, str]:
        """Short flag letter -> argument name: {"k": "kernel", "s": "stride", …}."""
        cached = self.__dict__.get("_flags")
        if cached is None:
            cached = self.__dict__["_flags"] = {a.flag: a.name for a in self.args if a.flag}
        return cached

    # -- the static rules ---------------------------------------------------------------
    def rules(self, a: Args, x: Shape, calc: Calc) -> None:
        """Work out this layer on input `x` through `calc` (calc.py): set `calc.output`,
        `calc.params`, `calc.buffers`, `calc.macs` and, for a layer that slides a window,
        `calc.window(kernel, stride)`, writing each number as a `calc.step`; raise LayerError
        where PyTorch would fail. The checker and `archdsl explain` both run this. The default
        is an identity's."""
        calc.same(self.identity_note())

    def identity_note(self) -> str:
        """The remark on an identity-shaped layer's one step."""
        return (f"{self.name}: {self.summary}" if self.summary else self.name) + \
            "; no parameters; receptive field unchanged"

    def work(self, a: Args, x: Shape) -> Calc:
        """The rules' results on input `x`, quietly (no words kept)."""
        calc = Calc([x])
        self.rules(a, x, calc)
        return calc

    def shape(self, a: Args, x: Shape) -> Shape:
        """The output shape on input `x` (LayerError where PyTorch would fail)."""
        return self.work(a, x).output

    def receptive(self, a: Args, x: Shape) -> tuple[tuple[int, int], tuple[int, int]]:
        """Effective kernel and stride along (H, W): how this layer grows the receptive field."""
        calc = self.work(a, x)
        return calc.kernel, calc.stride

    def window(self, a: Args, x: Shape) -> "Window":
        """How a `sliding_window` kind slides over the (C, H, W) input `x`."""
        raise NotImplementedError(f"{self.name} slides no window")

    def describe(self, a: Args) -> str:
        """A compact label for drawings: the kind and its key arguments."""
        return self.name

    # -- the torch side -----------------------------------------------------------------
    def torch(self, a: Args, x: Shape) -> "TorchCall":
        """The torch.nn constructor call of this layer on input `x`: the one declaration
        that both building (`build`) and codegen (`TorchCall.source`) use."""
        return call("Identity")

    def build(self, a: Args, x: Shape, inplace: bool = False):
        """The torch module (imports torch); `inplace` where the constructor takes it."""
        return self.torch(a, x).build(inplace)

    def __reduce__(self):  # pickles as its registry entry
        return _registered, (self.name,)

    @property
    def weighted(self) -> bool:
        """A layer with learnt weight matrices or kernels (not a norm's scale and shift)."""
        return bool(self.weights)


REGISTRY: dict[str, LayerKind] = {}


def _registered(name: str) -> LayerKind:
    return REGISTRY[name]


# Constructor arguments where a single number does not mean "the same in every dimension":
# nn.LayerNorm(4) normalises over the last dimension only, nn.LayerNorm((4, 4, 4)) over all.
_WHOLE_TUPLES = frozenset({"normalized_shape", "shape", "dims"})


@dataclass(frozen=True)
class TorchCall:
    """`nn.<cls>(*args, **kwargs)`, as data: built by the backend, written by codegen.

    `cls` is a class of torch.nn ("Conv2d"), or archdsl's own module written as
    "module.path:Name" ("archdsl.nn.norm:LayerNorm2d") where torch has none. An own module
    must be self-contained (it may use torch, nn and F only), because codegen copies
    its source into the standalone file."""

    cls: str
    args: tuple = ()
    kwargs: tuple = ()  # (name, value) pairs

    def build(self, inplace: bool = False):
        kwargs = dict(self.kwargs)
        if inplace and self.takes("inplace"):
            kwargs["inplace"] = True
        return self.module_class()(*self.args, **kwargs)

    @property
    def own(self) -> bool:
        """Whether the module is archdsl's own (not a class of torch.nn)."""
        return ":" in self.cls

    @property
    def name(self) -> str:
        """The class's own name: "Conv2d", "LayerNorm2d"."""
        return self.cls.rpartition(":")[2]

    def module_class(self):
        """The class itself, imported where this is asked (never on the check path)."""
        if self.own:
            import importlib

            module, _, name = self.cls.partition(":")
            return getattr(importlib.import_module(module), name)
        import torch.nn as nn

        return getattr(nn, self.cls)

    def takes(self, name: str) -> bool:
        """Whether the constructor has a parameter `name` (reads torch's signature)."""
        return name in self._signature().parameters

    def _signature(self):
        import inspect

        return inspect.signature(self.module_class().__init__)

    def source(self, inplace: bool = False) -> str:
        """`nn.Conv2d(3, 64, 11, stride=4, padding=2)`: arguments without a default written
        positionally, the others by name where they differ from it, `(3, 3)` as `3`; a Symbol
        (an `arch` parameter) by its name."""
        sig = self._signature()
        kwargs = dict(self.kwargs)
        if inplace and "inplace" in sig.parameters:
            kwargs["inplace"] = True
        bound = sig.bind_partial(None, *self.args, **kwargs).arguments
        out, positional = [], True
        for name, p in list(sig.parameters.items())[1:]:
            if name in ("device", "dtype") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if name not in bound:
                positional = False
                continue
            value = bound[name]
            if isinstance(value, list):
                value = tuple(value)
            if (isinstance(value, tuple) and value and all(v == value[0] for v in value)
                    and name not in _WHOLE_TUPLES):
                value = value[0]  # (3, 3) -> 3, as one writes it
            text = repr(value)
            if p.default is p.empty and positional:
                out.append(text)
            elif p.default is p.empty or value != p.default:
                positional = False
                out.append(f"{name}={text}")
            else:
                positional = False
        prefix = "" if self.own else "nn."
        return f"{prefix}{self.name}({', '.join(out)})"


class Symbol:
    """A value written by name in generated source (an `arch` parameter)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


def call(cls: str, *args, **kwargs) -> TorchCall:
    """The declaration of a layer's torch module: `call("Conv2d", 3, 64, (3, 3), stride=…)`,
    or of archdsl's own: `call("archdsl.nn.norm:LayerNorm2d", 64, eps=1e-6)`."""
    return TorchCall(cls, tuple(args), tuple(kwargs.items()))


TRAITS = ("nonlinear", "fresh_output", "passes_input", "sliding_window", "cancels_bias",
          "scores_to_probabilities", "gives_probabilities", "global_field", "reshapes",
          "activation", "classifier", "normalises", "merges")


# What `rules` replaced: a kind that defines one of these would have it ignored
_OLD_RULES = ("shape", "params", "buffers", "macs", "receptive", "receptive_merge")


def layer(name: str, *, family: str, positional: tuple[str, ...] = (),
          words: dict[str, tuple[str, Any]] | None = None, summary: str = "", **traits: bool):
    """Class decorator that registers one layer kind under `name`; `traits` are keyword flags
    named in TRAITS (`nonlinear=True`, `fresh_output=True`, …)."""
    unknown = set(traits) - set(TRAITS)
    if unknown:
        raise TypeError(f"unknown trait(s) {sorted(unknown)} for layer kind {name!r}")
    not_bool = sorted(t for t, value in traits.items() if not isinstance(value, bool))
    if not_bool:
        raise TypeError(f"trait(s) {not_bool} of layer kind {name!r} must be True or False")

    def register(cls):
        cls.name, cls.family, cls.positional = name, family, tuple(positional)
        cls.words = dict(words or {})
        cls.summary = summary or (cls.__doc__ or "").strip().split("\n")[0]
        for trait, value in traits.items():
            setattr(cls, trait, value)
        old = [m for m in _OLD_RULES if getattr(cls, m, None) is not getattr(LayerKind, m, None)]
        if old:
            raise TypeError(f"layer kind {name!r} defines {', '.join(f'`{m}`' for m in old)}: "
                            "a kind works out its shape, parameters, buffers, MACs and window "
                            "in one method, `rules(self, a, x, calc)` (archdsl/layers/calc.py)")
        known = {a.name for a in cls.args} | {"in"}
        for framework, order in cls.orders.items():
            if not known.issuperset(order):
                raise TypeError(f"layer kind {name!r}: the order of {framework} names "
                                f"{sorted(set(order) - known)}, which are no arguments of it")
        if cls.sliding_window and cls.window is LayerKind.window:
            raise TypeError(f"layer kind {name!r} is a sliding window but declares no `window`")
        if name in REGISTRY:
            raise ValueError(f"layer kind {name!r} registered twice")
        REGISTRY[name] = cls()
        return cls

    return register


# ----------------------------------------------------------------------------- shape helpers


def fmt_shape(shape: Shape | None) -> str:
    """`64x55x55` for a feature map, `4096` for a vector."""
    if shape is None:
        return "?"
    return "x".join(str(d) for d in shape)


def fmt_pair(pair) -> str:
    """`3×3` for a kernel or stride pair, `1×7` for a rectangular one."""
    return f"{pair[0]}×{pair[1]}"


def numel(shape: Shape) -> int:
    return math.prod(shape)


def sequence_text(x: Shape) -> str:
    """`a sequence of 64 tokens of 8 channels (64x8)`: a 2-D input in the user's words."""
    return f"a sequence of {x[0]} tokens of {x[1]} channels ({fmt_shape(x)})"


def need_map(kind: str, x: Shape) -> tuple[int, int, int]:
    """The (C, H, W) of a feature-map input, or the error a learner needs to see."""
    if len(x) == 2:
        raise LayerError("E-RANK", f"{kind} needs a CxHxW feature map, but its input is "
                         f"{sequence_text(x)}",
                         hint=f"`{kind}` works on feature maps, before `tokens` turns one into a "
                         "sequence")
    if len(x) != 3:
        raise LayerError("E-RANK", f"{kind} needs a CxHxW feature map, but its input is a vector of "
                         f"{fmt_shape(x)} features",
                         hint="put it before `flatten`, or use `linear` on vectors")
    return x


def need_vector(kind: str, x: Shape) -> int:
    """The length of a vector input, or the error a learner needs to see."""
    if len(x) == 2:
        raise LayerError("E-RANK", f"{kind} needs a flat vector, but its input is "
                         f"{sequence_text(x)}",
                         hint=f"pick one token first (`token 0`, the class token) before `{kind}`")
    if len(x) != 1:
        raise LayerError("E-RANK", f"{kind} needs a flat vector, but its input is a {fmt_shape(x)} "
                         "feature map", hint=f"add `flatten` (or `adaptiveavgpool 1; flatten`) before "
                                             f"`{kind}`")
    return x[0]


def effective(kernel: int, dilation: int) -> int:
    """How far a dilated kernel reaches: `dilation * (kernel - 1) + 1` inputs."""
    return dilation * (kernel - 1) + 1


@dataclass(frozen=True)
class Window:
    """How a sliding-window kind slides over H and W, as PyTorch does: per axis its kernel,
    stride, dilation and (before, after) padding; `ceil` rounds the output size up, and is
    None for a kind that has no such mode (a convolution)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[tuple[int, int], tuple[int, int]]  # ((top, bottom), (left, right))
    dilation: tuple[int, int] = (1, 1)
    ceil: bool | None = None

    @property
    def reach(self) -> tuple[int, int]:
        """The effective (dilated) kernel along H and W: how many inputs one window spans."""
        return (effective(self.kernel[0], self.dilation[0]),
                effective(self.kernel[1], self.dilation[1]))

    def output(self, axis: int, size: int) -> int:
        """The output size along `axis` (0: H, 1: W) of an input `size` long."""
        before, after = self.padding[axis]
        return window_output(size, self.kernel[axis], self.stride[axis], before, after,
                             self.dilation[axis], bool(self.ceil))


def window_output(size: int, kernel: int, stride: int, pad_l: int, pad_r: int, dilation: int,
                  ceil_mode: bool) -> int:
    """PyTorch's output size of a sliding window (pooling_output_shape_pad_lr)."""
    numerator = size + pad_l + pad_r - effective(kernel, dilation) + ((stride - 1) if ceil_mode else 0)
    out = numerator // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad_l:
        out -= 1
    return out
