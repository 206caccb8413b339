"""`repeat n as i { … }`: the iteration's index, 0 … n-1, inside the body (in expressions,
block arguments and nested repeats), located errors for its misuse, its colours, and the zoo
specs that use it to give each block torchvision's stochastic-depth probability."""

import math

import pytest

import archdsl
from archdsl import SpecError
from archdsl.graph import BlockCall


def load(text, **params):
    return archdsl.loads(text, "t.arch", **params)


def widths(net, kind="conv"):
    return [net.graph.facts[name].shape[0] for name, node in net.graph.layers()
            if node.op == kind]


def only_error(text, **params):
    with pytest.raises(SpecError) as caught:
        load(text, **params)
    errors = [d for d in caught.value.diagnostics if d.is_error]
    assert len(errors) == 1, errors
    return errors[0]


# ----------------------------------------------------------------------------- the index


def test_the_index_counts_the_iterations_from_zero():
    net = load("input 3x8x8\nrepeat 4 as i { conv 8+i k1 }\n")
    assert widths(net) == [8, 9, 10, 11]
    assert [name for name, _ in net.graph.layers()][1:] == [
        f"repeat1.{i}.conv1" for i in range(4)]  # names as without an index


def test_an_unused_index_changes_nothing():
    plain = load("input 3x8x8\nrepeat 3 { conv 8 k3 p1; relu }\n")
    indexed = load("input 3x8x8\nrepeat 3 as step { conv 8 k3 p1; relu }\n")
    assert [n for n, _ in indexed.graph.layers()] == [n for n, _ in plain.graph.layers()]
    assert (indexed.params, indexed.macs) == (plain.params, plain.macs)


def test_the_index_is_passed_to_blocks_and_shows_in_their_calls():
    net = load("input 3x8x8\nblock b(c) { conv c k1; relu }\n"
               "repeat 3 as i { b 4*(i+1) }\n")
    assert widths(net) == [4, 8, 12]
    labels = [g.label for g in net.graph.groups.values() if isinstance(g, BlockCall)]
    assert labels == ["b 4", "b 8", "b 12"]


def test_a_block_body_names_its_own_index():
    net = load("input 3x8x8\nblock stage(c, n) { repeat n as i { conv c+i k1 } }\n"
               "stage 8 2; stage 16 3\n")
    assert widths(net) == [8, 9, 16, 17, 18]


def test_nested_repeats_have_their_own_indices_and_an_inner_count_may_read_the_outer():
    net = load("input 3x8x8\nrepeat 3 as i { repeat i+1 as j { conv 10*i+j+1 k1 } }\n")
    assert widths(net) == [1, 11, 12, 21, 22, 23]


def test_the_index_takes_part_in_conditionals_and_functions():
    net = load("input 3x8x8\ndef double(v) = 2 * v\n"
               "repeat 4 as i { conv (double(i) + 1 if i % 2 == 0 else 7) k1 }\n")
    assert widths(net) == [1, 7, 5, 7]


def test_stochastic_depth_from_the_index():
    net = load("arch a(sd=0.2)\ninput 8x8x8\n"
               "repeat 5 as i { residual< conv 8 k3 p1; stochasticdepth sd*i/5 > }\n")
    ps = [node.args.p for _, node in net.graph.layers() if node.op == "stochasticdepth"]
    assert ps == [0.2 * i / 5 for i in range(5)]


def test_the_size_estimate_sums_the_iterations():
    # 0 + 1 + … + 99 = 4,950 layers: under the 5,000 limit, so it expands ...
    net = load("input 3x8x8\nrepeat 100 as i { repeat i { relu } }\n")
    assert len(net.graph) - 1 == 4950
    # ... and 0 + … + 100 = 5,050 is refused before expanding, with the right size
    e = only_error("input 3x8x8\nrepeat 101 as i { repeat i { relu } }\n")
    assert e.code == "E-TOO-BIG" and "about 5,050" in e.message


def test_a_long_repeat_whose_iterations_are_mostly_empty_is_not_refused():
    """Issue 26, item 16: beyond 5,000 iterations the estimate took every iteration to be
    as large as the first or the last, so this 2-layer network was refused with E-TOO-BIG
    "about 6,000 layers". Every iteration is summed now, the work budget bounding the sum."""
    net = load("input 3x8x8\nrepeat 6000 as i { repeat (1 if i == 0 else 0) { relu } }\n"
               "conv 4 k1\n")
    assert [n.op for _, n in net.graph.layers() if n.kind is not None] == ["relu", "conv"]
    e = only_error("input 3x8x8\nrepeat 6000 as i { repeat (1 if i < 5001 else 0) { relu } }\n")
    assert e.code == "E-TOO-BIG" and "5,000 layers" in e.message


