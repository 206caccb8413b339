"""Training on several processes: torchrun workers with gloo on this CPU.

The slow tests start real workers (`archdsl train … --nproc-per-node 2`, and the user's own
`torchrun … -m archdsl train …`); the fast ones check the pieces: the sharded training order,
the launcher's command lines and its report of a dead worker.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from archdsl.train.distributed import (_report_failure, torchrun_arguments, worker_arguments)
from archdsl.train.errors import TrainError
from archdsl.train.images import ShardedOrder
from archdsl.train.run_folder import resume_command
from helpers import same_weights

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5.arch"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def archdsl(*argv, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "archdsl", *map(str, argv)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def without_timing(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("images_per_s", "seconds")}
            for r in rows(run)]


def no_traceback(result) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]


# ----------------------------------------------------------------------------- the pieces


@pytest.mark.parametrize("size,batch", [(1618, 64), (100, 12), (10, 64), (65, 64), (64, 64)])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_workers_share_each_global_batch_of_the_single_process_order(size, batch, world):
    if batch % world:
        batch = batch // world * world
    single = ShardedOrder(size, torch.Generator().manual_seed(7), batch)
    shards = [ShardedOrder(size, torch.Generator().manual_seed(7), batch, rank, world)
              for rank in range(world)]
    whole = list(single)
    parts = [list(s) for s in shards]
    for part, shard in zip(parts, shards):
        assert len(part) == len(shard)
    used = sorted(i for part in parts for i in part)
    assert used == sorted(whole)  # each image once per epoch across the workers
    assert len(set(used)) == len(used)
    if size > batch:
        assert len(whole) == size // batch * batch  # the last partial batch is dropped
        share = batch // world
        for step in range(size // batch):  # every global step is one process's batch
            together = [i for part in parts for i in part[step * share:(step + 1) * share]]
            assert together == whole[step * batch:(step + 1) * batch]
    else:
        assert len(whole) == size


def test_a_resumed_epoch_skips_the_same_global_batches_on_every_worker():
    full = [list(ShardedOrder(100, torch.Generator().manual_seed(1), 20, r, 2)) for r in (0, 1)]
    resumed = []
    for rank in (0, 1):
        order = ShardedOrder(100, torch.Generator().manual_seed(1), 20, rank, 2)
        order.skip = 2 * 20  # two global steps done before Ctrl-C
        resumed.append(list(order))
    assert resumed == [part[20:] for part in full]


def test_the_launch_options_are_not_passed_to_the_workers():
    argv = ["specs/x.arch", "digits", "--nproc-per-node", "2", "--epochs", "3", "--nnodes=1",
            "--torchrun", "--max-restarts=1", "--rdzv-endpoint", "h:1", "--rdzv-id", "j",
            "--node-rank", "0", "--torchrun=--tee=3", "--sync-bn"]
    assert worker_arguments(argv) == ["specs/x.arch", "digits", "--epochs", "3", "--sync-bn"]


def test_torchrun_command_lines():
    assert torchrun_arguments(4, 1, None, None, None, []) == ["--nproc-per-node", "4",
                                                               "--standalone"]
    assert torchrun_arguments(8, 2, 1, "node0:29500", None, ["--max-restarts=2"]) == [
        "--nproc-per-node", "8", "--nnodes", "2", "--node-rank", "1", "--master-addr", "node0",
        "--master-port", "29500", "--max-restarts=2"]
    assert torchrun_arguments(8, 4, None, "node0:29500", "job7", []) == [
        "--nproc-per-node", "8", "--nnodes", "4", "--rdzv-backend", "c10d", "--rdzv-endpoint",
        "node0:29500", "--rdzv-id", "job7"]
    with pytest.raises(TrainError, match="needs --rdzv-endpoint"):
        torchrun_arguments(8, 2, None, None, None, [])
    with pytest.raises(TrainError, match="not HOST:PORT"):
        torchrun_arguments(8, 2, 0, "node0", None, [])
    with pytest.raises(TrainError, match="from 0 to 1"):
        torchrun_arguments(8, 2, 2, "node0:1", None, [])


def _failure(exitcode, timestamp, local_rank, pid):
    name = signal.Signals(-exitcode).name if exitcode < 0 else ""
    return SimpleNamespace(exitcode=exitcode, timestamp=timestamp, local_rank=local_rank,
                           pid=pid, signal_name=lambda: name)


def test_a_dead_worker_is_named_not_the_ones_torchrun_stopped(tmp_path):
    lines = []
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"distributed": {"nproc_per_node": 2}}))
    (run / "metrics.csv").write_text("epoch\n1\n2\n")
    failed = SimpleNamespace(failures={0: _failure(-15, 5, 0, 100), 1: _failure(-9, 5, 1, 101)},
                             get_first_failure=lambda: None)
    assert _report_failure(failed, str(run), lines.append) == 1
    assert "worker rank 1 (local rank 1, pid 101) was killed by SIGKILL" in lines[0]
    assert "last checkpoint (epoch 2)" in lines[0]
    assert f"archdsl train --resume {run} --nproc-per-node 2" in lines[0]
    # a worker that said why (exit 1) is not described again; its exit code is the job's
    told = SimpleNamespace(failures={1: _failure(1, 3, 1, 7)},
                           get_first_failure=lambda: (1, _failure(1, 3, 1, 7)))
    assert _report_failure(told, str(run), lines.append) == 1 and len(lines) == 1
    # rank 0 said it and exited 130 (Ctrl-C); torchrun stopped rank 1, which was waiting
    stopped = SimpleNamespace(failures={0: _failure(130, 4, 0, 8), 1: _failure(-15, 5, 1, 9)},
                              get_first_failure=lambda: (1, _failure(-15, 5, 1, 9)))
    assert _report_failure(stopped, str(run), lines.append) == 130 and len(lines) == 1


def test_a_worker_that_rank_0_speaks_for_waits_for_it_to_finish(monkeypatch, capsys):
    """An error every worker meets alike: rank 0 says it; another rank says nothing and waits
    to be stopped, for had it exited first torchrun would stop rank 0 before it spoke."""
    from archdsl.cli import boundary as cli
    from archdsl.train import distributed
    from archdsl.train.errors import TrainError, on_every_worker

    waited = []
    monkeypatch.setattr(distributed, "outlive_rank_zero", lambda: waited.append(True))
    error = on_every_worker(TrainError("--sync-bn needs CUDA"))
    assert cli._reported("train", error, rank=1) == 1 and waited == [True]
    assert capsys.readouterr().err == ""
    assert cli._reported("train", error, rank=0) == 1 and waited == [True]
    assert capsys.readouterr().err == "archdsl train: error: --sync-bn needs CUDA\n"


def test_the_resume_hint_names_the_number_of_workers(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"distributed": {"world_size": 16, "nproc_per_node": 8, "nnodes": 2}}))
    assert resume_command(tmp_path).endswith(
        "--nproc-per-node 8 --nnodes 2 --rdzv-endpoint HOST:PORT")
    (tmp_path / "config.json").write_text(json.dumps({"distributed": None}))
    assert resume_command(tmp_path) == f"archdsl train --resume {tmp_path}"


# ----------------------------------------------------------------------------- real workers


@pytest.fixture(scope="module")
def single_and_two(tmp_path_factory):
    """lenet5 on digits for 6 epochs with the global batch 64: one process, and two workers
    (run from an empty folder, to see that nothing else is written)."""
    root = tmp_path_factory.mktemp("ddp")
    one = archdsl("train", LENET, "digits", "--epochs", 6, "--out", root / "one", "--quiet")
    assert one.returncode == 0, one.stderr
    cwd = root / "cwd"
    cwd.mkdir()
    two = archdsl("train", LENET, "digits", "--epochs", 6, "--nproc-per-node", 2, cwd=cwd)
    return root, cwd, two


def test_two_workers_train_to_the_accuracy_of_one(single_and_two):
    root, cwd, two = single_and_two
    assert two.returncode == 0, two.stderr
    no_traceback(two)
    (run,) = (cwd / "runs").iterdir()
    one, both = rows(root / "one"), rows(run)
    assert len(one) == len(both) == 6
    best_one = max(float(r["val_acc"]) for r in one)
    best_two = max(float(r["val_acc"]) for r in both)
    assert best_one > 0.9 and best_two > 0.9, (best_one, best_two)
    assert abs(best_one - best_two) <= 0.04, (best_one, best_two)
    config = json.loads((run / "config.json").read_text())
    assert config["distributed"] == {"world_size": 2, "nproc_per_node": 2, "nnodes": 1,
                                     "backend": "gloo", "batch_per_worker": 32}
    assert config["options"]["batch_size"] == 64  # the global batch, as asked


def test_only_rank_0_writes_and_prints(single_and_two):
    _, cwd, two = single_and_two
    (run,) = (cwd / "runs").iterdir()
    assert [p.name for p in cwd.iterdir()] == ["runs"]
    assert sorted(p.name for p in run.iterdir()) == sorted(
        ["best.safetensors", "config.json", "confusion.png", "confusion_normalized.png",
         "curves.png", "last.safetensors",
         "lenet5.arch", "metrics.csv", "resume.pt"])
    lines = two.stdout.splitlines()
    for epoch in range(1, 7):
        assert sum(line.startswith(f"epoch {epoch}/6 ") for line in lines) == 1, two.stdout
    assert two.stdout.count("training lenet5") == 1
    assert two.stderr == ""


def test_validation_is_summed_over_the_workers(single_and_two):
    """The best epoch's val accuracy, from the two workers' shares added up, is what one
    process measures with the best weights on the whole validation split."""
    _, cwd, _ = single_and_two
    (run,) = (cwd / "runs").iterdir()
    result = archdsl("eval", run, "digits", "--format", "json")
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    best = max(float(r["val_acc"]) for r in rows(run))
    assert measured["images"] == 179
    assert measured["top1"] == pytest.approx(best, abs=1e-6)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run = tmp_path_factory.mktemp("straight") / "run"
    result = archdsl("train", LENET, "digits", "--epochs", 4, "--schedule", "constant",
                     "--lr", "0.02", "--nproc-per-node", 2, "--out", run, "--quiet")
    assert result.returncode == 0, result.stderr
    return run


def _start(run: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "archdsl", "train", str(LENET), "digits", "--epochs", "4",
         "--schedule", "constant", "--lr", "0.02", "--nproc-per-node", "2", "--out", str(run),
         "--quiet"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)


def _after_first_epoch(process: subprocess.Popen, run: Path) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if (run / "metrics.csv").is_file() and len(rows(run)) >= 1:
            return
        time.sleep(0.05)
    pytest.fail(f"the run did not finish an epoch: {process.poll()}")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_a_killed_worker_ends_the_job_naming_it_and_resume_finishes_exactly(tmp_path,
                                                                          uninterrupted):
    run = tmp_path / "run"
    process = _start(run)
    _after_first_epoch(process, run)
    workers = _children(process.pid)
    assert len(workers) == 2, workers
    os.kill(workers[1], signal.SIGKILL)  # local rank 1: started second
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1, err
    assert "Traceback" not in err, err
    assert "worker rank 1" in err and "SIGKILL" in err and "is intact" in err, err
    assert f"--resume {run} --nproc-per-node 2" in err
    resumed = archdsl("train", "--resume", run, "--nproc-per-node", 2)
    assert resumed.returncode == 0, resumed.stderr
    no_traceback(resumed)
    assert without_timing(run) == without_timing(uninterrupted)
    assert same_weights(run / "last.safetensors", uninterrupted / "last.safetensors")


def test_ctrl_c_stops_every_worker_at_the_same_step_and_resume_finishes_exactly(
        tmp_path, uninterrupted):
    run = tmp_path / "run"
    process = _start(run)
    _after_first_epoch(process, run)
    os.killpg(process.pid, signal.SIGINT)  # the terminal's Ctrl-C reaches the whole group
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err, err
    assert err.count("the run is saved") == 1, err
    assert f"archdsl train --resume {run} --nproc-per-node 2" in err
    one_worker = archdsl("train", "--resume", run)
    assert one_worker.returncode == 1 and "trained by 2 worker(s)" in one_worker.stderr
    resumed = archdsl("train", "--resume", run, "--nproc-per-node", 2)
    assert resumed.returncode == 0, resumed.stderr
    assert without_timing(run) == without_timing(uninterrupted)
    assert same_weights(run / "last.safetensors", uninterrupted / "last.safetensors")


def test_the_users_own_torchrun_works_too(tmp_path):
    run = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "archdsl", "train", str(LENET), "digits", "--epochs", "1", "--out", str(run)],
        env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "config.json").read_text())["distributed"]["world_size"] == 2
    assert result.stdout.count("epoch 1/1 ") == 1


def test_errors_are_said_once_and_located(tmp_path):
    # found by every worker alike: rank 0 says it, once
    result = archdsl("train", LENET, "digits", "--nproc-per-node", 2, "--sync-bn", "--out",
                     tmp_path / "run")
    assert result.returncode == 1
    assert result.stderr.count("--sync-bn needs CUDA") == 1, result.stderr
    no_traceback(result)
    assert not (tmp_path / "run").exists()
    # refused before any worker starts
    odd = archdsl("train", LENET, "digits", "--nproc-per-node", 3, "--batch-size", 64)
    assert odd.returncode == 1 and "not a multiple of 3" in odd.stderr
    bad = tmp_path / "bad.arch"
    bad.write_text("input 1x28x28\nconv 6 k5 q\n")
    spec = archdsl("train", bad, "digits", "--nproc-per-node", 2)
    assert spec.returncode == 1 and "bad.arch:2" in spec.stderr
    no_traceback(spec)
    inside = subprocess.run([sys.executable, "-m", "archdsl", "train", str(LENET), "digits",
                             "--nproc-per-node", "2"], capture_output=True, text=True,
                            env={**ENV, "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"})
    assert inside.returncode == 2 and "started by torchrun already" in inside.stderr
