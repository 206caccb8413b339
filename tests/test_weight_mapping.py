"""Mapping another network's tensors onto a spec's (`--init SOURCE`, archdsl.transfer_weights):
by structure and names, never by a file's key order; what cannot be mapped safely is refused
in one line. Each test carries a red-team reproducer of issue 26 (items 1, 12, 13 and 18)."""

from pathlib import Path

import pytest
import torch
from torch import nn

import archdsl
from archdsl.train import TrainError
from archdsl.train.transfer import initialise_from
from helpers import image_folder, run_cli

CONV_BN_LINEAR = """arch small(num_classes=4)
input 3x8x8
conv 8 k3 p1; bn; relu
adaptiveavgpool 1; flatten; linear num_classes
"""


def spec(folder: Path, text: str = CONV_BN_LINEAR) -> Path:
    path = folder / "small.arch"
    path.write_text(text)
    return path


def reference(path: Path) -> dict:
    """The spec's network with every tensor told apart: batch norm's weight, bias and running
    statistics each in a range of its own, num_batches_tracked not zero."""
    torch.manual_seed(0)
    model = archdsl.load(path).to_torch()
    with torch.no_grad():
        bn = model.bn1
        bn.weight.uniform_(2, 3), bn.bias.uniform_(-3, -2)
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
        bn.num_batches_tracked.fill_(7)
    return model.state_dict()


def loaded(path: Path, source: Path) -> dict:
    """The spec's weights after --init `source`."""
    network = archdsl.load(path)
    model = network.to_torch()
    initialise_from(model, network, str(source), path, {})
    return model.state_dict()


def assert_same(got: dict, expected: dict) -> None:
    assert list(got) == list(expected)
    for key in expected:
        assert torch.equal(got[key], expected[key]), key


@pytest.mark.parametrize("names", ["archdsl", "foreign"])
def test_init_from_safetensors_loads_what_torch_save_of_the_same_tensors_loads(tmp_path, names):
    """Item 1: a .safetensors file keeps its keys alphabetically, so bn1.weight took the bias,
    the bias running_mean, … ("loaded 8 tensors"; 7.3% validation accuracy against 65.9% from
    the same tensors as a .pth). With other names the modules themselves come alphabetically
    (head before stem)."""
    from safetensors.torch import save_file

    path = spec(tmp_path)
    expected = reference(path)
    rename = {"conv1": "stem.conv", "bn1": "stem.norm", "linear1": "head.fc"}
    theirs = {k if names == "archdsl" else ".".join([rename[k.split(".")[0]], k.split(".")[1]]):
              v for k, v in expected.items()}
    torch.save(theirs, tmp_path / "w.pth")
    save_file({k: v.contiguous() for k, v in theirs.items()}, tmp_path / "w.safetensors")
    assert_same(loaded(path, tmp_path / "w.pth"), expected)
    assert_same(loaded(path, tmp_path / "w.safetensors"), expected)


@pytest.mark.parametrize("wrapper", ["state_dict", "model_state_dict", "model"])
def test_init_reads_a_state_dict_held_under_a_training_scripts_key(tmp_path, wrapper):
    """Item 13: `{"state_dict": …, "epoch": 3}`, which docs/training.md says works, was
    refused: "holds no weights"."""
    path = spec(tmp_path)
    expected = reference(path)
    torch.save({wrapper: expected, "epoch": 3, "best_accuracy": 0.9}, tmp_path / "w.pth")
    assert_same(loaded(path, tmp_path / "w.pth"), expected)


def init_error(tmp_path, capsys, state: dict) -> str:
    """The one line `archdsl train … --init w.pth` says for `state`, exit 1."""
    path = spec(tmp_path)
    torch.save(state, tmp_path / "w.pth")
    data = image_folder(tmp_path / "data", per_class=2)
    code, _, err = run_cli(capsys, "train", path, data, "--epochs", "1", "--quiet",
                           "--out", tmp_path / "run", "--init", tmp_path / "w.pth")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    return err


