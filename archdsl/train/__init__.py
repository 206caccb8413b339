"""Training a spec on images: data (data.py), the run (loop.py), its folder and checkpoints
(run_folder.py), Ctrl-C (interrupt.py), gradient health (health.py), progress (progress.py),
plots (plots.py) and the errors reported as messages (errors.py). Imports torch."""

from .data import DataError, load_dataset
from .errors import Interrupted, TrainError
from .loop import TrainConfig, evaluate_run, predict, resume, train

__all__ = ["train", "resume", "evaluate_run", "predict", "TrainConfig", "TrainError",
           "DataError", "Interrupted", "load_dataset"]
