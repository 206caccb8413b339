"""What a run learns, in one place: a class per image (Classification) or a class per pixel
(Segmentation). The data set says which (DataSet.task); the rest of training asks its task
for what differs: the output the spec must give, the loss, a step's accuracy sums, the
validation, the metrics of an epoch's row and line, and which of them picks the best
weights. Everything else (the loop, checkpoints, resume, several workers) is shared.
"""

from __future__ import annotations

import torch
from torch import nn

from .errors import TrainError, TrainUsageError


class Classification:
    """One label per image: accuracy over images, top-5, the best epoch by accuracy."""

    name = "classify"
    masks = False  # whether each image comes with a mask, moved with it by the augmentation
    best = "val_acc"  # the row's metric that picks best.safetensors and --patience
    best_words = "val accuracy"  # the last line's words for it, and --patience's
    watched = "validation accuracy"

    def check_output(self, network, data, spec_path) -> None:
        if network.output_shape != (len(data.classes),):
            raise TrainError(
                f"{spec_path}'s last layer gives {'x'.join(map(str, network.output_shape))} "
                f"outputs, but {data.source} has {len(data.classes)} classes; end the spec with "
                f"`linear {len(data.classes)}`, or `linear num_classes` with an `arch` parameter "
                "num_classes, which archdsl sets from the data")

    def check_options(self, config) -> None:
        """Options this task cannot take (none for classification)."""

    def loss(self, weights, config) -> nn.Module:
        return nn.CrossEntropyLoss(weight=weights, label_smoothing=config.label_smoothing)

    def class_sizes(self, data) -> tuple[list[int], str]:
        """Each class's share of the training data for --class-weights auto, and its unit."""
        return data.counts()["train"], "images"

    def step_sums(self, out, y) -> tuple[torch.Tensor, torch.Tensor]:
        """(correct, counted) of a training batch: images here."""
        return (out.argmax(1) == y).sum().float(), torch.full((), float(len(y)), device=y.device)

    def validate(self, model, loader, device, loss_fn, classes: int, amp, stop, world, prepare):
        from .inference import evaluate

        return evaluate(model, loader, device, loss_fn, classes, amp, stop=stop, world=world,
                        prepare=prepare)

    def row(self, val: dict) -> dict:
        return {"val_acc": round(val["acc"], 6), "val_top5": round(val["top5"], 6)}

    def line(self, row: dict, classes: int) -> str:
        from .units import top_k_shown

        top5 = f" top5 {row['val_top5']:.1%}" if top_k_shown(classes) else ""
        return f"acc {row['val_acc']:.1%}{top5}"


class Segmentation(Classification):
    """A label per pixel (255: none): pixel accuracy over the labelled pixels, mean IoU over
    the classes, the best epoch by mean IoU; an auxiliary output weighed as the spec says."""

    name = "segment"
    masks = True
    best = "val_miou"
    best_words = "val mean IoU"
    watched = "validation mean IoU"

    def check_output(self, network, data, spec_path) -> None:
        want = (len(data.classes), *network.input_shape[1:])
        if tuple(network.output_shape) != want:
            got = "x".join(map(str, network.output_shape))
            raise TrainError(
                f"{spec_path} gives {got}, but {data.source} is a segmentation data set of "
                f"{len(data.classes)} classes: the spec must give a score per class and pixel, "
                f"{'x'.join(map(str, want))}; end it with `conv num_classes k1` (an `arch` "
                "parameter num_classes, which archdsl sets from the data) at the input's size, "
                "or bring the scores back to it with `scores, image; resize mode=bilinear` "
                "(`-> image` after `input` names the image)")

    def check_options(self, config) -> None:
        refused = [(config.augment not in ("basic", "none"), f"--augment {config.augment}"),
                   (config.mixup is not None, "--mixup"), (config.cutmix is not None, "--cutmix"),
                   (config.sampler != "shuffle", f"--sampler {config.sampler}"),
                   (config.cache != "none", f"--cache {config.cache}")]
        given = [flag for bad, flag in refused if bad]
        if given:
            raise TrainUsageError(
                f"{', '.join(given)}: not for segmentation, whose masks must move with their "
                "images (a policy's colour changes, mixed labels, drawing by image class and the "
                "image-only cache do not); leave it out: the basic augmentation (a random "
                "resized crop, which also scales, and a flip) moves image and mask together")

    def loss(self, weights, config) -> nn.Module:
        from .seg_images import IGNORE

        return nn.CrossEntropyLoss(weight=weights, ignore_index=IGNORE,
                                   label_smoothing=config.label_smoothing)

    def class_sizes(self, data) -> tuple[list[int], str]:
        from .seg_images import pixel_counts

        return pixel_counts(data, len(data.classes)).tolist(), "pixels"

    def step_sums(self, out, y) -> tuple[torch.Tensor, torch.Tensor]:
        from .seg_images import IGNORE

        labelled = y != IGNORE
        return ((out.argmax(1) == y) & labelled).sum().float(), labelled.sum().float()

    def validate(self, model, loader, device, loss_fn, classes: int, amp, stop, world, prepare):
        from .seg_inference import evaluate_masks

        return evaluate_masks(model, loader, device, loss_fn, classes, amp, stop=stop,
                              world=world, prepare=prepare)

    def row(self, val: dict) -> dict:
        return {"val_acc": round(val["acc"], 6), "val_miou": round(val["miou"], 6)}

    def line(self, row: dict, classes: int) -> str:
        return f"pixel acc {row['val_acc']:.1%} mIoU {row['val_miou']:.1%}"


def task_of(data) -> Classification:
    """The task of a data set."""
    return Segmentation() if getattr(data, "task", "classify") == "segment" else Classification()
