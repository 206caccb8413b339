"""`archdsl train`'s two entries: a new run, and a stopped run resumed. Each prepares the run
(setup.py), trains its epochs (loop.py) and leaves the process's random states, cudnn flags
and thread counts as it found them (setup.run_scope).

The run folder holds a copy of the spec, config.json (every option, the resolved parameters,
classes, normalisation, seed, library versions), metrics.csv (one row per epoch), the best
and last weights as safetensors, resume.pt (everything `--resume` needs; state.py),
curves.png and confusion.png.
"""

from __future__ import annotations

from pathlib import Path

from ..files import remove_temporaries
from .config import TrainConfig
from .errors import TrainError, on_every_worker
from .loop import run_epochs
from .run_folder import RUN_FILES, read_config, read_resume_state, resume_command
from .setup import join_world, logger, prepared, run_scope
from .state import Position, check_weights_file, restore


def train(spec_path: str | Path, dataset: str, config: TrainConfig | None = None, *,
          params: dict | None = None, out: str | None = None, exist_ok: bool = False,
          log=None) -> Path:
    """Train a spec on a data set; return the run folder. Raises TrainError, DataError or
    SpecError (with diagnostics) for problems found before training starts, TrainError for a
    run that cannot go on, and Interrupted (a TrainError) after Ctrl-C."""
    config = (config or TrainConfig()).resolved()
    with run_scope():
        world = join_world(config)
        log = logger(config, log, world)
        setup = prepared(world, Path(spec_path), dataset, config, dict(params or {}), out,
                         exist_ok, log)
        run = run_epochs(setup, Position(), None, log=log)
        world.leave()
    return run


def resume(run_dir: str | Path, epochs: int | None = None, log=None) -> Path:
    """Continue a run where it stopped (after its last finished epoch, or the step where
    Ctrl-C stopped it); with a fixed seed it ends as an uninterrupted run. A run stopped
    before its first epoch finished is trained from the start."""
    run = Path(run_dir)
    saved = read_config(run)
    remove_temporaries(run, RUN_FILES | {saved["spec"]})
    state_path = run / "resume.pt"
    state = read_resume_state(state_path) if state_path.is_file() else None
    for name in ("best.safetensors", "last.safetensors"):
        check_weights_file(run / name)
    config = TrainConfig.from_dict(saved["options"])
    if epochs is not None:
        config.epochs = epochs
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
        run = _go_on(setup, state, state_path, log)
        world.leave()
    return run


def _go_on(setup, state: dict | None, state_path: Path, log) -> Path:
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
    return run_epochs(setup, position, state.get("health"), log=log)
