"""`archdsl train`'s options come from TrainConfig's declarations: every value is checked
against its range as the command line is read (one line, exit 2), and a run leaves the
process's torch settings as it found them."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from archdsl.cli import build_parser, main
from helpers import image_folder, tiny_spec
from archdsl.train.config import LAUNCH_FLAGS, LaunchConfig, TrainConfig, options

SPEC = str(Path(__file__).resolve().parent.parent / "specs" / "lenet5.arch")


def usage_error(capsys, *argv) -> str:
    """The one line an out-of-range value gets (exit 2, no traceback)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (code, out, err)
    assert err.count("\n") == 1 and "Traceback" not in err and "internal error" not in err, err
    return err.strip()


@pytest.mark.parametrize("option, value, message", [
    ("--lr", "-1", "--lr must be above 0, got -1"),
    ("--lr", "nan", "--lr must be a finite number, got nan"),
    ("--lr", "inf", "--lr must be a finite number, got inf"),
    ("--weight-decay", "nan", "--weight-decay must be a finite number, got nan"),
    ("--momentum", "-5", "--momentum must be from 0 to 1, got -5"),
    ("--label-smoothing", "2", "--label-smoothing must be from 0 to 1, got 2"),
    ("--warmup-epochs", "nan", "--warmup-epochs must be a finite number, got nan"),
    ("--seed", "-1", "--seed must be from 0 to 4294967295, got -1"),
    ("--seed", "99999999999999999999", "--seed must be from 0 to 4294967295, got "
                                       "99999999999999999999"),
    ("--epochs", "0", "--epochs must be at least 1, got 0"),
    ("--nproc-per-node", "0", "--nproc-per-node must be at least 1, got 0"),
    ("--device", "tpu", "unknown device 'tpu': auto, cpu, cuda, cuda:N or mps"),
    ("--optimizer", "lamb", "unknown --optimizer 'lamb': sgd or adamw"),
    ("--augment", "trivial", "unknown --augment 'trivial'; did you mean trivialaugment? (basic, "
                             "trivialaugment, randaugment, autoaugment or none)"),
    ("--sampler", "balance", "unknown --sampler 'balance'; did you mean balanced? (shuffle or "
                             "balanced)"),
])
def test_a_value_out_of_range_is_a_usage_error_in_one_line(capsys, option, value, message):
    assert usage_error(capsys, "train", SPEC, "digits", option, value) == \
        f"archdsl train: error: {message}"


def test_every_float_option_refuses_non_finite_values(capsys):
    floats = [opt.flag for _, opt, _ in options(TrainConfig) if opt.type is float]
    assert {"--lr", "--gamma", "--val-split", "--clip-grad"} <= set(floats)
    for flag in floats:
        for value in ("nan", "inf", "-inf"):
            assert "must be a finite number" in usage_error(capsys, "train", SPEC, "digits",
                                                            f"{flag}={value}")


def test_a_validation_split_that_leaves_nothing_to_train_on_says_why(capsys):
    err = usage_error(capsys, "train", SPEC, "digits", "--val-split", "0.99999")
    assert err.startswith("archdsl train: error: --val-split must be from 0 to 0.9, got 0.99999")
    assert "trains on" in err


def test_a_device_this_machine_lacks_is_a_usage_error(capsys):
    import torch

    if torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    err = usage_error(capsys, "train", SPEC, "digits", "--device", "mps")
    assert "--device mps was asked for, but PyTorch sees no MPS device" in err
    if not torch.cuda.is_available():
        err = usage_error(capsys, "train", SPEC, "digits", "--device", "cuda")
        assert err == "archdsl train: error: --device cuda was asked for, but PyTorch sees no CUDA GPU"


@pytest.mark.parametrize("top", ["0", "-1"])
def test_predict_needs_at_least_one_class(capsys, tmp_path, top):
    assert usage_error(capsys, "predict", tmp_path, tmp_path / "x.png", "--top", top) == \
        f"archdsl predict: error: --top must be at least 1, got {top}"


