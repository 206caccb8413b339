"""Training on several processes: PyTorch's own torch.distributed, DistributedDataParallel and
torchrun, nothing home-made.

Two halves. `launch` is what `archdsl train … --nproc-per-node N` runs: it starts torchrun's
elastic agent in this process (`torch.distributed.run.run`), which starts the N workers as
`python -m archdsl train …` and watches them; when one dies it stops the rest and says which
rank failed and how. `World` is the worker side: a process started by torchrun (ours or the
user's own `torchrun … -m archdsl train …`) joins the process group from the environment
torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, …), with nccl on CUDA and gloo on the CPU.

The batch size is global: `--batch-size 256` on 4 workers is 64 images per worker per step,
and the learning rate is the one a single process would use with 256, so a run's
hyperparameters do not change with the number of workers. Every global batch is the same
set of images a single process would draw (see ShardedOrder in images.py).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import logging
import os
import signal
import sys
from dataclasses import dataclass

from .config import LAUNCH_FLAGS
from .errors import EXIT_INTERRUPTED, TrainError


def launched_by_torchrun() -> bool:
    """Whether this process is a worker started by torchrun (ours or the user's)."""
    return all(name in os.environ for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


@dataclass
class World:
    """This process's place among the workers of a run; one process alone by default."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    backend: str | None = None

    @property
    def main(self) -> bool:
        """Rank 0: the one worker that prints and writes the run folder."""
        return self.rank == 0

    @property
    def several(self) -> bool:
        return self.size > 1

    @property
    def nodes(self) -> int:
        return max(self.size // max(self.local_size, 1), 1)

    # -- collectives (each a no-op for one process) ---------------------------------------
    def sum_(self, tensor):
        """Sum `tensor` over the workers, in place."""
        if self.several:
            import torch.distributed as dist

            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def any(self, flag: bool, device) -> bool:
        """Whether `flag` holds on any worker (every worker gets the same answer)."""
        if not self.several:
            return flag
        import torch

        return bool(self.sum_(torch.tensor([float(flag)], device=device)).item() > 0)

    def from_main(self, value):
        """Rank 0's `value`, on every worker."""
        if not self.several:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value) -> list:
        """Every worker's `value`, in rank order, on every worker."""
        if not self.several:
            return [value]
        import torch.distributed as dist

        values = [None] * self.size
        dist.all_gather_object(values, value)
        return values

    def leave(self, wait: bool = True) -> None:
        """Leave the process group: first (`wait`) a barrier, so that no worker still has a
        collective in flight, then destroy the group, which joins gloo's threads. Freeing a
        group whose threads still hold work at interpreter shutdown aborts the process
        ("terminate called without an active exception"), so this runs at the end of every
        successful run, not only at exit."""
        if self.several:
            import torch.distributed as dist

            if dist.is_initialized():
                if wait:
                    dist.barrier()
                dist.destroy_process_group()


def join(device_name: str) -> World:
    """The World of this process: one alone, or a worker of torchrun's that joins the process
    group (nccl when it trains on CUDA, gloo otherwise)."""
    if not launched_by_torchrun():
        return World()
    import torch
    import torch.distributed as dist

    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", size))
    cuda = torch.cuda.is_available() and device_name in ("auto", "cuda") \
        or device_name.startswith("cuda")
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise TrainError(f"worker {rank} is local rank {local_rank}, but this machine has "
                             f"{torch.cuda.device_count()} CUDA GPU(s); start at most that many "
                             "workers per node (--nproc-per-node)")
        torch.cuda.set_device(local_rank)
    backend = "nccl" if cuda else "gloo"
    world = World(rank, size, local_rank, local_size, backend if size > 1 else None)
    if size > 1 and not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
        # however the worker ends (an error every worker meets, Ctrl-C): a process that exits
        # with the group alive can abort in gloo's threads ("terminate called without an
        # active exception") while the interpreter shuts down
        atexit.register(world.leave, wait=False)
    return world


def outlive_rank_zero(limit: float = 60.0) -> None:
    """A worker other than rank 0 that met an error every worker meets alike, which rank 0
    reports: wait until torchrun stops this one, as it does once rank 0 has said the error and
    exited (or `limit` seconds). A worker that exited first would have torchrun stop rank 0,
    perhaps before it said anything."""
    import time

    time.sleep(limit)


def exit_worker(code: int) -> None:
    """End a torchrun worker: leave the process group if some path has not, flush what it
    printed, and exit without the interpreter's shutdown, where gloo's threads and CUDA's
    state are torn down in an order that can abort a process that succeeded. Every file of
    the run has been written and closed (renamed into place whole) by now."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    except Exception:  # noqa: BLE001 - the exit code already says how the run ended
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


# ----------------------------------------------------------------------------- the launcher


def worker_arguments(argv: list[str]) -> list[str]:
    """`archdsl train`'s arguments without the launcher's own options (and their values)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in LAUNCH_FLAGS:
            skip = "=" not in arg
            continue
        out.append(arg)
    return out


def torchrun_arguments(nproc: int, nnodes: int, node_rank: int | None, endpoint: str | None,
                       rdzv_id: str | None, extra: list[str]) -> list[str]:
    """The torchrun command line (without the program) for archdsl's launch options.

    One node and no endpoint: `--standalone` (a local rendezvous on a free port). With
    `--node-rank`: torchrun's static rendezvous, node 0's HOST:PORT as the master address.
    Without it: the elastic c10d rendezvous at HOST:PORT, node ranks assigned as nodes join.
    """
    args = ["--nproc-per-node", str(nproc)]
    if nnodes == 1 and endpoint is None:
        args.append("--standalone")
    else:
        if endpoint is None:
            raise TrainError(f"--nnodes {nnodes} needs --rdzv-endpoint HOST:PORT, the address of "
                             "node 0 (the same on every node)")
        host, _, port = endpoint.rpartition(":")
        if not host or not port.isdigit():
            raise TrainError(f"--rdzv-endpoint {endpoint!r} is not HOST:PORT (e.g. node0:29500)")
        args += ["--nnodes", str(nnodes)]
        if node_rank is not None:
            if not 0 <= node_rank < nnodes:
                raise TrainError(f"--node-rank {node_rank} must be from 0 to {nnodes - 1}")
            args += ["--node-rank", str(node_rank), "--master-addr", host, "--master-port", port]
        else:
            args += ["--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint,
                     "--rdzv-id", rdzv_id or "archdsl"]
    return args + list(extra)


def launch(torchrun_args: list[str], worker_argv: list[str], run_dir: str | None, log) -> int:
    """Run torchrun's agent here on `python -m archdsl train <worker_argv>`; the exit code.

    A worker that fails with a message of its own (exit 1, 2 or 130) has printed it; one that
    died otherwise (a signal, a crash) is named here, with where the run's checkpoint stands."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    nproc = int(torchrun_args[torchrun_args.index("--nproc-per-node") + 1])
    options = get_args_parser().parse_args(
        torchrun_args + ["--module", "archdsl", "train", *worker_argv])
    waiting = rendezvous_line(torchrun_args)
    if waiting:
        log(waiting)
    try:
        with _quiet_torchrun(nproc):
            run(options)
    except ChildFailedError as exc:
        return _report_failure(exc, run_dir, log)
    except SignalException as exc:
        if exc.sigval == signal.SIGINT:
            return EXIT_INTERRUPTED  # the workers saved the run and said how to continue
        log(f"archdsl train: error: stopped by {exc.sigval.name}; the workers were stopped"
            f"{_kept(run_dir)}")
        return 1
    return 0


def rendezvous_line(torchrun_args: list[str]) -> str | None:
    """What a launch of several nodes waits for, in one line (torchrun says nothing until
    every node has joined); None for one node."""
    def value(flag):
        return torchrun_args[torchrun_args.index(flag) + 1] if flag in torchrun_args else None

    nodes = value("--nnodes")
    if nodes is None or nodes == "1":
        return None
    if "--node-rank" in torchrun_args:
        where = f"{value('--master-addr')}:{value('--master-port')}"
        return (f"waiting for {nodes} nodes at the rendezvous endpoint {where} (this is node "
                f"{value('--node-rank')}); start the same command on every node, each with its "
                "own --node-rank")
    return (f"waiting for {nodes} nodes at the rendezvous endpoint {value('--rdzv-endpoint')} "
            f"(rendezvous id {value('--rdzv-id')}); start the same command on every node")


@contextlib.contextmanager
def _quiet_torchrun(nproc: int):
    """While torchrun's agent runs here: its loggers silenced (its log lines and its table of
    the failure would repeat what is said here) and OMP_NUM_THREADS set for the workers
    (torchrun would set 1, with a warning); both put back as they were afterwards."""
    names = [name for name in list(logging.root.manager.loggerDict)
             if name.startswith(("torch.distributed.elastic", "torch.distributed.run",
                                 "torch.distributed.launcher"))]
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:  # each of its modules' loggers has a level of its own
        logging.getLogger(name).setLevel(logging.CRITICAL)
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads is None:
        os.environ["OMP_NUM_THREADS"] = str(max((os.cpu_count() or 1) // nproc, 1))
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        if threads is None:
            os.environ.pop("OMP_NUM_THREADS", None)


def _report_failure(exc, run_dir: str | None, log) -> int:
    failures = exc.failures
    # a worker killed by a signal or crashing is the cause; the others exited on their own
    told = {1, 2, EXIT_INTERRUPTED}
    untold = {r: f for r, f in failures.items() if f.exitcode not in told}
    said = [f for f in failures.values() if f.exitcode in told]
    if said and all(f.exitcode == -signal.SIGTERM for f in untold.values()):
        # a worker said why and exited; torchrun stopped the others (outlive_rank_zero)
        return min(said, key=lambda f: f.timestamp).exitcode
    # torchrun stops the rest with SIGTERM: a worker that died otherwise is the cause
    rank = min(untold, key=lambda r: (untold[r].exitcode == -signal.SIGTERM,
                                      untold[r].timestamp, r))
    failure = untold[rank]
    if failure.exitcode < 0:
        how = f"was killed by {failure.signal_name()}"
    else:
        how = f"exited with code {failure.exitcode} without a message"
    log(f"archdsl train: error: worker rank {rank} (local rank {failure.local_rank}, pid "
        f"{failure.pid}) {how}; torchrun stopped the other workers{_kept(run_dir)}")
    return 1


def _kept(run_dir: str | None) -> str:
    """Where the run stands after its workers were stopped: its last checkpoint is intact
    (every write is renamed into place whole) and how to continue it."""
    if not run_dir:
        return "."
    from pathlib import Path

    from .run_folder import resume_command

    metrics = Path(run_dir) / "metrics.csv"
    try:
        epochs = max(len(metrics.read_text().splitlines()) - 1, 0)
    except OSError:
        epochs = 0
    if not (Path(run_dir) / "config.json").is_file():
        return f". The run in {run_dir} had not started training."
    if not epochs:
        return (f". No epoch of the run in {run_dir} had finished; start it again with "
                f"`{resume_command(Path(run_dir))}`.")
    return (f". The last checkpoint (epoch {epochs}) in {run_dir} is intact; continue with "
            f"`{resume_command(Path(run_dir))}`.")


def stderr_log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
