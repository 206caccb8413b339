"""Traits are declared and checked: every trait is a bool with a default on LayerKind, the
`layer` decorator refuses what is not a trait, each sliding-window kind's `window` agrees
with its shape rule, and a kind registered with a trait is treated by the lints (and the
receptive field) as the registry's own kinds with that trait are."""

from contextlib import contextmanager

import pytest

from archdsl import loads
from archdsl.layers import REGISTRY
from archdsl.layers.base import (INT, TRAITS, Arg, Args, LayerError, LayerKind, Window, layer,
                                 window_output)
from archdsl.layers.types import ArgumentError


@contextmanager
def registered_for_the_test(*names):
    """Leaves the registry as it was: the kinds `names` registered inside are removed."""
    try:
        yield
    finally:
        for name in names:
            REGISTRY.pop(name, None)


def codes(text):
    return [d.code for d in loads(text, "t.arch").warnings]


# ----------------------------------------------------------------------------- declarations


@pytest.mark.parametrize("trait", TRAITS)
def test_every_trait_is_a_bool_with_a_default(trait):
    assert vars(LayerKind).get(trait) is False
    wrong = [name for name, kind in REGISTRY.items() if not isinstance(getattr(kind, trait), bool)]
    assert wrong == []


def test_the_decorator_refuses_what_is_not_a_trait():
    with registered_for_the_test("wrongtrait", "notbool", "slider"):
        with pytest.raises(TypeError, match="unknown trait"):
            layer("wrongtrait", family="shape", pointwise=True)
        with pytest.raises(TypeError, match="True or False"):
            layer("notbool", family="shape", nonlinear=1)
        with pytest.raises(TypeError, match="declares no `window`"):
            @layer("slider", family="pool", sliding_window=True)
            class Slider(LayerKind):
                pass
        assert not {"wrongtrait", "notbool", "slider"} & set(REGISTRY)


# ----------------------------------------------------------------------------- windows

SLIDING = sorted(name for name, kind in REGISTRY.items() if kind.sliding_window)
CASES = ({}, {"kernel": (3, 3), "stride": (2, 2)}, {"kernel": (2, 3), "stride": (2, 1)},
         {"kernel": (3, 3), "stride": (2, 2), "padding": (1, 1)},
         {"kernel": (3, 3), "stride": (3, 2), "dilation": (2, 2)},
         {"kernel": (3, 3), "stride": (2, 2), "ceil": True},
         {"kernel": (5, 5), "stride": (2, 2), "padding": (2, 1), "ceil": True},
         {"kernel": (4, 4), "padding": "same"}, {"kernel": (3, 3), "padding": "valid"})
INPUTS = ((4, 7, 7), (4, 8, 9), (4, 16, 15), (4, 5, 12))


def _args(kind, case):
    """The kind's arguments, each in canonical form: those of `case` that the kind takes,
    a plain value where one is required, and the defaults."""
    values = {}
    for a in kind.args:
        if a.name in case:
            values[a.name] = a.type.coerce(a, case[a.name], kind.name)
        elif a.required:
            values[a.name] = a.type.coerce(a, 3 if a.name == "kernel" else 4, kind.name)
        else:
            values[a.name] = a.type.default(a)
    return Args(values)


@pytest.mark.parametrize("name", SLIDING)
def test_a_window_gives_the_shape_rules_output_size(name):
    kind, checked = REGISTRY[name], 0
    for case in CASES:
        try:
            a = _args(kind, case)
        except ArgumentError:
            continue  # `same` padding for a pool
        for x in INPUTS:
            try:
                y = kind.shape(a, x)
            except LayerError:
                continue  # a window PyTorch refuses (padding over half the kernel, ...)
            w = kind.window(a, x)
            assert isinstance(w, Window)
            by_window = tuple(window_output(x[1 + axis], w.kernel[axis], w.stride[axis],
                                            *w.padding[axis], w.dilation[axis], bool(w.ceil))
                              for axis in (0, 1))
            assert y[1:] == by_window, (case, x, w)
            assert kind.receptive(a, x) == (w.reach, w.stride), (case, x, w)
            checked += 1
    assert checked >= 10


# ----------------------------------------------------------------------------- the lints


class _Dense(LayerKind):
    """A fully connected layer of the test's own."""

    args = (Arg("out", INT, min=1),)
    weights = ("weight",)

    def rules(self, a, x, calc):
        calc.output = (a.out,)


