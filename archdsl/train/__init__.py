"""Training a spec on images: data (data.py) and the training run (loop.py). Imports torch."""

from .data import DataError, load_dataset
from .loop import TrainConfig, TrainError, train

__all__ = ["train", "TrainConfig", "TrainError", "DataError", "load_dataset"]