def test_the_index_reaches_the_compiled_module():
    import torch

    net = load("input 3x8x8\nrepeat 3 as i { conv 4+2*i k3 p1; relu }\n")
    assert net.to_torch()(torch.randn(2, 3, 8, 8)).shape == (2, 8, 8, 8)


# ----------------------------------------------------------------------------- misuse


def test_the_index_outside_its_repeat_is_an_unknown_name_that_says_where_it_lives():
    e = only_error("input 3x8x8\nrepeat 3 as i { relu }\nconv 8 k=i\n")
    assert (e.code, e.span.line, e.span.column) == ("E-UNKNOWN-NAME", 3, 10)
    assert "index of the `repeat` on line 2" in e.hint
    # a bare word where a layer's number goes says the same
    e = only_error("input 3x8x8\nrepeat 3 as i { relu }\nconv i k1\n")
    assert (e.code, e.span.line, e.span.column) == ("E-UNKNOWN-NAME", 3, 6)
    assert "repeat` on line 2" in e.hint


def test_a_block_does_not_see_the_index_of_the_repeat_that_calls_it():
    e = only_error("input 3x8x8\nblock b(c) { conv c+i k1 }\nrepeat 3 as i { b 4 }\n")
    assert (e.code, e.span.line, e.span.column) == ("E-UNKNOWN-NAME", 2, 21)
    assert "pass it as an argument" in e.hint
    assert e.notes and e.notes[0].span.line == 3  # through the call


def test_an_index_passed_to_a_block_outside_its_repeat_is_an_error_at_the_call():
    e = only_error("input 3x8x8\nblock b(c) { conv c k1 }\nrepeat 2 as i { relu }\nb i\n")
    assert (e.code, e.span.line, e.span.column) == ("E-UNKNOWN-NAME", 4, 3)
    assert "repeat` on line 3" in e.hint


@pytest.mark.parametrize("text, line, column, what", [
    ("input 3x8x8\nrepeat 3 as i {\n  repeat 2 as i { relu }\n}\n", 3, 15,
     "the index of the enclosing `repeat` on line 2"),
    ("arch a(c=4)\ninput 3x8x8\nrepeat 3 as c { relu }\n", 3, 13,
     "a parameter of the `arch` header"),
    ("input 3x8x8\nblock b(c) { repeat 2 as c { relu } }\nb 4\n", 2, 26,
     "a parameter of block `b`"),
    ("input 3x8x8\nrepeat 2 as conv { relu }\n", 2, 13, "a layer kind"),
    ("input 3x8x8\nblock stem { relu }\nrepeat 2 as stem { relu }\n", 3, 13, "a block"),
    ("input 3x8x8\nrepeat 2 as true { relu }\n", 2, 13, "a value"),
])
def test_an_index_may_not_hide_another_name(text, line, column, what):
    e = only_error(text)
    assert (e.code, e.span.line, e.span.column) == ("E-DUPLICATE", line, column)
    assert e.message.endswith(what)
    assert e.hint.startswith("give the index a name of its own, e.g. `")


def test_an_index_may_reuse_a_name_after_its_repeat():
    net = load("input 3x8x8\nrepeat 2 as i { conv 4+i k1 }\nrepeat 2 as i { conv 8+i k1 }\n")
    assert widths(net) == [4, 5, 8, 9]


@pytest.mark.parametrize("text, code", [
    ("input 3x8x8\nrepeat 2.5 as i { relu }\n", "E-ARG-TYPE"),
    ("input 3x8x8\nrepeat 5/2 as i { relu }\n", "E-ARG-TYPE"),
    ("input 3x8x8\nrepeat (0-1) as i { relu }\n", "E-ARG-RANGE"),
])
def test_the_count_must_be_a_whole_number(text, code):
    e = only_error(text)
    assert (e.code, e.span.line) == (code, 2)


def test_a_fraction_of_the_index_where_a_whole_number_is_needed():
    e = only_error("input 3x8x8\nrepeat 2 as i { conv 8 k=i/2+1 p1 }\n")
    assert (e.code, e.message) == ("E-ARG-TYPE", "conv kernel must be a whole number, got 1.5")


@pytest.mark.parametrize("after", ["2", "(i)", "-i", "{ relu }", "1.5", "3x3"])
def test_as_needs_a_name(after):
    e = only_error(f"input 3x8x8\nrepeat 3 as {after} {{ relu }}\n")
    assert (e.code, e.span.line, e.span.column) == ("E-SYNTAX", 2, 13)
    assert "`as` names the repeat's index" in e.message
    assert e.hint == "write a name after `as`: `repeat n as i { … }`"


def test_syntax_errors_after_an_indexed_repeat_are_named():
    e = only_error("input 3x8x8\nrepeat 3 as i { relu } conv 8\n")
    assert "statements are separated by `;` or a new line" in e.message
    e = only_error("input 3x8x8\nrepeat 3 as i { relu\n")
    assert e.message == "the file ends before a closing `}`"