def test_the_help_lists_every_option_of_the_config_with_its_help(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # no line broken inside a word
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for cls in (TrainConfig, LaunchConfig):
        for _, opt, _ in options(cls):
            assert opt.flag in text and " ".join(opt.help.split()) in text, opt.flag


def test_the_parsed_command_line_is_the_config():
    args = build_parser().parse_args(["train", SPEC, "digits", "--lr", "0.2", "--no-augment",
                                      "--cache", "memory", "--seed", "7", "--nproc-per-node",
                                      "2", "--torchrun=--max-restarts=3"])
    from archdsl.train.config import from_args

    config = from_args(TrainConfig, args)
    assert config == TrainConfig(lr=0.2, augment="none", cache="memory", seed=7)
    assert from_args(LaunchConfig, args) == LaunchConfig(nproc_per_node=2,
                                                         torchrun=["--max-restarts=3"])
    defaults = from_args(TrainConfig, build_parser().parse_args(["train", SPEC, "digits"]))
    assert defaults == TrainConfig()


def test_the_launcher_leaves_out_exactly_its_declared_options():
    from archdsl.train.distributed import worker_arguments

    assert LAUNCH_FLAGS == tuple("--" + f.name.replace("_", "-")
                                 for f in dataclasses.fields(LaunchConfig))
    argv = ["spec.arch", "digits", "--nproc-per-node", "2", "--rdzv-id=x", "--epochs", "3",
            "--torchrun", "--max-restarts=1", "--nnodes", "1"]
    assert worker_arguments(argv) == ["spec.arch", "digits", "--epochs", "3"]


def test_a_config_made_in_python_is_checked_too(tmp_path):
    from archdsl.train import TrainError, train

    assert TrainConfig(lr=float("nan")).problems() == ["--lr must be a finite number, got nan"]
    assert TrainConfig(schedule="linear").problems() == [
        "unknown --schedule 'linear': cosine, step, onecycle or constant"]
    with pytest.raises(TrainError, match="--label-smoothing must be from 0 to 1, got 2"):
        train(SPEC, "digits", TrainConfig(label_smoothing=2.0, quiet=True),
              out=str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()


def test_checking_a_spec_does_not_import_torch():
    code = ("import sys; from archdsl.cli import main; main(['check', %r]); "
            "assert 'torch' not in sys.modules, 'torch imported'" % SPEC)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# ----------------------------------------------------------------------------- scoped state


def test_a_run_leaves_the_process_as_it_found_it(tmp_path):
    """Seeds, cudnn flags and thread counts are the run's own: after train() and resume()
    torch's random state, its flags and its threads are what they were before."""
    import random

    import torch

    from archdsl.train import resume, train

    data = image_folder(tmp_path / "data", per_class=4, noise=True)
    spec = tiny_spec(tmp_path)
    cudnn = torch.backends.cudnn
    before = (cudnn.benchmark, cudnn.deterministic, torch.get_num_threads())
    torch.manual_seed(1234)
    random.seed(99)
    np.random.seed(7)
    expected = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(1234)
    random.seed(99)
    np.random.seed(7)
    run = train(spec, str(data), TrainConfig(epochs=1, batch_size=4, quiet=True),
                out=str(tmp_path / "r"))
    resume(run, epochs=2, log=lambda line: None)
    assert (cudnn.benchmark, cudnn.deterministic, torch.get_num_threads()) == before
    after = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(after[0], expected[0]) and after[1:] == expected[1:]


def test_run_scope_puts_back_what_a_run_sets_on_torch():
    import torch

    from archdsl.train.setup import run_scope

    cudnn = torch.backends.cudnn
    before = (cudnn.benchmark, cudnn.deterministic, torch.get_num_threads())
    state = torch.get_rng_state()
    with pytest.raises(RuntimeError):
        with run_scope():  # as a run on CUDA does, then fails
            torch.manual_seed(5)
            cudnn.benchmark, cudnn.deterministic = not before[0], not before[1]
            torch.set_num_threads(max(before[2] - 1, 1) if before[2] > 1 else 2)
            raise RuntimeError("the run failed")
    assert (cudnn.benchmark, cudnn.deterministic, torch.get_num_threads()) == before
    assert torch.equal(torch.get_rng_state(), state)


def test_the_launcher_puts_back_the_environment_and_torchruns_loggers(monkeypatch):
    import logging
    import os

    import torch.distributed.run  # noqa: F401 - its loggers exist from here

    from archdsl.train.distributed import _quiet_torchrun

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    logger = logging.getLogger("torch.distributed.run")
    level = logger.level
    with _quiet_torchrun(2):
        assert int(os.environ["OMP_NUM_THREADS"]) >= 1 and logger.level == logging.CRITICAL
    assert "OMP_NUM_THREADS" not in os.environ and logger.level == level


def test_the_help_shows_each_default_and_no_internal_names(capsys, monkeypatch):
    """Issue 13: every option with a value by default says it; metavars are words a user
    reads (no field names such as EPOCHS_GIVEN or BATCH_SIZE); --device lists its choices."""
    monkeypatch.setenv("COLUMNS", "1000")
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for name, opt, default in options(TrainConfig):
        if default not in (None, False, True, []):
            shown = default if not isinstance(default, float) else f"{default:g}"
            assert f"(default {shown}" in opt.help, (opt.flag, opt.help)
    for name in ("BATCH_SIZE", "MOMENTUM", "WORKERS", "EPOCHS_GIVEN", "WEIGHT_DECAY",
                 "VAL_SPLIT", "DEVICE"):
        assert name not in text, name
    assert "--device {auto,cpu,cuda,cuda:N,mps}" in text
    assert "--optimizer {sgd,adamw}" in text and "(default sgd)" in text


def test_torch_threads_and_loader_workers_do_not_ask_for_more_cores_than_there_are(monkeypatch):
    import os

    from archdsl.train.images import cpu_share, torch_threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert cpu_share(1) == (8, 8) and cpu_share(2) == (8, 4)
    assert torch_threads(0, 0, 1, environ={}) == 8
    assert torch_threads(0, 3, 1, environ={}) == 5  # the workers' cores are not the threads'
    assert torch_threads(0, 3, 2, environ={}) == 1  # 4 cores each for 2 processes, 3 workers
    assert torch_threads(0, 9, 1, environ={}) == 1
    assert torch_threads(0, 2, 1, environ={"OMP_NUM_THREADS": "3"}) == 3  # the user's choice
    assert torch_threads(2, 0, 1, environ={"OMP_NUM_THREADS": "3"}) == 2  # --threads first
    # torch's own default counts physical cores: 8 logical ones may be 4 with hyperthreads
    assert torch_threads(0, 1, 1, environ={}, torch_default=4) == 3


def test_a_run_trains_with_its_thread_count_and_a_resume_keeps_it(tmp_path, monkeypatch):
    """The thread count changes the rounding of the sums: config.json records it, and the
    resumed run uses it whatever the machine's OMP_NUM_THREADS says now."""
    import json

    import torch

    from archdsl.train import resume, train
    from archdsl.train import setup as setup_module

    data = image_folder(tmp_path / "data", per_class=4, noise=True)
    spec = tiny_spec(tmp_path)
    seen = []
    real = setup_module.make_schedule

    def spy(*args, **kwargs):  # called after the threads are set
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(setup_module, "make_schedule", spy)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    run = train(spec, str(data), TrainConfig(epochs=1, batch_size=4, quiet=True),
                out=str(tmp_path / "r"))
    assert json.loads((run / "config.json").read_text())["threads"] == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    resume(run, epochs=2, log=lambda line: None)
    assert len(seen) >= 2 and set(seen) == {3}
    run = train(spec, str(data), TrainConfig(epochs=1, batch_size=4, quiet=True, threads=2),
                out=str(tmp_path / "r2"))
    assert seen[-1] == 2 and json.loads((run / "config.json").read_text())["threads"] == 2
