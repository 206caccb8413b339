"""A segmentation model on images with masks: validation during a run, and a finished run's
`eval` (per-class IoU, the confusion of pixels, the worst images) and `predict` (a mask PNG
and an overlay per image)."""

from __future__ import annotations

import numpy as np
from pathlib import Path

import torch

from ..flow import main_output
from .data import DataError, printable
from .errors import TrainError, TrainUsageError
from .seg_images import IGNORE, SegImageSet, joint_transforms
from .seg_metrics import confusion_update, per_image_iou, scores


def evaluate_masks(model, loader, device, loss_fn, classes: int, amp=None, stop=None,
                   world=None, prepare=None, ious: list | None = None) -> dict | None:
    """Loss (per image), pixel accuracy, mean IoU and the confusion of labelled pixels (rows:
    true class, columns: predicted), as seg_metrics.scores reads it; None when `stop` is
    requested part-way. Several workers each measure their share and the sums are added.
    With `ious` (eval), each image's own mean IoU is appended to it, in the loader's order."""
    model.eval()
    images, loss_sum = 0, 0.0
    confusion = torch.zeros(classes, classes, dtype=torch.long, device=device)
    with torch.no_grad():
        for x, y in loader:
            if stop is not None and stop.requested:
                return None
            x, y = x.to(device), y.to(device)
            if prepare is not None:  # uint8 images and masks, resized on the device
                x, y = prepare(x, y)
            y = y.long()
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                out = main_output(model(x))
            out = out.float()
            if bool((y != IGNORE).any()):  # a batch with no labelled pixel has no loss
                loss_sum += float(loss_fn(out, y)) * len(y)
            predicted = out.argmax(1)
            confusion_update(confusion, predicted, y, ignore=IGNORE)
            if ious is not None:
                ious += per_image_iou(predicted, y, classes, ignore=IGNORE).tolist()
            images += len(y)
    sums = torch.cat([torch.tensor([loss_sum, images], dtype=torch.float64, device=device),
                      confusion.flatten().double()])
    if world is not None and world.several:
        sums = world.sum_(sums)
    sums = sums.cpu()
    loss_sum, images = float(sums[0]), int(sums[1])
    confusion = sums[2:].round().long().view(classes, classes)
    result = scores(confusion)
    result.update(loss=loss_sum / images if images else float("nan"),
                  acc=result["pixel_acc"], confusion=confusion, count=images)
    return result


def eval_samples(data, dataset: str, classes: list[str]):
    """The samples `archdsl eval` measures: a data set's val/ (or test/) part, every image of
    one images/ + masks/ folder or a table without splits (a test set), or the run's own
    validation split of a built-in set. DataError for classes the run never saw."""
    unknown = [c for c in data.classes if c not in classes]
    if unknown:
        raise DataError(f"{dataset} has classes the run never saw: {', '.join(unknown[:5])}; "
                        "give masks labelled with the run's classes "
                        f"({', '.join(classes[:8])}{' …' if len(classes) > 8 else ''})")
    samples = data.train + data.val if data.split == "val_split" and data.root is not None \
        else data.val
    if not samples:
        raise DataError(f"{data.source} has no images to evaluate on (its val/ or test/ part "
                        "holds none); give a folder with images/ and masks/, or one with "
                        "val/images/ and val/masks/")
    return samples


def evaluate_run_masks(network, model, saved: dict, dataset: str, batch_size: int = 64,
                       gallery_size: int = 8) -> dict:
    """A segmentation run's loss, pixel accuracy, mean IoU, per-class IoU and confusion on a
    data set (seg_report.py's `result`), with the `gallery_size` images of lowest IoU drawn
    from: {path, iou, image, truth, predicted} at the network's input size."""
    from .seg_metrics import per_class
    from .seg_pictures import worst_images
    from .table_data import load_dataset

    classes, (channels, *size) = saved["classes"], saved["input"]
    data = load_dataset(dataset, saved["options"].get("val_split", 0.1),
                        saved["options"].get("seed", 0), channels)
    if data.task != "segment":
        raise DataError(f"{data.source} has no masks, and the run labels pixels: give images "
                        "with masks (a folder with images/ and masks/, or val/ holding them)")
    samples = eval_samples(data, dataset, classes)
    norm = saved["normalisation"]
    tf = joint_transforms(tuple(size), norm["mean"], norm["std"], False, False, False)
    loader = torch.utils.data.DataLoader(
        SegImageSet(samples, channels, len(classes), tf, data.palette), batch_size=batch_size)
    ious: list = []
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=IGNORE)
    result = evaluate_masks(model, loader, torch.device("cpu"), loss_fn, len(classes),
                            ious=ious)
    paths = [printable(s.path) if s.path is not None else f"{dataset} #{i}"
             for i, s in enumerate(samples)]
    worst = worst_images(ious, paths, gallery_size)
    plain = SegImageSet(samples, channels, len(classes),
                        joint_transforms(tuple(size), None, None, False, False, False),
                        data.palette)
    for entry in worst:
        image, truth = plain[entry["index"]]
        x, _ = loader.dataset[entry["index"]]
        with torch.no_grad():
            predicted = main_output(model(x[None])).argmax(1)[0]
        entry.update(image=_pixels(image), truth=truth.numpy(),
                     predicted=predicted.to(torch.uint8).numpy())
    result.update(classes=classes, per_class=per_class(result["confusion"], classes),
                  worst=worst, skipped=data.skipped, warnings=list(data.warnings),
                  palette=saved.get("palette"))
    return result


