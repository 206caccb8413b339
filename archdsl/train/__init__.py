"""Training a spec on images.

config.py     TrainConfig and LaunchConfig: every option, declared once (the CLI's come from it)
data.py       the built-in digits, synthetic images, image folders
table_data.py CSV and TSV data sets of `path,label` rows
images.py     the CPU pipeline: datasets, transforms, normalisation, the training order
pipeline.py   the decoded-image cache and the augmentation on the GPU
setup.py      a run prepared: spec and data checked, loaders, model, optimizer, run folder
loop.py       the epoch loop: steps, validation, Ctrl-C, non-finite losses
state.py      checkpoints: resume.pt, writing an epoch's files as one, reading them back
run.py        train() and resume()
inference.py  validation, and a finished run's eval and predict
eval_report.py, gallery.py   eval's table and JSON, and its most confidently wrong images
image_files.py               predict's folders of images and its CSV
transfer.py   --init: weights mapped onto the spec by structure, --freeze
distributed.py, run_folder.py, interrupt.py, health.py, progress.py, plots.py, errors.py

The package's names are imported on first use, so that `archdsl.train.config` (which the
command line reads for every command) does not import torch.
"""

from importlib import import_module

_HOMES = {"train": ".run", "resume": ".run", "evaluate_run": ".inference",
          "predict": ".inference", "TrainConfig": ".config", "TrainError": ".errors",
          "DataError": ".data", "Interrupted": ".errors", "load_dataset": ".table_data"}

__all__ = ["train", "resume", "evaluate_run", "predict", "TrainConfig", "TrainError",
           "DataError", "Interrupted", "load_dataset"]


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name], __name__), name)
