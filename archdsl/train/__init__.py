"""Training a spec on images: data (data.py), the run (loop.py), gradient health (health.py),
progress (progress.py) and plots (plots.py). Imports torch."""

from .data import DataError, load_dataset
from .loop import TrainConfig, TrainError, evaluate_run, predict, resume, train

__all__ = ["train", "resume", "evaluate_run", "predict", "TrainConfig", "TrainError",
           "DataError", "load_dataset"]
