"""The pictures a person puts in a report (issue 13): the default drawing of every spec fits
a page or is collapsed sensibly, blocks are titled with their parameters, colours tell the
families apart, the legend is one even row, a residual's body and shortcut are labelled, and
cluster titles sit beside the first node instead of under the edges."""

import re
import struct
from pathlib import Path

import pytest

from archdsl.cli import main
from archdsl.graph import RepeatGroup
from archdsl.draw import (FAMILIES, PAGE_NODES, DrawOptions, collapsed_groups, drawn_size,
                          title, to_dot)
from archdsl.draw_collapse import OPEN_RANKS
from archdsl.network import analyse_graph

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.arch"))


def graph_of(text, name="t.arch"):
    _, graph, _ = analyse_graph(text, name)
    return graph


def source(text, collapse="auto"):
    return to_dot(graph_of(text), [], DrawOptions(collapse=collapse)).source


def drawn_nodes(src):
    return re.findall(r"^\t+(n_\w+|fork_\w+|block\d+|output) \[", src, re.M)


def titles(src):
    return [t.strip('"') for t in re.findall(r'^\t+title_\d+ \[label=("[^"]*"|\S+) ', src, re.M)]


VGG_LIKE = """arch v(num_classes=10)
input 3x32x32
block stage(c, n) {
  repeat n { conv c k3 p1; relu }
  maxpool 2
}
stage 8 1; stage 16 3
flatten; linear num_classes
"""


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_the_default_drawing_of_every_spec_fits_a_page(spec):
    graph = graph_of(spec.read_text(), spec.name)
    assert graph is not None, f"{spec.name} does not check, so it has no picture"
    nodes, ranks = drawn_size(graph, collapsed_groups(graph, "auto"))
    assert nodes <= PAGE_NODES and ranks <= OPEN_RANKS, (nodes, ranks)
    src = to_dot(graph, [], DrawOptions()).source
    assert len(drawn_nodes(src)) <= PAGE_NODES
    assert "repeat ×1" not in src


def test_vgg16_folds_its_repeats_and_is_not_4000_px_tall(tmp_path, capsys):
    src = to_dot(graph_of((ROOT / "specs/vgg16.arch").read_text(), "vgg16.arch"), []).source
    folded = re.findall(r'^\t+block\d+ \[label="([^\n"]*)', src, re.M)
    assert folded[0] == "(conv 64 · 3×3 p1 → relu) ×2"
    assert folded[2] == "(conv 256 · 3×3 p1 → relu) ×3"
    assert titles(src) == ["stage(c=64, n=2)", "stage(c=128, n=2)", "stage(c=256, n=3)",
                           "stage(c=512, n=3)", "stage(c=512, n=3)"]
    out = tmp_path / "vgg16.png"
    assert main(["draw", str(ROOT / "specs/vgg16.arch"), "-o", str(out)]) == 0
    width, height = struct.unpack(">II", out.read_bytes()[16:24])
    assert height < 2500 and width < 1000  # it was 4,130 px tall with every repeat unrolled


def test_a_repeat_of_one_iteration_draws_no_cluster_and_blocks_name_their_parameters():
    src = source(VGG_LIKE, collapse="none")
    assert titles(src) == ["stage(c=8, n=1)", "repeat ×3", "stage(c=16, n=3)"]
    assert len(re.findall(r"subgraph cluster_", src)) == 3  # no cluster for the repeat ×1
    collapsed = source(VGG_LIKE, collapse="all")
    assert "label=\"stage(c=16, n=3)\n8×16×16 → 16×8×8\n" in collapsed


def test_cluster_titles_sit_beside_the_first_node_on_its_rank():
    src = source(VGG_LIKE, collapse="none")
    # the title and the cluster's first node share a rank: edges enter the node, not the title
    assert re.search(r"\{\n\t+rank=same\n\t+title_0 -> n_stage1__repeat1__0__conv1 "
                     r"\[style=invis\]", src)
    assert "label=\"stage(c=8, n=1)\"" not in src.replace("title_0 [label", "")


