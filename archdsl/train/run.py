"""`archdsl train`'s two entries: a new run, and a stopped run resumed. Each prepares the run
(setup.py), trains its epochs (loop.py) and leaves the process's random states, cudnn flags
and thread counts as it found them (setup.run_scope).

The run folder holds a copy of the spec, config.json (every option, the resolved parameters,
classes, normalisation, seed, library versions), metrics.csv (one row per epoch), the best
and last weights as safetensors, resume.pt (everything `--resume` needs; state.py),
curves.png and confusion.png.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..files import remove_temporaries
from .config import TrainConfig, options
from .distributed import launched_by_torchrun
from .errors import TrainError, TrainUsageError, on_every_worker
from .interrupt import sigterm_as_ctrl_c
from .loop import run_epochs
from .run_folder import (RUN_FILES, lock_run, read_config, read_resume_state, resume_command,
                         run_locks)
from .setup import join_world, logger, prepared, run_scope
from .state import Position, check_weights_file, replan_schedule, restore

# what a resumed run may be given besides --epochs: how it reports, not what it computes
RESUME_MAY_CHANGE = {"quiet"}


def train(spec_path: str | Path, dataset: str, config: TrainConfig | None = None, *,
          params: dict | None = None, out: str | None = None, exist_ok: bool = False,
          log=None, spec_data: bytes | None = None) -> Path:
    """Train a spec on a data set; return the run folder. `spec_data` is the spec's bytes
    where the caller has read them already (the CLI reads the file once, at the edge): what
    is compiled is then what the run folder keeps. Raises TrainError, DataError or SpecError
    (with diagnostics) for problems found before training starts, TrainError for a run that
    cannot go on, and Interrupted (a TrainError) after Ctrl-C."""
    config = (config or TrainConfig()).resolved()
    with sigterm_as_ctrl_c(), run_locks(), run_scope():
        world = join_world(config)
        log = logger(config, log, world)
        setup = prepared(world, Path(spec_path), dataset, config, dict(params or {}), out,
                         exist_ok, log, spec_data=spec_data)
        run = run_epochs(setup, Position(), None, log=log)
        world.leave()
    return run


def resume(run_dir: str | Path, epochs: int | None = None, log=None,
           given: dict | None = None) -> Path:
    """Continue a run where it stopped (after its last finished epoch, or the step where
    Ctrl-C stopped it); with a fixed seed it ends as an uninterrupted run. A run stopped
    before its first epoch finished is trained from the start. `epochs` may raise the run's
    number of epochs, never below those it has done; `given` holds the other options of
    the command line (TrainConfig's field names), which a resume refuses but for --quiet:
    the run goes on with its own (config.json)."""
    with sigterm_as_ctrl_c(), run_locks():
        run = Path(run_dir)
        if (run / "config.json").is_file() and (not launched_by_torchrun()
                                                 or os.environ.get("RANK") == "0"):
            lock_run(run)  # before anything is read or cleaned: a run may be training in it
        saved = read_config(run)
        remove_temporaries(run, RUN_FILES | {saved["spec"]})
        state_path = run / "resume.pt"
        state = read_resume_state(state_path) if state_path.is_file() else None
        for name in ("best.safetensors", "last.safetensors"):
            check_weights_file(run / name)
        config = TrainConfig.from_dict(saved["options"])
        epochs_before = config.epochs
        _refuse_changes(run, given or {}, config)
        if epochs is not None:
            _check_epochs(run, epochs, state)
            config.epochs = epochs
        return _resume(run, saved, state, state_path, config, log, epochs_before)


def _refuse_changes(run: Path, given: dict, config: TrainConfig) -> None:
    """A resumed run goes on with its own options; one given otherwise is refused by name
    (it would be silently ignored), --quiet applied."""
    flags = {name: opt.flag for name, opt, _ in options(TrainConfig)}
    changed = [f"{flags.get(name, name)} {value}" if not isinstance(value, bool)
               else flags.get(name, name)
               for name, value in given.items()
               if name not in RESUME_MAY_CHANGE | {"epochs"} and value is not None]
    if changed:  # a command-line mistake: exit 2
        them = "it" if len(changed) == 1 else "them"
        raise TrainUsageError(f"--resume continues {run} with the options it was started with "
                              f"(its config.json); {', '.join(changed)} cannot change on a "
                              f"resume: leave {them} out (--epochs may raise the number of "
                              f"epochs), or start a new run with {them}")
    for name in RESUME_MAY_CHANGE & set(given):
        if given[name] is not None:
            setattr(config, name, given[name])


def _check_epochs(run: Path, epochs: int, state: dict | None) -> None:
    """--epochs on a resume: at least the epochs the run has begun."""
    if state is None:
        return
    done = state["epoch"] + (1 if "step" in state else 0)
    if epochs < done:
        began = (f"has finished {state['epoch']} epoch(s)" if "step" not in state else
                 f"has finished {state['epoch']} epoch(s) and begun epoch {done}")
        raise TrainError(f"{run} {began}; --epochs {epochs} would end it before that. Give "
                         f"--epochs {max(done, state['epoch'] + 1)} or more to train it further, "
                         "or leave --epochs out to finish it as it was started")


def _resume(run: Path, saved: dict, state, state_path: Path, config: TrainConfig,
            log, epochs_before: int) -> Path:
    """The resumed run, its folder locked and its files checked."""
    with run_scope():
        world = join_world(config)
        trained_by = (saved.get("distributed") or {}).get("world_size", 1)
        if trained_by != world.size:
            raise on_every_worker(TrainError(
                f"{run} was trained by {trained_by} worker(s) and this is {world.size}; resume "
                f"it with as many, so that it goes on exactly: `{resume_command(run)}`"))
        log = logger(config, log, world)
        spec = run / saved["spec"]
        dataset = saved["dataset_arg"]
        if not Path(dataset).exists() and isinstance(saved.get("dataset_path"), str):
            dataset = saved["dataset_path"]  # resumed from another folder than it was started in
        setup = prepared(world, spec, dataset, config, dict(saved["parameters"]), str(run), True,
                         log, saved=saved)
        run = _go_on(setup, state, state_path, log, epochs_before)
        world.leave()
    return run


def _go_on(setup, state: dict | None, state_path: Path, log, epochs_before: int) -> Path:
    """Train a prepared run on from resume.pt's state (from the start without one)."""
    run, config = setup.run, setup.config
    if state is None:
        log(f"{run} has no resume.pt (no epoch had finished): training it from the start")
        return run_epochs(setup, Position(), None, log=log)
    position = restore(setup, state, state_path)
    if not (run / "best.safetensors").is_file() and position.rows:
        log(f"warning: {run / 'best.safetensors'} is missing; the best weights from now on "
            "will be kept there")
        position.best = -1.0
    done = f"epoch {state['epoch']}" + (f" and {position.step} step(s) of epoch {position.epoch}"
                                        if "step" in state else "")
    log(f"resuming {run} after {done} of {config.epochs}")
    replan_schedule(setup, state, epochs_before, log)
    return run_epochs(setup, position, state.get("health"), log=log)
