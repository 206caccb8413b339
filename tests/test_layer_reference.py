"""The layer reference of docs/language.md takes each kind's rules from the kind's own class
(`reference`), and docs/gen_layers.py refuses a kind with a shape rule but no reference."""

import importlib.util
import re
from pathlib import Path

import pytest

from archdsl.layers import REGISTRY
from archdsl.layers.base import INT, Arg, LayerKind, layer

GEN_LAYERS = Path(__file__).resolve().parent.parent / "docs" / "gen_layers.py"


def gen_layers():
    """docs/gen_layers.py, imported as a module."""
    spec = importlib.util.spec_from_file_location("gen_layers", GEN_LAYERS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_new_kind_brings_its_rules_into_the_reference():
    @layer("repeatchannels", family="shape", positional=("times",),
           summary="the channels repeated `times` times")
    class RepeatChannels(LayerKind):
        args = (Arg("times", INT, min=1, doc="how many copies"),)
        reference = {
            "input": "a C×H×W feature map",
            "shape": "times·C × H × W",
            "errors": "E-RANK",
        }

        def rules(self, a, x, calc):
            calc.output = (a.times * x[0],) + tuple(x[1:])

    try:
        section = gen_layers().render()
    finally:
        REGISTRY.pop("repeatchannels", None)
    kind = re.split(r"\n#{3,4} ", section.split("#### `repeatchannels`")[1])[0]
    assert "Input: a C×H×W feature map." in kind
    assert "- **Shape:** times·C × H × W." in kind
    assert "- **Errors:** E-RANK." in kind
    assert "- **Parameters:** 0." in kind  # what it leaves out takes the defaults
    assert "- **Receptive field:** kernel 1, stride 1" in kind


def test_a_kind_without_its_own_shape_keeps_the_identity_reference():
    @layer("noop", family="shape", summary="does nothing")
    class Noop(LayerKind):
        pass

    try:
        section = gen_layers().render()
    finally:
        REGISTRY.pop("noop", None)
    assert ("#### `noop`\n\nDoes nothing.\n\nInput: a feature map or a vector. For the lints: "
            "not nonlinear.\n\nNo arguments.\n\n- **Shape:** the output has the input's shape "
            "(feature map or vector).\n") in section


def test_a_shape_rule_without_a_reference_is_refused():
    @layer("halfchannels", family="shape", summary="the first half of the channels")
    class HalfChannels(LayerKind):
        def rules(self, a, x, calc):
            calc.output = (x[0] // 2,) + tuple(x[1:])

    try:
        with pytest.raises(SystemExit, match="'halfchannels'.*no `reference`"):
            gen_layers().render()
    finally:
        REGISTRY.pop("halfchannels", None)


def test_a_reference_with_an_unknown_key_is_refused():
    @layer("typo", family="shape", summary="a reference with a misspelt key")
    class Typo(LayerKind):
        reference = {"shape": "unchanged", "parmas": "0"}

    try:
        with pytest.raises(SystemExit, match=r"'typo'.*unknown keys \['parmas'\]"):
            gen_layers().render()
    finally:
        REGISTRY.pop("typo", None)


def test_the_merge_section_names_every_combinator():
    from archdsl.layers.merge import combinator_names

    sentence = gen_layers().merge_sentence()
    assert all(f"`{name}< >`" in sentence for name in combinator_names())
    assert sentence.endswith("`residual< >` and `shortcut_first< >` merge with `add`.")
