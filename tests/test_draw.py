"""`archdsl draw`: structure of the dot source, real rendering through Graphviz, errors."""

import re
import shutil
from pathlib import Path

from archdsl.draw import DrawOptions, to_dot
from archdsl.network import analyse_graph
from helpers import run_cli

SPECS = Path(__file__).resolve().parent.parent / "specs"


def dot_source(name, collapse="none", text=None):
    text = text if text is not None else (SPECS / f"{name}.arch").read_text()
    _, graph, diagnostics = analyse_graph(text, f"{name}.arch")
    return to_dot(graph, diagnostics, DrawOptions(collapse=collapse)).source


def nodes(src, prefix=r"n_\w+|fork_\w+|block\d+|output"):
    return re.findall(rf"^\t+({prefix}) \[", src, re.M)


def edges(src):
    return [e for e in re.findall(r"^\t+(\w+) -> (\w+)", src, re.M) if not e[0].startswith("legend")]


def label(src, node_id):
    found = re.search(rf"^\t+{node_id} \[label=(\"([^\"]*)\"|[^ \]]+)", src, re.M)
    return found.group(2) if found.group(2) is not None else found.group(1)


def cluster_titles(src):
    """Each cluster's title (a text node beside its first node, or its label), in order."""
    return [t.strip('"') for t in re.findall(r'^\t+title_\d+ \[label=("[^"]*"|\S+) ', src, re.M)]


def test_lenet5_is_a_chain_with_shapes_on_every_edge():
    src = dot_source("lenet5")
    assert len(nodes(src)) == 12 + 2  # twelve layers, the input and the output
    assert len(edges(src)) == 13
    assert label(src, "n_input") == "input\n1×32×32"
    assert label(src, "n_conv1") == "conv 6 · 5×5\n156 params"
    assert label(src, "n_maxpool1") == "maxpool 2×2 /2"
    assert label(src, "output") == "output\n10"
    assert 'n_conv1 -> n_relu1 [label=" 6×28×28"]' in src
    assert "subgraph cluster_" not in src.replace("cluster_legend", "")


def test_alexnet_labels_read_like_the_paper():
    src = dot_source("alexnet")
    assert len(nodes(src)) == 22 + 2 and len(edges(src)) == 23
    assert label(src, "n_conv1") == "conv 64 · 11×11 /4 p2\n23.3k params"
    assert label(src, "n_maxpool1") == "maxpool 3×3 /2"
    assert label(src, "n_linear1") == "linear 4096\n37.75M params"
    assert 'n_conv1 -> n_relu1 [label=" 64×55×55"]' in src


def test_resnet18_residuals_fork_and_merge_inside_block_clusters():
    src = dot_source("resnet18")
    merges = [n for n in nodes(src, r"n_\w+") if n.endswith("residual1__add")]
    assert len(merges) == 8 and all(label(src, m) == "⊕" for m in merges)
    assert len(nodes(src, r"fork_\w+")) == 8
    assert len(re.findall(r"subgraph cluster_\d+", src)) == 8
    assert "basic(c=128, s=2)" in cluster_titles(src)
    inserted = [n for n in nodes(src) if "shortcut" in n]
    assert len(inserted) == 6  # three projections: conv and bn each
    assert all("(inserted)" in label(src, n) for n in inserted)
    # the identity shortcut leaves from the fork point straight to the merge
    assert "fork_n_basic1__residual1__add -> n_basic1__residual1__add" in src


def test_resnet18_collapsed_blocks_are_single_nodes():
    src = dot_source("resnet18", collapse="all")
    blocks = nodes(src, r"block\d+")
    assert len(blocks) == 8 and len(nodes(src)) == 4 + 8 + 3 + 2
    first = label(src, blocks[0])
    assert first == "basic(c=64, s=1)\n64×56×56 → 64×56×56\n74.0k params"
    assert "cluster_" not in src.replace("cluster_legend", "")


def test_googlenet_concat_nodes_and_automatic_collapsing():
    src = dot_source("googlenet")
    concats = [n for n in nodes(src) if label(src, n) == "concat"]
    assert len(concats) == 9  # nine inception modules
    assert len(nodes(src, r"fork_\w+")) == 9
    auto = dot_source("googlenet", collapse="auto")
    assert len(nodes(auto)) <= 60 < len(nodes(src))
    titles = [label(auto, b).split("\n")[0] for b in nodes(auto, r"block\d+")]
    assert titles[:3] == ["basic(c=64, k=7, s=2, p=3)", "basic(c=64, k=1, s=1, p=0)",
                          "basic(c=192, k=3, s=1, p=1)"]
    assert titles[3] == "inception(c1=64, c3r=96, c3=128, c5r=16, c5=32, pp=32)"
    assert len(titles) == 3 + 9
    named = dot_source("googlenet", collapse=["inception"])
    assert len(nodes(named, r"block\d+")) == 9