def test_init_refuses_a_sparse_tensor_naming_it(tmp_path, capsys):
    """Item 12: a sparse tensor was an internal error (NotImplementedError from torch's
    isfinite). Refused rather than made dense: the file's claimed shape is only compared after
    reading, and a sparse 100000x100000 would be 40 GB dense."""
    state = reference(spec(tmp_path))
    state["conv1.weight"] = state["conv1.weight"].to_sparse()
    err = init_error(tmp_path, capsys, state)
    assert "--init: cannot use the checkpoint" in err
    assert "its conv1.weight is stored sparse_coo, not dense" in err and "to_dense()" in err


@pytest.mark.parametrize("key, dtype, kind", [("bn1.weight", torch.int64, "integer"),
                                              ("bn1.bias", torch.bool, "boolean"),
                                              ("conv1.weight", torch.complex64, "complex")])
def test_init_refuses_integer_boolean_and_complex_values_where_the_spec_holds_floats(
        tmp_path, capsys, key, dtype, kind):
    """Item 18: they loaded silently (an integer bn1.weight of zeros and ones; complex values
    cast with their imaginary part dropped)."""
    state = reference(spec(tmp_path))
    state[key] = state[key].to(dtype)
    err = init_error(tmp_path, capsys, state)
    assert f"--init {tmp_path / 'w.pth'}: its {key} holds {kind} values " \
           f"({str(dtype).replace('torch.', '')}) where the spec's {key} holds floating-point " \
           "ones" in err


def test_init_keeps_num_batches_tracked_an_integer_that_loads(tmp_path):
    path = spec(tmp_path)
    expected = reference(path)
    torch.save(expected, tmp_path / "w.pth")
    got = loaded(path, tmp_path / "w.pth")
    assert got["bn1.num_batches_tracked"].dtype == torch.int64
    assert got["bn1.num_batches_tracked"].item() == 7


class ScaledConv(nn.Module):
    """A conv that registers a per-channel parameter of its bias's shape before its bias."""

    def __init__(self, extra=("scale", "bias")):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(8, 3, 3, 3))
        for name in extra:
            setattr(self, name, nn.Parameter(torch.randn(8)))
        self.names = extra

    def forward(self, x):
        return nn.functional.conv2d(x, self.weight, getattr(self, "bias", None), padding=1)


class Reference(nn.Module):
    def __init__(self, extra=("scale", "bias")):
        super().__init__()
        self.conv = ScaledConv(extra)
        self.bn = nn.BatchNorm2d(8)
        with torch.no_grad():
            self.bn.bias.uniform_(-3, -2)  # a bias that, as a running_var, would give NaN
            self.bn.running_mean.uniform_(-2, -1)
            self.bn.running_var.uniform_(0.5, 2)


PRELU_SPEC = "input 3x8x8\nconv 8 k3 p1; bn; prelu perchannel\n"


def test_transfer_weights_pairs_buffers_with_buffers_and_a_module_by_names():
    """Item 1, transfer_weights: pairing parameters and buffers alike by order within a shape,
    the reference's extra `scale` moved every later tensor of shape 8 by one, so bn1's
    running_mean took bn's bias and its running_var bn's running_mean (NaN outputs)."""
    ref = Reference()
    ours = archdsl.loads(PRELU_SPEC).to_torch()
    archdsl.transfer_weights(ref, ours)
    for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(getattr(ours.bn1, name), getattr(ref.bn, name)), name
    assert torch.equal(ours.conv1.bias, ref.conv.bias)  # by name within the conv
    assert torch.equal(ours.prelu1.weight, ref.conv.scale)  # the one tensor of its shape left
    ours.eval()
    assert torch.isfinite(ours(torch.randn(2, 3, 8, 8))).all()


