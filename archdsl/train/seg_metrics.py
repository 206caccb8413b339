"""Segmentation's scores, counted per pixel: the confusion matrix a training epoch or an
`archdsl eval` adds each batch into, and the numbers read off it (pixel accuracy, mean IoU,
each class's IoU and accuracy), as torchvision's references/segmentation/utils.py counts them.

The confusion's rows are the true class and its columns the predicted one; a pixel whose
label is the ignore index (255), or any other label outside the classes, is left out of every
count. The matrix is a plain LongTensor on the batches' device: processes add theirs with an
all-reduce, and `scores` reads it on the CPU.

The mean IoU is the mean over the classes that occur in the truth or the prediction: where
torchvision's reference takes the mean of all classes (NaN as soon as one class is absent
from the data evaluated), an absent class here has no IoU (None) and is left out of the
mean, as a NaN is by a nanmean. A class that is predicted but never true has an IoU of 0,
and counts.
"""

from __future__ import annotations

import math

import torch

from .seg_masks import IGNORE  # the label of pixels no class is scored on (VOC's boundaries)


def predicted_classes(logits_or_pred: torch.Tensor) -> torch.Tensor:
    """The predicted class of each pixel, N×H×W: the argmax over the classes of N×C×H×W
    logits (or probabilities), or the given N×H×W (or H×W) class indices as they are."""
    if logits_or_pred.is_floating_point():
        if logits_or_pred.dim() != 4:
            raise ValueError("segmentation logits must be N×C×H×W, got a tensor of shape "
                             f"{tuple(logits_or_pred.shape)}")
        return logits_or_pred.argmax(1)
    return logits_or_pred


def _pairs(pred: torch.Tensor, target: torch.Tensor, classes: int, ignore: int):
    """The scored pixels' true and predicted classes, flat, as int64, and the mask that chose
    them (the shape of `target`): pixels labelled `ignore` or outside 0..classes-1 are out."""
    if pred.shape != target.shape:
        raise ValueError(f"the prediction's shape {tuple(pred.shape)} differs from the "
                         f"masks' {tuple(target.shape)}")
    target = target.long()
    keep = (target >= 0) & (target < classes) & (target != ignore)
    return target, pred.long(), keep


def confusion_update(confusion: torch.Tensor, logits_or_pred: torch.Tensor,
                     target: torch.Tensor, ignore: int = IGNORE) -> torch.Tensor:
    """Add a batch's pixels to `confusion` (C×C, int64; rows: true class, columns: predicted)
    in place and return it. `logits_or_pred`: N×C×H×W logits or N×H×W class indices;
    `target`: the N×H×W labels. One bincount on the tensors' device, no copy to the CPU."""
    classes = confusion.shape[0]
    truth, pred, keep = _pairs(predicted_classes(logits_or_pred), target, classes, ignore)
    cells = truth[keep] * classes + pred[keep].clamp(0, classes - 1)
    counts = torch.bincount(cells, minlength=classes * classes)
    confusion += counts.view(classes, classes).to(confusion.device, confusion.dtype)
    return confusion


def _share(part, whole) -> float | None:
    return part / whole if whole else None


def _mean(values) -> float:
    """The mean of the values that are not None; NaN when there are none."""
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else math.nan


def scores(confusion) -> dict:
    """What a confusion matrix (rows: true class) says, as Python numbers:
    pixel_acc (the share of scored pixels predicted right; NaN without any), miou (the mean
    IoU over the classes in the truth or the prediction; NaN without any), mean_acc (the mean
    accuracy over the classes in the truth), and per class, in the matrix's order: iou
    (right / (true + predicted - right); None for a class neither true nor predicted anywhere),
    acc (right / true; None for a class with no true pixel) and pixels (its true pixels)."""
    counts = torch.as_tensor(confusion).detach().to("cpu", torch.float64)
    right = counts.diagonal()
    true, called = counts.sum(1), counts.sum(0)
    union = true + called - right
    iou = [_share(r, u) for r, u in zip(right.tolist(), union.tolist())]
    acc = [_share(r, t) for r, t in zip(right.tolist(), true.tolist())]
    total = counts.sum().item()
    return {"pixel_acc": right.sum().item() / total if total else math.nan,
            "miou": _mean(iou), "mean_acc": _mean(acc), "iou": iou, "acc": acc,
            "pixels": [int(t) for t in true.tolist()]}


def per_class(confusion, classes: list[str]) -> dict:
    """`scores`' per-class numbers by class name, as the eval result holds them:
    {name: {"iou", "acc", "pixels"}}."""
    s = scores(confusion)
    return {name: {"iou": s["iou"][i], "acc": s["acc"][i], "pixels": s["pixels"][i]}
            for i, name in enumerate(classes)}


def per_image_iou(pred: torch.Tensor, target: torch.Tensor, classes: int,
                  ignore: int = IGNORE) -> torch.Tensor:
    """Each image's mean IoU (a float tensor of N, on the tensors' device) over the classes in
    its truth or its prediction, its ignored pixels left out: the score that orders the
    gallery of worst segmentations. `pred`: N×C×H×W logits or N×H×W class indices;
    `target`: N×H×W labels. An image with no scored pixel has NaN."""
    truth, predicted, keep = _pairs(predicted_classes(pred), target, classes, ignore)
    n = truth.shape[0]
    image = torch.arange(n, device=truth.device).view(n, *([1] * (truth.dim() - 1)))
    cells = (image * classes + truth) * classes + predicted.clamp(0, classes - 1)
    counts = torch.bincount(cells[keep], minlength=n * classes * classes)
    counts = counts.view(n, classes, classes).double()
    right = counts.diagonal(dim1=1, dim2=2)
    union = counts.sum(2) + counts.sum(1) - right
    present = union > 0
    iou = torch.where(present, right / union.clamp(min=1), torch.zeros_like(right))
    return (iou.sum(1) / present.sum(1)).float()  # 0/0: NaN for an image with nothing scored