def test_a_classifier_kind_followed_by_an_activation_warns():
    with registered_for_the_test("dense", "plaindense", "squash"):
        @layer("dense", family="linear", positional=("out",), classifier=True)
        class Dense(_Dense):
            pass

        @layer("plaindense", family="linear", positional=("out",))
        class PlainDense(_Dense):
            pass

        @layer("squash", family="activation", nonlinear=True, activation=True)
        class Squash(LayerKind):
            pass

        assert codes("input 8\ndense 10; relu\n") == ["W-FINAL-ACTIVATION"]
        assert codes("input 8\nlinear 10; squash; dropout 0.1\n") == ["W-FINAL-ACTIVATION"]
        assert codes("input 8\ndense 10; squash\n") == ["W-FINAL-ACTIVATION"]
        # no classifier before it: a feature extractor may end in an activation
        assert codes("input 8\nplaindense 10; relu\n") == []


def test_a_kind_that_gives_probabilities_warns_before_the_loss():
    with registered_for_the_test("sparsemax", "reorder"):
        @layer("sparsemax", family="activation", nonlinear=True, activation=True,
               scores_to_probabilities=True, gives_probabilities=True)
        class Sparsemax(LayerKind):
            pass

        @layer("reorder", family="shape", reshapes=True)
        class Reorder(LayerKind):
            pass

        assert codes("input 8\nlinear 10; sparsemax\n") == ["W-SOFTMAX-LOSS"]
        # the lints look through a layer that only moves values
        assert codes("input 8\nlinear 10; sparsemax; reorder\n") == ["W-SOFTMAX-LOSS"]
        assert codes("input 8\nlinear 10; relu; reorder\n") == ["W-FINAL-ACTIVATION"]


def test_a_normalising_kind_breaks_a_plain_stack():
    with registered_for_the_test("rescale"):
        @layer("rescale", family="norm", normalises=True)
        class Rescale(LayerKind):
            pass

        plain = "conv 8 k3 p1; relu\n" * 21
        assert codes("input 8x8x8\n" + plain) == ["W-DEEP-PLAIN"]
        assert codes("input 8x8x8\n" + plain.replace("relu\n", "relu; rescale\n", 1)) == []


class _Subsample(LayerKind):
    """Every `step`-th position: a window with no `padding` argument, so the lint has to
    read the Window, not the arguments."""

    args = (Arg("step", INT, min=1),)
    ceil = None  # the Window's: None for a kind without a ceil mode

    def rules(self, a, x, calc):
        w = self.window(a, x)
        calc.output = (x[0], w.output(0, x[1]), w.output(1, x[2]))
        calc.window(w.reach, w.stride)

    def window(self, a, x):
        return Window((a.step, a.step), (a.step, a.step), ((0, 0), (0, 0)), ceil=self.ceil)


def test_a_sliding_window_kind_is_read_through_its_window():
    with registered_for_the_test("subsample", "subsampleceil"):
        @layer("subsample", family="pool", positional=("step",), sliding_window=True)
        class Subsample(_Subsample):
            pass

        @layer("subsampleceil", family="pool", positional=("step",), sliding_window=True)
        class RoundingSubsample(_Subsample):
            ceil = False

        (d,) = loads("input 3x9x9\nsubsample 2\n", "t.arch").warnings
        assert (d.code, d.message) == ("W-STRIDE-DROP",
                                       "stride 2 skips the last 1 row of the 3x9x9 input")
        assert d.hint == "pad by 1 more, or use an input size that fits the stride"
        (d,) = loads("input 3x9x9\nsubsampleceil 2\n", "t.arch").warnings
        assert d.hint == "pad by 1 more, use an input size that fits, or `ceil`"
        assert codes("input 3x8x8\nsubsample 2\n") == []


def test_a_global_field_kind_sees_the_whole_input():
    with registered_for_the_test("mixall", "mixnone"):
        @layer("mixall", family="linear", global_field=True)
        class MixAll(LayerKind):
            pass

        @layer("mixnone", family="linear")
        class MixNone(LayerKind):
            pass

        for op, field in (("mixall", (16, 12)), ("mixnone", (1, 1))):
            net = loads(f"input 3x16x12\n{op}\n", "t.arch")
            assert net.graph.facts[net.graph.output].rf == (field, (1, 1))
