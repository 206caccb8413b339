"""A run's checkpoints: what resume.pt holds (weights, optimizer, schedule, scaler, position,
every random state), writing an epoch's files as one, and reading them back to go on.

An epoch's files are written to temporary names and renamed together, resume.pt last, so a
run killed at any moment leaves its last checkpoint intact.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..files import atomic_batch
from .errors import TrainError
from .run_folder import metrics_writer, resume_command, weights_writer
from .setup import Setup, unwrap


@dataclass
class Position:
    """Where a run stands: the next epoch, the batches of it already done (after Ctrl-C), the
    metrics of the finished epochs and the best validation accuracy so far."""

    epoch: int = 1
    step: int = 0
    rows: list = field(default_factory=list)
    best: float = -1.0
    partial: dict = field(default_factory=lambda: {"seen": 0, "loss_sum": 0.0, "correct": 0,
                                                   "seconds": 0.0})


def kept(saved_at: int) -> str:
    """Which checkpoint a run stopped by a failure or Ctrl-C keeps, in words."""
    return f"the checkpoint of epoch {saved_at} is intact" if saved_at else "no epoch had finished"


# ----------------------------------------------------------------------------- random states


def random_states(generator: torch.Generator) -> dict:
    """Every random state a resumed run needs to continue exactly (weights-only loadable)."""
    version, internal, gauss = random.getstate()
    states = {"python": [version, list(internal), gauss], "numpy": _numpy_state(),
              "torch": torch.get_rng_state(), "loader": generator.get_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _numpy_state():
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]


def restore_random_states(states: dict, generator: torch.Generator) -> None:
    """Set the random states `random_states` saved."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(states["torch"])
    generator.set_state(states["loader"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


# ----------------------------------------------------------------------------- writing


def _state(s: Setup, epoch: int, rows: list, best: float, loader_state=None) -> dict | None:
    """What resume.pt holds; None on workers other than rank 0, which only hand it their
    random states (every worker must call this)."""
    mine = random_states(s.generator)
    if loader_state is not None:
        mine["loader"] = loader_state
    ranks = s.world.gather(mine)
    if not s.world.main:
        return None
    state = {
        "epoch": epoch, "rows": rows, "best": best,
        "model": {k: v.detach().cpu() for k, v in unwrap(s.model).state_dict().items()},
        **({"ema": {k: v.detach().cpu() for k, v in s.ema.state_dict().items()}}
           if s.ema is not None else {}),
        "optimizer": s.optimizer.state_dict(), "schedule": s.schedule.state_dict(),
        "scaler": s.scaler.state_dict() if s.scaler is not None else {},
        "random": mine,
    }
    if s.world.several:
        state["random_ranks"] = ranks
    return state


def non_finite(s: Setup, tensors: dict | None = None) -> str:
    """` at layer conv1's weight (spec.arch:3)`: where the run's weights or buffers (or the
    given state_dict) first hold NaN or an infinity; '' when every value is finite."""
    from .health import first_non_finite_tensor

    model = unwrap(s.model)
    return first_non_finite_tensor(s.network, tensors if tensors is not None
                                   else model.state_dict())


def _refuse_non_finite(s: Setup, state: dict) -> None:
    """No checkpoint ever holds a non-finite tensor: the weights, or the optimizer's moments
    (which would make the next step's weights NaN)."""
    where = non_finite(s, state["model"])
    moments = {f"optimizer state {i}.{k}": v for i, slot in state["optimizer"]["state"].items()
               for k, v in slot.items() if isinstance(v, torch.Tensor)}
    if not where and not all(torch.isfinite(v).all() for v in moments.values()
                             if v.is_floating_point()):
        where = " in the optimizer's state"
    if where:
        raise TrainError(f"the weights became non-finite (NaN or infinite){where}; they were "
                         "not saved")


def checkpoint(s: Setup, epoch: int, rows: list, best: float, improved: bool,
               confusion, log=None) -> None:
    """Everything of one epoch, written as one (renamed into place together, resume.pt last).
    A plot matplotlib cannot draw is left out with a warning through `log`; the weights,
    metrics and resume state are written regardless. Non-finite weights are never written
    (TrainError)."""
    from .plots import confusion_normalized_png, confusion_png, curves_png, drawn, write_png
    from .units import top_k_shown

    run = s.run
    state = _state(s, epoch, rows, best)
    if state is None:
        return  # rank 0 writes
    _refuse_non_finite(s, state)
    weights = unwrap(s.model).state_dict()
    measured = s.ema.module.state_dict() if s.ema is not None else weights  # what validation saw
    curves = drawn(curves_png, rows, title=f"{s.network.name}: {run.name}", warn=log,
                   top5=top_k_shown(len(s.data.classes)))
    matrices = {name: drawn(draw, confusion, s.data.classes, title=f"validation, epoch {epoch}",
                            warn=log) if improved else None
                for name, draw in (("confusion.png", confusion_png),
                                   ("confusion_normalized.png", confusion_normalized_png))}
    with atomic_batch() as write:
        write(run / "metrics.csv", metrics_writer(rows))
        write(run / "last.safetensors", weights_writer(weights))
        if s.ema is not None:
            write(run / "ema.safetensors", weights_writer(measured))
        if improved:
            write(run / "best.safetensors", weights_writer(measured))
            for name, matrix in matrices.items():
                if matrix is not None:
                    write_png(run / name, matrix, write)
        if curves is not None:
            write_png(run / "curves.png", curves, write)
        write(run / "resume.pt", lambda tmp: torch.save(state, tmp))


def save_part(s: Setup, epoch: int, at: Position, health) -> None:
    """resume.pt for an epoch stopped part-way: the finished epochs, the steps done of this
    one, its shuffle and running sums, so that --resume goes on with the next batch."""
    state = _state(s, epoch - 1, at.rows, at.best, loader_state=s.epoch_order)
    if state is None:
        return  # rank 0 writes
    state.update(step=at.step, partial=dict(at.partial),
                 health={"sums": health.sums, "steps": health.steps})
    _refuse_non_finite(s, state)
    with atomic_batch() as write:
        write(s.run / "resume.pt", lambda tmp: torch.save(state, tmp))


# ----------------------------------------------------------------------------- reading


def check_weights_file(path: Path) -> None:
    """Refuse to go on beside a damaged best or last checkpoint: the run would keep it."""
    from ..checkpoints import CheckpointError, read_state

    if not path.exists():
        return
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise TrainError(f"cannot read {path}: {exc.strerror or exc}; the resumed run would "
                         f"replace it. Make it readable (chmod u+r), or delete it (the run "
                         f"writes it again), then run `{resume_command(path.parent)}`") from None
    try:
        read_state(path)
    except CheckpointError as exc:
        raise TrainError(f"{exc}. The resumed run would keep it: delete it (the run writes it "
                         f"again), then run `{resume_command(path.parent)}`") from None


def restore(s: Setup, state: dict, path: Path) -> Position:
    """Load resume.pt's weights, optimizer, schedule, scaler and random states into the
    prepared run; where it stands."""
    from ..checkpoints import CheckpointError, fit_state

    try:
        fit_state(s.network, unwrap(s.model), state["model"], f"the resume state {path}")
        if s.ema is not None:
            s.ema.load_state_dict({k: v.to(s.device) for k, v in state["ema"].items()})
        s.optimizer.load_state_dict(state["optimizer"])
        s.schedule.load_state_dict(state["schedule"])
        if s.scaler is not None and state.get("scaler"):
            s.scaler.load_state_dict(state["scaler"])
        ranks = state.get("random_ranks")
        restore_random_states(ranks[s.world.rank] if ranks else state["random"], s.generator)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - a resume.pt that does not fit is refused, not run
        raise TrainError(f"{path} does not fit this run ({type(exc).__name__}: "
                         f"{(str(exc).splitlines() or [''])[0][:160]}); it was changed after "
                         "the run wrote it. To train the run again from the start, delete it "
                         f"and run `{resume_command(path.parent)}`") from None
    position = Position(epoch=state["epoch"] + 1, rows=state["rows"], best=state["best"])
    if "step" in state:
        position.step = state["step"]
        position.partial = {**position.partial, **state["partial"]}
    return position


def replan_schedule(s: Setup, state: dict, epochs_before: int, log) -> None:
    """--resume --epochs N on a run started with fewer epochs: a cosine or one-cycle schedule
    is planned over the run's epochs, so it is planned again over N, from the step the run
    has reached, as a run started with --epochs N would stand there. The learning rate goes
    on from that curve's value (it jumps up from where the shorter run had left it; a run
    that had finished had decayed to 0, and would otherwise train its new epochs at lr 0).
    Said in one line; later resumes of the longer run are exact again."""
    import warnings

    from .setup import make_schedule

    config = s.config
    if config.epochs == epochs_before or config.schedule not in ("cosine", "onecycle"):
        return
    before = [group["lr"] for group in s.optimizer.param_groups]
    steps = max(len(s.train_loader), 1)
    s.schedule = make_schedule(s.optimizer, config, steps)
    s.schedule.last_epoch = state["schedule"]["last_epoch"]
    s.schedule._step_count = state["schedule"].get("_step_count", s.schedule.last_epoch + 1)
    with warnings.catch_warnings():  # get_lr outside step() warns; this is its one use
        warnings.simplefilter("ignore")
        lrs = s.schedule.get_lr()
    for group, lr in zip(s.optimizer.param_groups, lrs):
        group["lr"] = lr
    s.schedule._last_lr = list(lrs)
    log(f"--epochs {config.epochs}: the {config.schedule} schedule, planned over "
        f"{epochs_before} epoch(s), is planned again over {config.epochs} from where the run "
        f"stands; the learning rate goes on at {lrs[0]:.3g} (it was {before[0]:.3g}) and "
        f"decays to its end in epoch {config.epochs}")

