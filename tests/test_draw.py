"""`archdsl draw`: structure of the dot source, real rendering through Graphviz, errors."""

import re
import shutil
from pathlib import Path

import pytest

from archdsl.draw import DrawOptions, to_dot
from archdsl.network import analyse_graph
from helpers import run_cli

SPECS = Path(__file__).resolve().parent.parent / "specs"


def dot_source(name, collapse="none", text=None, expand=None):
    text = text if text is not None else (SPECS / f"{name}.arch").read_text()
    _, graph, diagnostics = analyse_graph(text, f"{name}.arch")
    return to_dot(graph, diagnostics, DrawOptions(collapse=collapse, expand=expand)).source


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
    auto = dot_source("googlenet", collapse="auto", expand=["none"])
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


def expanded(name, *expand, collapse="auto"):
    _, graph, diagnostics = analyse_graph((SPECS / f"{name}.arch").read_text(), f"{name}.arch")
    return to_dot(graph, diagnostics, DrawOptions(collapse=collapse, expand=list(expand))).source


def test_expand_opens_one_call_a_repeat_or_the_first_call_of_each_block():
    """Issue 25: GoogLeNet's inception branches and a ResNet's residuals were drawn only by
    --collapse none, which draws everything."""
    one = expanded("googlenet", "inception1")
    assert [n for n in nodes(one) if label(one, n) == "concat"] == ["n_inception1__concat1__concat"]
    assert cluster_titles(one) == ["inception(c1=64, c3r=96, c3=128, c5r=16, c5=32, pp=32)"]
    assert len([b for b in nodes(one, r"block\d+") if "inception(" in label(one, b)]) == 8
    first = expanded("resnet18", "first")
    assert cluster_titles(first) == ["basic(c=64, s=1)"] and len(nodes(first, r"fork_\w+")) == 1
    assert len(nodes(first, r"block\d+")) == 7
    repeat = expanded("resnet152", "stage2.repeat1")
    labels = [label(repeat, b).split("\n")[0] for b in nodes(repeat, r"block\d+")]
    assert labels.count("bottleneck(c=128, s=1)") == 7
    every = expanded("resnet18", "basic", collapse="all")
    assert nodes(every, r"block\d+") == [] and len(nodes(every, r"fork_\w+")) == 8
    assert expanded("resnet18", "none") != dot_source("resnet18", collapse="auto")


def test_the_default_drawing_opens_one_instance_of_each_repeated_block_where_it_fits():
    """Issue 25: by default a ResNet shows one residual open and GoogLeNet one inception
    module's branches; where that would not fit a page (Inception-v3's 62 nodes), nothing is
    opened, as `--expand none` draws it."""
    resnet = dot_source("resnet18", collapse="auto")
    assert resnet == expanded("resnet18", "first")
    assert cluster_titles(resnet) == ["basic(c=64, s=1)"] and len(nodes(resnet, r"fork_\w+")) == 1
    googlenet = dot_source("googlenet", collapse="auto")
    assert len([n for n in nodes(googlenet) if label(googlenet, n) == "concat"]) == 1
    assert len(nodes(googlenet)) <= 60
    inception = dot_source("inception_v3", collapse="auto")
    assert inception == expanded("inception_v3", "none") != expanded("inception_v3", "first")


def test_expand_names_what_the_spec_has(tmp_path, capsys):
    code, _, err = run(capsys, "draw", SPECS / "googlenet.arch", "--expand", "incepton1", "-o",
                       tmp_path / "g.dot")
    assert code == 2 and "no block or group named `incepton1`; did you mean `inception1`?" in err
    code, out, _ = run(capsys, "draw", SPECS / "googlenet.arch", "--expand", "inception2,first",
                       "-o", tmp_path / "g.dot")
    assert code == 0 and out == f"wrote {tmp_path / 'g.dot'}\n"


def _x_positions(src: str) -> dict[str, float]:
    import subprocess

    plain = subprocess.run(["dot", "-Tplain"], input=src, capture_output=True, text=True,
                           check=True).stdout
    return {p[1]: float(p[2]) for p in (line.split() for line in plain.splitlines())
            if p[0] == "node"}


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot lays the picture out")
@pytest.mark.parametrize("expand", [[], ["first"]])
def test_branches_are_drawn_left_to_right_in_the_order_written(expand):
    """Issue 25: with --collapse none GoogLeNet's pool branch (plain layers beside branches
    of block calls) was drawn leftmost."""
    _, graph, _ = analyse_graph((SPECS / "googlenet.arch").read_text(), "googlenet.arch")
    src = to_dot(graph, [], DrawOptions(collapse="none" if not expand else "auto",
                                        expand=expand)).source
    x = _x_positions(src)
    forks = re.findall(r"^\t+(fork_\w+) -> (\w+) \[", src, re.M)
    heads: dict[str, list[str]] = {}
    for fork, head in forks:
        heads.setdefault(fork, []).append(head)
    assert heads and all(len(h) == 4 for h in heads.values())
    for fork, h in heads.items():
        assert [x[n] for n in h] == sorted(x[n] for n in h), fork


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot renders")
def test_dpi_sets_a_pngs_resolution(tmp_path, capsys):
    plain, sharp = tmp_path / "plain.png", tmp_path / "sharp.png"
    assert run(capsys, "draw", SPECS / "lenet5.arch", "-o", plain)[0] == 0
    assert run(capsys, "draw", SPECS / "lenet5.arch", "-o", sharp, "--dpi", "192")[0] == 0
    (w, h), (w2, h2) = _png_size(plain), _png_size(sharp)
    assert abs(w2 - 2 * w) <= 4 and abs(h2 - 2 * h) <= 4
    code, _, err = run(capsys, "draw", SPECS / "lenet5.arch", "-o", tmp_path / "l.svg",
                       "--dpi", "150")
    assert code == 2 and "--dpi sets a PNG's resolution; " in err
    code, _, err = run(capsys, "draw", SPECS / "lenet5.arch", "-o", plain, "--dpi", "5")
    assert code == 2 and "must be 10 to 1200, got 5" in err


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot renders")
def test_a_png_too_large_for_graphviz_is_a_clear_error(tmp_path, capsys):
    """Issue 25: resnet152 --collapse none gave a 520×32766 px PNG, and Graphviz's raw
    "graph is too large for cairo-renderer bitmaps" leaked through."""
    out = tmp_path / "r152.png"
    code, stdout, err = run(capsys, "draw", SPECS / "resnet152.arch", "--collapse", "none",
                            "-o", out)
    assert code == 1 and stdout == "" and not out.exists()
    assert "cairo" not in err and err.startswith("archdsl draw: error: the PNG would be ")
    assert "over the 32,767 px a side Graphviz draws" in err
    assert "-o NAME.svg" in err and "--dpi " in err and "--collapse all" in err