def test_colours_legend_and_tooltips():
    src = dot_source("lenet5")
    assert re.search(r"n_conv1 \[[^\]]*fillcolor=\"#a4c2f4\"", src)
    assert '<td bgcolor="#a4c2f4" border="1" style="rounded"><font point-size="8">convolution' \
        in src
    assert 'tooltip="lenet5.arch:6:1: conv 6 k5"' in src


def test_errors_are_drawn_red_with_the_message():
    src = dot_source("bad", text="input 3x8x8\nconv 8 k3\nconv 8 k9\nrelu\n")
    assert re.search(r'n_conv2 \[[^\]]*color="#cc0000"', src)
    assert "kernel is larger than" in label(src, "n_conv2")
    assert "(not checked)" in label(src, "n_relu1")
    assert label(src, "n_conv1") == "conv 8 · 3×3\n224 params"


run = run_cli


def test_real_svg_png_and_pdf_through_dot(tmp_path, capsys):
    svg, png, pdf = tmp_path / "r.svg", tmp_path / "r.png", tmp_path / "r.pdf"
    for out in (svg, png, pdf):
        code, stdout, _ = run(capsys, "draw", SPECS / "resnet18.arch", "-o", out)
        assert code == 0 and f"wrote {out}" in stdout
    text = svg.read_text()
    assert "<svg" in text and "archdsl draw" in text
    assert "<title>" in text and "resnet18.arch:" in text  # tooltips carry the source position
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_default_output_is_the_spec_name_in_the_current_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "draw", SPECS / "lenet5.arch", "-o", "lenet5.dot")[0] == 0
    assert (tmp_path / "lenet5.dot").read_text().startswith("// archdsl draw")
    monkeypatch.setattr(shutil, "which", lambda name: None)  # no Graphviz at all
    code, _, err = run(capsys, "draw", SPECS / "lenet5.arch")
    assert code == 2 and "apt-get install graphviz" in err
    assert not (tmp_path / "lenet5.svg").exists()
    assert run(capsys, "draw", SPECS / "lenet5.arch", "-o", "again.dot")[0] == 0  # dot needs none


def test_a_spec_with_errors_is_drawn_and_exits_1(tmp_path, capsys):
    bad = tmp_path / "bad.arch"
    bad.write_text("input 3x8x8\nconv 8 k3\nconv 8 k9\n")
    code, out, err = run(capsys, "draw", bad, "-o", tmp_path / "bad.dot")
    assert code == 1 and "errors marked in red" in out and "E-KERNEL" in err
    assert "kernel is larger" in (tmp_path / "bad.dot").read_text()
    broken = tmp_path / "broken.arch"
    broken.write_text("input 3x8x8\nconv 8 k3,\n")
    code, _, err = run(capsys, "draw", broken, "-o", tmp_path / "broken.dot")
    assert code == 1 and "E-SYNTAX" in err and not (tmp_path / "broken.dot").exists()


def test_usage_errors_and_files_that_are_not_ours(tmp_path, capsys):
    code, _, err = run(capsys, "draw", SPECS / "lenet5.arch", "-o", tmp_path / "x.jpg")
    assert code == 2 and ".svg, .png, .pdf or .dot" in err
    mine = tmp_path / "notes.dot"
    mine.write_text("my own notes\n")
    code, _, err = run(capsys, "draw", SPECS / "lenet5.arch", "-o", mine)
    assert code == 2 and "--force" in err and mine.read_text() == "my own notes\n"
    assert run(capsys, "draw", SPECS / "lenet5.arch", "-o", mine, "--force")[0] == 0
    assert run(capsys, "draw", SPECS / "lenet5.arch", "-o", mine)[0] == 0  # ours now


def test_a_collapsed_combinator_holding_a_layer_with_errors_names_it():
    # found by the fuzzer: the summary of a folded combinator described every layer from its
    # arguments, and an invalid `linear` has none (AttributeError: out)
    text = ("input 3x8x8\nrelu\nrelu\nidentity\nrelu\nresidual< relu\nrelu\nrelu | linear nobias k1 >\n"
            "residual< residual< silu | relu >\nrelu | conv undefined k1 undefined k1 undefined "
            "nobias\nrelu\nmul< identity | conv undefined k1\nrelu\nresidual< relu\n"
            "relu | linear > > >\n")
    _, graph, diagnostics = analyse_graph(text, "fuzz.arch")
    source = to_dot(graph, diagnostics).source
    assert "residual< relu → relu | linear >" in source


def test_a_huge_collapse_name_is_not_echoed_whole(tmp_path, capsys):
    """Issue 26, item 17: `draw --collapse NAME` echoed a 100 KB name twice."""
    from helpers import run_cli

    spec = tmp_path / "s.arch"
    spec.write_text("input 3x8x8\nblock b { conv 4 k1 }\nb\n")
    code, _, err = run_cli(capsys, "draw", spec, "--collapse", "x" * 100_000, "-o",
                           tmp_path / "s.svg")
    assert code == 2 and len(err) < 400 and "calls no block named `xxx" in err