def test_transfer_weights_refuses_tensors_that_no_name_tells_apart():
    ref = Reference(extra=("scale", "shift"))  # neither is a bias: which is conv1's?
    ours = archdsl.loads(PRELU_SPEC).to_torch()
    with pytest.raises(ValueError, match=r"^source conv\.scale and conv\.shift \(parameters of "
                                         r"shape \(8,\)\) could each go to destination "
                                         r"conv1\.bias or prelu1\.weight: one module holds"):
        archdsl.transfer_weights(ref, ours)


def test_transfer_weights_keeps_order_within_a_shape_and_names_a_real_misfit():
    a = nn.Sequential(nn.Linear(3, 5), nn.Conv2d(4, 4, 1))  # no shape in common
    b = nn.Sequential(nn.Conv2d(4, 4, 1), nn.Linear(3, 5))
    archdsl.transfer_weights(a, b)
    assert torch.equal(b[0].weight, a[1].weight) and torch.equal(b[1].weight, a[0].weight)
    assert torch.equal(b[0].bias, a[1].bias) and torch.equal(b[1].bias, a[0].bias)
    c = nn.Sequential(nn.Conv2d(4, 4, 1), nn.Linear(3, 6))
    with pytest.raises(ValueError, match=r"tensor #0 does not fit: source 0.weight"):
        archdsl.transfer_weights(a, c)


def test_init_refuses_tensors_that_no_name_tells_apart(tmp_path, capsys):
    state = Reference(extra=("scale", "shift")).state_dict()
    path = spec(tmp_path, "arch small(num_classes=2)\n" + PRELU_SPEC +
                "adaptiveavgpool 1; flatten; linear num_classes\n")
    torch.save(state, tmp_path / "w.pth")
    data = image_folder(tmp_path / "data", per_class=2)
    code, _, err = run_cli(capsys, "train", path, data, "--epochs", "1", "--quiet",
                           "--init", tmp_path / "w.pth")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "its conv.scale and conv.shift (shape 8) could each be the spec's conv1.bias or " \
           "prelu1.weight: one module holds several and no name says which is which" in err


def test_transfer_weights_never_copies_a_parameter_into_a_buffer():
    src, dst = nn.Module(), nn.Module()
    src.register_parameter("scale", nn.Parameter(torch.ones(8)))
    dst.register_buffer("scale", torch.zeros(8))
    with pytest.raises(ValueError, match=r"without a partner is destination scale \(8,\): the "
                                         r"other side's tensors of that shape are parameters"):
        archdsl.transfer_weights(src, dst)
    assert not dst.scale.any()


def test_transfer_weights_refuses_integer_values_for_floating_point_ones():
    src, dst = nn.Module(), nn.Module()
    src.register_buffer("count", torch.arange(8))
    dst.register_buffer("count", torch.zeros(8))
    with pytest.raises(ValueError, match=r"source count holds torch.int64 values, destination "
                                         r"count torch.float32: integer values cannot stand for "
                                         r"floating-point ones"):
        archdsl.transfer_weights(src, dst)


@pytest.mark.parametrize("payload, named", [("system", "posix.system"),
                                             ("namespace", "argparse.Namespace")])
def test_a_refused_pickle_names_the_global_it_asked_for(tmp_path, payload, named):
    """Issue 26, item 16: a pickle asking for a blocked module's function showed torch's "In
    PyTorch 2.6, we changed the default…" instead of naming what it asked for, as the docs
    promise; nothing in it runs."""
    import argparse
    import os

    from archdsl.checkpoints import CheckpointError, read_state

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    extra = Payload() if payload == "system" else argparse.Namespace(a=1)
    torch.save({"w": torch.zeros(2), "x": extra}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError) as err:
        read_state(tmp_path / "evil.pth")
    message = str(err.value)
    assert f"it asks for {named}, which could run code, so it was refused" in message
    assert "PyTorch 2.6" not in message and not (tmp_path / "ran").exists()