def test_family_colours_are_far_apart():
    def rgb(h):
        return [int(h[i:i + 2], 16) for i in (1, 3, 5)]
    fills = {f: rgb(c) for f, (c, _) in FAMILIES.items() if f != "block"}
    for a in fills:
        for b in fills:
            if a < b:
                distance = sum((x - y) ** 2 for x, y in zip(fills[a], fills[b])) ** 0.5
                assert distance > 40, (a, b)
    pool, act = fills["pool"], fills["activation"]
    assert sum((x - y) ** 2 for x, y in zip(pool, act)) ** 0.5 > 80  # was 14: peach and cream


def test_the_legend_is_one_even_row_of_the_families_drawn():
    src = source("input 3x8x8\nconv 4 k3; relu; maxpool 2; flatten; linear 2\n")
    cells = re.findall(r'<td bgcolor="(#\w+)" border="1" style="rounded"><font point-size="8">'
                       r'([^<]+)</font></td>', src)
    assert [name for _, name in cells] == ["convolution", "pooling", "activation", "linear",
                                           "reshape / dropout"]
    assert 'cellspacing="4"' in src and "legend_" not in src  # one table: even spacing


def test_a_residual_labels_its_body_and_its_shortcut():
    src = source("input 8x8x8\nresidual< conv 8 k3 p1; relu >\n"
                 "residual< conv 16 k3 p1 s2 | conv 16 k1 s2 >\n", collapse="none")
    assert 'fork_n_residual1__add -> n_residual1__body__conv1 [label=" body\n8×8×8" ' \
           'fontcolor="#1155cc"]' in src
    assert 'fork_n_residual1__add -> n_residual1__add [label=" shortcut (identity)\n8×8×8" ' \
           'fontcolor="#1155cc"]' in src
    assert 'fork_n_residual2__add -> n_residual2__shortcut__conv1 [label=" shortcut\n8×8×8" ' \
           'fontcolor="#1155cc"]' in src
    concat = source("input 8x8x8\nconcat< relu | conv 4 k1 >\n", collapse="none")
    assert "fontcolor" not in concat.split("fork_n_concat1__concat ->", 1)[1].split("\n")[0]


def test_a_top_level_combinator_chain_collapses_into_its_contents():
    text = "input 8x8x8\n" + "residual< conv 8 k3 p1; bn; relu >\n" * 12
    src = source(text)
    assert "label=\"residual< conv 8 · 3×3 p1 → bn → relu >\n8×8×8 → 8×8×8\n" in src
    assert len(drawn_nodes(src)) == 12 + 2


def test_a_folded_repeat_shows_the_range_of_what_its_index_changes():
    spec = ("input 8x8x8\nblock step(i) { conv 8 k1; dropout 0.1*i }\n"
            "repeat 3 as i { step i + 1 }\nrepeat 2 { conv 8 k1 }\n")
    graph = graph_of(spec)
    repeats = [g for g in graph.groups.values() if isinstance(g, RepeatGroup)]
    # the iterations' i are 1, 2 and 3: not `step(i=1) ×3`; a repeat whose iterations are
    # alike is written as they are
    assert [title(graph, g) for g in repeats] == ["step(i=1…3) ×3", "conv 8 · 1×1 ×2"]


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "googlenet", "resnet152"])
def test_expand_first_opens_one_instance_of_each_repeated_block_on_a_page(name):
    """`--expand first`, the default where the picture still fits a page, opens the first call
    of each block called more than once; `--expand none` opens nothing."""
    spec = SPECS[[s.stem for s in SPECS].index(name)]
    graph = graph_of(spec.read_text(), spec.name)
    opened = collapsed_groups(graph, "auto", ["first"])
    assert opened == collapsed_groups(graph, "auto") != collapsed_groups(graph, "auto", ["none"])
    nodes, ranks = drawn_size(graph, opened)
    assert nodes <= PAGE_NODES and ranks <= OPEN_RANKS, (nodes, ranks)
    src = to_dot(graph, [], DrawOptions()).source
    assert "fork_" in src  # a residual or the inception branches, drawn open
