"""Training a spec on images.

config.py     TrainConfig and LaunchConfig: every option, declared once (the CLI's come from it)
data.py       the built-in digits, synthetic images, image folders
table_data.py CSV and TSV data sets of `path,label` rows
images.py     the CPU pipeline: datasets, transforms, normalisation, the training order
batches.py    an epoch's batches: steps, the last partial batch kept or left out, the line
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
task.py       a class per image or per pixel: what differs between the two, in one place
seg_data.py, seg_masks.py, shapes.py       images with masks, and the built-in `shapes`
seg_images.py, seg_metrics.py, seg_inference.py, seg_report.py, seg_pictures.py
              segmentation's pipeline, IoU, validation, eval and predict, their pictures

Importing the package imports torch (its run, data and inference modules need it); the
command line declares `archdsl train`'s options only when that command is parsed, so the
other commands never import it.
"""

from .config import LaunchConfig, TrainConfig
from .data import DataError
from .errors import Interrupted, TrainError
from .inference import evaluate_run, predict
from .run import resume, train
from . import shapes
from .table_data import load_dataset

__all__ = ["train", "resume", "evaluate_run", "predict", "TrainConfig", "LaunchConfig",
           "TrainError", "DataError", "Interrupted", "load_dataset", "shapes"]