def _pixels(image: torch.Tensor):
    """A float C x H x W image in 0..1 as uint8 H x W x 3 (or H x W) for drawing."""
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    return array[0].numpy() if array.shape[0] == 1 else array.permute(1, 2, 0).numpy()


def predict_masks(model, saved: dict, paths: list[str], out: Path, force: bool = False):
    """Each image's predicted mask at the image's own size (the class scores resized
    bilinearly from the network's output, then the most likely class per pixel), written to
    `out` as <stem>_mask.png (a palette PNG whose values are the class indices: a label image
    training reads back) and <stem>_overlay.png (the mask over the image); for each image
    (printable name, {class: share of its pixels} or None, problem or None, files). A file
    of those names that an earlier predict did not write is refused before anything is
    written, unless `force`."""
    from ..files import atomic_write
    from .data import Sample, decode, quiet_decoding, unreadable
    from .seg_pictures import PREDICT_MARKER, mask_png, overlay_png, palette

    classes, (channels, *size) = saved["classes"], saved["input"]
    colours = palette(len(classes), saved.get("palette"))
    norm = saved["normalisation"]
    tf = joint_transforms(tuple(size), norm["mean"], norm["std"], False, False, False)
    stems = _unique_stems(paths)
    _refuse_overwrite([out / f"{stem}_{what}.png" for stem in stems
                       for what in ("mask", "overlay")], force)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainError(f"cannot make the folder {out} for the masks ({exc.strerror}); give "
                         "--out a folder you can write to") from None
    results = []
    for path, stem in zip(paths, stems):
        try:
            with quiet_decoding():  # PIL decodes lazily: the pixels are read here
                image = decode(Sample(0, path=Path(path)), channels)
                pixels = np.asarray(image)
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 - one unreadable image does not stop the rest
            results.append((printable(path), None, "cannot read it as an image "
                            f"({unreadable(exc, Path(path))})", []))
            continue
        x, _ = tf(image, np.zeros((image.height, image.width), np.uint8))
        with torch.no_grad():
            scores_ = main_output(model(x[None])).float()
            scores_ = torch.nn.functional.interpolate(scores_, size=(image.height, image.width),
                                                      mode="bilinear", align_corners=False)
        mask = scores_.argmax(1)[0].to(torch.uint8).numpy()
        files = [out / f"{stem}_mask.png", out / f"{stem}_overlay.png"]
        pngs = [mask_png(mask, colours, software=PREDICT_MARKER),
                overlay_png(pixels, mask, colours, software=PREDICT_MARKER)]
        for file, png in zip(files, pngs):
            atomic_write(file, lambda tmp, png=png: Path(tmp).write_bytes(png))
        shares = np.bincount(mask.ravel(), minlength=len(classes)) / mask.size
        results.append((printable(path), {c: float(v) for c, v in zip(classes, shares) if v},
                        None, files))
    return results


def _refuse_overwrite(files: list[Path], force: bool) -> None:
    from .seg_pictures import PREDICT_MARKER, marked

    if force:
        return
    theirs = [f for f in files if f.exists() and not (f.is_file() and marked(f, PREDICT_MARKER))]
    if theirs:
        raise TrainUsageError(f"{theirs[0]} exists and was not written by archdsl predict"
                              + (f" ({len(theirs) - 1} more such)" if len(theirs) > 1 else "")
                              + "; choose another --out folder, or add --force to replace them")


def _unique_stems(paths: list[str]) -> list[str]:
    """A file stem per image, numbered where two images share one (a/x.png, b/x.jpg)."""
    seen: dict[str, int] = {}
    stems = []
    for path in paths:
        stem = Path(path).stem
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return stems