def test_as_is_a_word_only_after_a_repeat_count():
    net = load("arch a(as=8)\ninput 3x8x8\nconv as k1\n")  # a parameter may be called `as`
    assert widths(net) == [8]


# ----------------------------------------------------------------------------- colours


def test_as_is_coloured_as_a_keyword():
    import json
    from pathlib import Path

    from pygments.lexers import get_lexer_by_name
    from pygments.token import Keyword, Name

    text = "repeat n as i { conv c+i k1 }\n"
    kinds = {t: k for k, t in get_lexer_by_name("arch").get_tokens(text) if t.strip()}
    assert kinds["as"] is Keyword and kinds["repeat"] is Keyword and kinds["i"] is Name
    grammar = json.loads((Path(__file__).resolve().parent.parent / "editors" / "vscode" /
                          "syntaxes" / "arch.tmLanguage.json").read_text())
    rules = grammar["repository"]["statement"]["patterns"]
    assert {"match": r"\bas\b", "name": "keyword.control.as.arch"} in rules


# ----------------------------------------------------------------------------- the zoo


def _our_probabilities(name, **extra):
    import torch

    from test_zoo import SPECS, ZOO

    entry = ZOO[name]
    net = archdsl.load(SPECS / entry["spec"], input_shape=(3, 64, 64),
                       **{**entry.get("set", {}), **extra})
    with torch.device("meta"):
        module = net.to_torch()
    return [m.p for m in module.modules() if type(m).__name__ == "StochasticDepth"]


def _torchvision_probabilities(model):
    """The p of each StochasticDepth torchvision's blocks apply: an MBConv without a shortcut
    holds one but never calls it."""
    return [m.stochastic_depth.p for m in model.modules() if hasattr(m, "stochastic_depth")
            and getattr(m, "use_res_connect", True)]


@pytest.mark.parametrize("name", ["efficientnet_b0", "efficientnet_b4", "efficientnet_b7",
                                  "efficientnet_v2_s", "efficientnet_v2_l", "convnext_tiny",
                                  "convnext_base"])
def test_each_blocks_stochastic_depth_is_torchvisions(name):
    from test_zoo import torchvision_model

    ours = _our_probabilities(name)
    theirs = _torchvision_probabilities(torchvision_model(name, {}))
    assert len(ours) > 8 and max(ours) >= 0.1
    assert ours == theirs  # exactly: the same float operations in the same order


def test_convnext_takes_any_depth_of_its_third_stage():
    import torch
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    from test_zoo import count

    for d3 in (0, 5):
        with torch.device("meta"):
            tv = ConvNeXt([CNBlockConfig(96, 192, 3), CNBlockConfig(192, 384, 3),
                           CNBlockConfig(384, 768, d3), CNBlockConfig(768, None, 3)],
                          stochastic_depth_prob=0.3)
        assert _our_probabilities("convnext_tiny", d3=d3, sd=0.3) == \
            _torchvision_probabilities(tv)
        net = archdsl.load("specs/convnext.arch", input_shape=(3, 64, 64), d3=d3)
        assert (net.params, net.buffers) == count(tv)


@pytest.mark.parametrize("name, ours_set, theirs_set", [
    ("efficientnet_b0", {"dropout": 0.0}, {"dropout": 0.0}),  # the classifier's: no other draws
    ("convnext_tiny", {}, {}),
])
def test_a_training_step_with_stochastic_depth_matches_torchvision(name, ours_set, theirs_set):
    """With stochastic depth on (the entry's default sd) in train mode, the same random
    stream drops the same samples' bodies in both networks: the outputs are equal, and differ
    from those without stochastic depth."""
    import torch

    from test_zoo import DEFAULT_SMALL_INPUT, SPECS, ZOO, randomise, torchvision_model

    entry = ZOO[name]
    x = torch.randn(4, *DEFAULT_SMALL_INPUT, generator=torch.Generator().manual_seed(1))
    tv = randomise(torchvision_model(name, theirs_set), x)
    net = archdsl.load(SPECS / entry["spec"], input_shape=DEFAULT_SMALL_INPUT,
                       **{**entry.get("set", {}), **ours_set})
    ours = net.to_torch()
    archdsl.transfer_weights(tv, ours)
    outputs = []
    for model in (tv, ours):
        model.train()
        torch.manual_seed(7)
        with torch.no_grad():
            outputs.append(model(x))
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-4, atol=1e-5)
    for m in tv.modules():  # the same step with every block kept
        if type(m).__name__ == "StochasticDepth":
            m.p = 0.0
    torch.manual_seed(7)
    with torch.no_grad():
        kept = tv(x)
    assert not torch.allclose(kept, outputs[0], rtol=1e-3, atol=1e-3)
    assert math.isfinite(outputs[0].abs().max().item())
