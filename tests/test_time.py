"""`archdsl time`: every layer once, with check's MACs; the table, the JSON and the totals
agree; and the attribution itself, checked by counting work instead of timing it: a clock
that advances only when an instrumented layer runs must give each layer exactly its own
work, forward and backward, and a whole pass exactly the sum. No test reads a wall clock's
value beyond "more than nothing"."""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import archdsl
from archdsl.cli import main
from archdsl.cli.timing import add_time
from archdsl.timing import TOP, table, time_network, to_json

ROOT = Path(__file__).resolve().parent.parent

TINY = """arch tiny(num_classes=4)
input 3x16x16
conv 8 k3 p1 nobias; bn; relu
residual< conv 8 k3 p1; relu; conv 8 k3 p1 >
relu
concat< identity | conv 4 k1; relu | maxpool 3 s1 p1 >
relu
adaptiveavgpool 1; flatten
bn
linear num_classes
"""

# the input feeds two branches directly: neither conv (nor their concat) has an input that
# needs a gradient, so torch gives their backward passes no end of their own
FORKED_INPUT = """arch forked
input 3x8x8
concat< conv 4 k1 | conv 6 k3 p1 >
relu
flatten
linear 3
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.arch"
    path.write_text(TINY)
    return path


def run(argv, capsys):
    """`archdsl time ARGV...` through the CLI: (exit code, stdout, stderr)."""
    try:
        code = main(["time", *(str(a) for a in argv)])
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


QUICK = ["--batch-size", "2", "--repeat", "1", "--warmup", "0"]


# ----------------------------------------------------------------------------- counting work


class CountingClock:
    """A clock that stands still unless a layer does work: marks are nanoseconds of work."""

    def __init__(self):
        self.now = 0

    def mark(self):
        return self.now

    def seconds(self, start, end):
        return (end - start) / 1e9

    def wait(self):
        pass


class Tick(torch.autograd.Function):
    """Identity whose backward pass does `work` on the clock."""

    @staticmethod
    def forward(ctx, x, clock, work):
        ctx.clock, ctx.work = clock, work
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        ctx.clock.now += ctx.work
        return grad, None, None


def instrument(module, clock, forward_work, backward_work):
    """Make `module` advance `clock` by its work each time it runs, forward and backward."""
    inner = module.forward

    def forward(*args):
        clock.now += forward_work
        return Tick.apply(inner(*args), clock, backward_work)

    module.forward = forward


def counted(text, batch):
    """A network whose every layer (a merge through its combinator's module) does a known,
    distinct amount of work: MACs x batch nanoseconds forward for a conv or linear layer,
    1,000 + its index otherwise; backward twice the forward."""
    network = archdsl.loads(text)
    module = network.to_torch()
    modules = dict(module.named_modules())
    clock = CountingClock()
    work = {}
    for i, (record, node) in enumerate(
            (r, network.graph.layer(r["name"])) for r in network.layers()):
        path = network.graph.groups[node.merge.group].name if node.merge else record["name"]
        forward = record["macs"] * batch or 1000 + i
        work[record["name"]] = (forward, 2 * forward)
        instrument(modules[path], clock, forward, 2 * forward)
    return network, module, clock, work


@pytest.mark.parametrize("text", [TINY, FORKED_INPUT], ids=["tiny", "forked-input"])
def test_each_layer_gets_exactly_its_own_work(text):
    network, module, clock, work = counted(text, batch=3)
    timing = time_network(network, module=module, clock=clock, batch_size=3, warmup=1, repeat=2)
    assert [t.name for t in timing.layers] == list(work)
    for t in timing.layers:
        assert (t.forward * 1e9, t.backward * 1e9) == pytest.approx(work[t.name]), t.name
    forward, backward = (sum(w[i] for w in work.values()) / 1e9 for i in (0, 1))
    assert timing.sums() == pytest.approx((forward, backward))
    assert timing.whole == pytest.approx((forward, backward))  # the plain pass, alone
    assert timing.ratio() == pytest.approx(1.0)
    assert timing.overhead() == pytest.approx(0.0)


def test_achieved_flops_follow_the_work():
    # one MAC a nanosecond is 2 GFLOP/s forward, and backward does twice the work in twice
    # the time: 2 GFLOP/s again
    network, module, clock, work = counted(TINY, batch=2)
    doc = to_json(time_network(network, module=module, clock=clock, batch_size=2, warmup=0,
                               repeat=1))
    for layer in doc["layers"]:
        if layer["macs"]:
            assert layer["forward_gflops"] == pytest.approx(2.0)
            assert layer["backward_gflops"] == pytest.approx(2.0)
        else:
            assert layer["forward_gflops"] is None and layer["backward_gflops"] is None


def test_the_costliest_layers_are_ranked():
    network, module, clock, work = counted(TINY, batch=2)
    timing = time_network(network, module=module, clock=clock, batch_size=2, warmup=0, repeat=1)
    expected = sorted(work, key=lambda name: -sum(work[name]))[:TOP]
    assert [t.name for t in timing.top()] == expected
    assert [t.rank for t in timing.top()] == list(range(1, TOP + 1))
    assert all(t.rank is None for t in timing.layers if t.name not in expected)
    assert to_json(timing)["top"] == expected


def test_hooks_are_removed_and_in_place_activations_restored():
    network = archdsl.loads(TINY)
    module = network.to_torch()
    in_place = [name for name, m in module.named_modules() if getattr(m, "inplace", False)]
    assert in_place  # the compiled module does use in-place ReLUs
    time_network(network, module=module, batch_size=2, warmup=0, repeat=1)
    for name, m in module.named_modules():
        assert not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
                    or m._backward_pre_hooks), name
        assert getattr(m, "inplace", False) == (name in in_place)
    assert all(p.grad is None for p in module.parameters())


# ----------------------------------------------------------------------------- the command


def test_every_layer_once_with_checks_macs_and_positive_times(tiny, capsys):
    code, out, err = run([tiny, *QUICK, "--format", "json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    checked = archdsl.load(tiny).layers()
    assert [(x["name"], x["op"], x["macs"]) for x in doc["layers"]] == \
        [(x["name"], x["op"], x["macs"]) for x in checked]
    for layer in doc["layers"]:
        assert layer["forward_ms"] > 0 and layer["backward_ms"] > 0, layer["name"]
        assert layer["total_ms"] == pytest.approx(layer["forward_ms"] + layer["backward_ms"])
    assert doc["total"]["macs"] == archdsl.load(tiny).macs
    assert (doc["device"], doc["batch_size"], doc["repeat"], doc["warmup"]) == ("cpu", 2, 1, 0)


def test_the_total_row_is_the_sum(tiny, capsys):
    code, out, _ = run([tiny, *QUICK, "--format", "json"], capsys)
    doc = json.loads(out)
    layers = doc["layers"]
    for key in ("forward_ms", "backward_ms", "total_ms"):
        assert doc["total"][key] == pytest.approx(sum(x[key] for x in layers))
    assert sum(x["share"] for x in layers) == pytest.approx(1.0)
    assert doc["ratio"] == pytest.approx(doc["total"]["total_ms"] / doc["whole"]["total_ms"])
    assert doc["hook_overhead_ms"] == pytest.approx(
        doc["hooked"]["total_ms"] - doc["whole"]["total_ms"])
    assert doc["adds_up"] == (abs(doc["ratio"] - 1) <= 0.1)


def _table_rows(text):
    """{first column: the other columns} of the table's rows, between the header and the
    summary lines."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("layer "))
    rows = {}
    for line in lines[start + 2:]:
        if not line.strip():
            break
        if set(line) == {"-"}:
            continue
        cells = re.split(r"\s{2,}", line.strip())
        assert cells[0] not in rows, f"{cells[0]} appears twice"
        rows[cells[0]] = cells[1:]
    return rows


def _number(cell):
    return float(cell.replace(",", "").rstrip("%"))


def test_the_table_and_the_json_say_the_same():
    network = archdsl.loads(TINY)
    timing = time_network(network, batch_size=2, warmup=0, repeat=1)
    doc, rows = to_json(timing), _table_rows(table(timing, wide=True))
    for layer in doc["layers"]:
        op, macs, fwd, bwd, total, share, *rest = rows.pop(layer["name"])
        assert (op, _number(macs)) == (layer["op"], layer["macs"])
        for cell, value in ((fwd, layer["forward_ms"]), (bwd, layer["backward_ms"]),
                            (total, layer["total_ms"])):
            # the table rounds to 3 decimals: at most half a unit off (0.0005), plus float error
            assert _number(cell) == pytest.approx(value, abs=0.00055)
        assert _number(share) == pytest.approx(100 * layer["share"], abs=0.05)
        top = rest[-1] if rest and rest[-1].startswith("#") else None
        assert top == (f"#{layer['rank']}" if layer["rank"] else None)
    total = rows.pop("total (sum of layers)")
    assert _number(total[0]) == doc["total"]["macs"]
    cells = [_number(c) for c in total[1:4]]
    assert cells == pytest.approx([doc["total"][k] for k in ("forward_ms", "backward_ms",
                                                              "total_ms")], abs=0.0005)
    # the total row is the sum of the rows as printed, up to their rounding
    printed = [_number(c) for c in total[1:4]]
    n = len(doc["layers"])
    for i, key in enumerate(("forward_ms", "backward_ms", "total_ms")):
        assert printed[i] == pytest.approx(sum(round(x[key], 3) for x in doc["layers"]),
                                           abs=0.0005 * (n + 1))
    whole = [_number(c) for c in rows.pop("whole pass, no hooks")]
    assert whole == pytest.approx([doc["whole"][k] for k in ("forward_ms", "backward_ms",
                                                              "total_ms")], abs=0.0005)
    assert _number(rows.pop("layers / whole")[-1]) == pytest.approx(doc["ratio"], abs=0.0005)
    assert rows == {}
    assert "costliest: " + ", ".join(f"#{i} {name}" for i, name in enumerate(doc["top"], 1)) \
        .split(",")[0] in table(timing, wide=True)


def test_the_table_lists_every_layer_once(tiny, capsys):
    code, out, err = run([tiny, *QUICK], capsys)
    assert code == 0, err
    rows = _table_rows(out)
    names = [x["name"] for x in archdsl.load(tiny).layers()]
    assert list(rows)[:len(names)] == names
    assert out.startswith(f"tiny: 3x16x16 -> 4   ({tiny})\nbatch 2 on cpu, ")
    assert re.search(r"^costliest: #1 \S+ [0-9.]+%", out, re.M)
    assert re.search(r"^hooks: a hooked pass took [0-9.,]+ ms (more|less) than a plain one", out,
                     re.M)


def test_set_and_input_reach_the_network(tiny, capsys):
    code, out, err = run([tiny, *QUICK, "--set", "num_classes=7", "--input", "3x12x12",
                          "--format", "json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["input"], doc["output"]) == ([3, 12, 12], [7])
    assert doc["total"]["macs"] == archdsl.load(tiny, input_shape=(3, 12, 12),
                                                num_classes=7).macs


def test_a_network_without_parameters_has_no_backward_pass(tmp_path, capsys):
    path = tmp_path / "pool.arch"
    path.write_text("input 3x8x8\nmaxpool 2\nflatten\n")
    code, out, err = run([path, *QUICK, "--format", "json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert [x["backward_ms"] for x in doc["layers"]] == [0.0, 0.0]
    assert all(x["forward_ms"] > 0 for x in doc["layers"])


def test_the_device_option(tiny, capsys):
    # on a machine with CUDA the same command times on the GPU; without, it says why not
    code, out, err = run([tiny, *QUICK, "--device", "cuda", "--format", "json"], capsys)
    if torch.cuda.is_available():
        assert code == 0, err
        doc = json.loads(out)
        assert doc["device"] == "cuda" and doc["threads"] is None
        assert all(x["forward_ms"] > 0 for x in doc["layers"])
    else:
        assert code == 2
        assert err.startswith("archdsl time: error: --device cuda: torch sees no CUDA device")
        assert "use --device cpu" in err and out == ""


# ----------------------------------------------------------------------------- refusals


def test_a_spec_with_errors_is_located_and_not_timed(tmp_path, capsys):
    path = tmp_path / "bad.arch"
    path.write_text("input 3x8x8\nconv 4 k9\nflatten\nlinear 2\n")
    code, out, err = run([path], capsys)
    assert code == 1 and out == ""
    assert f"{path}:2:" in err and "error[" in err
    assert err.rstrip().endswith(f"{path}: not timed: the spec has errors")
    assert "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["{missing}"], "cannot read {missing}"),
    (["{tiny}", "--input", "3x"], "--input takes CxHxW"),
    (["{tiny}", "--set", "nonsense"], "--set takes NAME=VALUE"),
])
def test_usage_errors_exit_2_with_one_line(argv, message, tiny, tmp_path, capsys):
    names = {"tiny": tiny, "missing": tmp_path / "missing.arch"}
    code, out, err = run([a.format(**names) for a in argv], capsys)
    assert code == 2 and out == ""
    assert err.startswith("archdsl time: error: " + message.format(**names))
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("option, value", [("--batch-size", "0"), ("--repeat", "0"),
                                           ("--warmup", "-1"), ("--batch-size", "many"),
                                           ("--device", "tpu")])
def test_option_values_are_checked(option, value, tiny, capsys):
    code, out, err = run([tiny, option, value], capsys)
    assert code == 2 and out == ""
    assert f"archdsl time: error: argument {option}" in err


def test_a_failure_while_running_is_one_line(tmp_path, capsys):
    # batch norm over features cannot train on a batch of one: torch refuses, archdsl says so
    path = tmp_path / "bn.arch"
    path.write_text("input 4\nlinear 3\nbn\n")
    code, out, err = run([path, "--batch-size", "1", "--repeat", "1", "--warmup", "0"], capsys)
    assert code == 1 and out == ""
    assert err.startswith("archdsl time: error: the network failed while timed: Expected more "
                          "than 1 value per channel")
    assert len(err.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- wiring


def test_add_time_declares_the_command_on_any_parser(tiny, capsys):
    parser = argparse.ArgumentParser(prog="archdsl")
    add_time(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["time", str(tiny), *QUICK, "--format", "json"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["arch"] == "tiny"


def test_python_dash_m_runs_the_command(tiny):
    proc = subprocess.run([sys.executable, "-m", "archdsl", "time", str(tiny), *QUICK],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("tiny: 3x16x16 -> 4")
    assert "sum of layers" in proc.stdout


@pytest.mark.parametrize("argv, one_line", [
    (["{missing}"], "archdsl time: error: cannot read {missing}: No such file or directory"),
    (["{tiny}", "--batch-size", "0"], "archdsl time: error: argument --batch-size: must be at "
                                      "least 1, got 0 (see archdsl time --help)"),
    (["{tiny}", "--set", "nonsense"], None),
])
def test_a_usage_mistake_in_time_is_one_line_and_exit_2(argv, one_line, tiny, tmp_path):
    """`archdsl time` (run as a separate process): one line of error and exit 2."""
    names = {"tiny": tiny, "missing": tmp_path / "missing.arch"}
    args = [a.format(**names) for a in argv]
    alone = subprocess.run([sys.executable, "-m", "archdsl", "time", *args], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert alone.returncode == 2 and alone.stdout == ""
    assert len(alone.stderr.splitlines()) == 1 and alone.stderr.startswith("archdsl time: error:")
    if one_line:
        assert alone.stderr == one_line.format(**names) + "\n"


def test_the_spec_may_come_from_standard_input(monkeypatch, capsys):
    import io

    import archdsl.command_values as values

    monkeypatch.setattr(values, "_stdin_text", [])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(TINY.encode())))
    code, out, err = run(["-", *QUICK, "--format", "json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["arch"], doc["file"]) == ("tiny", "<stdin>")


def _made_up_timing(spec: str, overhead_ms: float) -> "Timing":
    """A Timing of every layer of `spec` with made-up times (no clock read), whose hooked
    pass took `overhead_ms` more than the plain one."""
    from archdsl.timing import LayerTime, Timing, _rank

    net = archdsl.load(ROOT / "specs" / spec)
    layers = [LayerTime(r["name"], r["op"], r["line"], r["macs"], 0.0123 * (i % 7 + 1),
                        0.0234 * (i % 5 + 1)) for i, r in enumerate(net.layers())]
    _rank(layers)
    whole = (sum(t.forward for t in layers), sum(t.backward for t in layers))
    hooked = (whole[0] + overhead_ms / 2e3, whole[1] + overhead_ms / 2e3)
    return Timing(net.name, net.file, net.input_shape, net.output_shape, "cpu", 2, 8, 2, 5,
                  layers, whole, hooked, notes=["4 in-place activation(s) ran out of place "
                                                "while timed (backward hooks cannot follow a "
                                                "tensor overwritten in place), in the plain "
                                                "passes too"])


def test_the_table_fits_80_columns_and_wide_shows_every_column():
    """Issue 25: `archdsl time specs/resnet18.arch` printed 138 columns."""
    timing = _made_up_timing("resnet18.arch", 12.0)
    narrow = table(timing)
    assert max(len(line) for line in narrow.splitlines()) <= 80
    assert narrow.splitlines()[2].split() == ["layer", "MACs", "fwd", "ms", "bwd", "ms",
                                              "total", "ms", "share", "top"]
    rows = _table_rows(narrow)
    assert "basic1.res…body.conv1" in " ".join(rows) or any("…" in name for name in rows)
    assert len(rows) == len(timing.layers) + 3
    wide = table(timing, wide=True)
    assert "basic1.residual1.body.conv1" in wide and "fwd GFLOP/s" in wide
    assert max(len(line) for line in wide.splitlines()) > 80


def test_a_hooked_pass_quicker_than_a_plain_one_is_called_noise():
    """Issue 25: "a hooked pass took 671 ms less than a plain one (-14.5%); a layer's own
    time leaves most of it out" made no sense when negative."""
    quicker = table(_made_up_timing("lenet5.arch", -671.0))
    said = " ".join(line.strip() for line in quicker.split("hooks: ")[1].splitlines()[:3])
    assert said.startswith("a hooked pass took 671.000 ms less than a plain one (")
    assert "within the noise" in said and "leaves most of it out" not in said
    slower = " ".join(line.strip() for line in table(_made_up_timing("lenet5.arch", 5.0))
                      .splitlines())
    assert "5.000 ms more than a plain one (" in slower and "the hooks' own cost" in slower
