"""A model's accuracy on images: validation during a run, and a finished run's `eval` and
`predict`."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .data import DataError, Sample, decode, printable, quiet_decoding, unreadable
from .table_data import load_dataset
from .distributed import World
from .errors import TrainError
from .images import ImageSet, eval_transform
from .interrupt import StopRequest
from .run_folder import read_config


def evaluate(model, loader, device, loss_fn, num_classes: int, amp=None,
             stop: StopRequest | None = None, world: World | None = None,
             prepare=None) -> dict | None:
    """Loss, top-1, top-5 and the confusion matrix (rows: true class, columns: predicted);
    None when `stop` is requested part-way. With several workers, each evaluates its share
    of the images and the sums are added up over the workers."""
    model.eval()
    total, loss_sum, top1, top5 = 0, 0.0, 0, 0
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    with torch.no_grad():
        for x, y in loader:
            if stop is not None and stop.requested:
                return None
            x, y = x.to(device), y.to(device)
            if prepare is not None:  # uint8 images, resized and normalised on the device
                x = prepare(x)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                out = model(x)
            out = out.float()
            loss_sum += float(loss_fn(out, y)) * len(y)
            k = min(5, out.shape[1])
            best = out.topk(k, dim=1).indices
            top1 += int((best[:, 0] == y).sum())
            top5 += int((best == y[:, None]).any(dim=1).sum())
            total += len(y)
            confusion += torch.bincount(y.cpu() * num_classes + best[:, 0].cpu(),
                                        minlength=num_classes ** 2).view(num_classes, num_classes)
    if world is not None and world.several:
        sums = torch.cat([torch.tensor([loss_sum, top1, top5, total], dtype=torch.float64),
                          confusion.flatten().double()]).to(device)
        sums = world.sum_(sums).cpu()
        loss_sum, top1, top5, total = float(sums[0]), int(sums[1]), int(sums[2]), int(sums[3])
        confusion = sums[4:].round().long().view(num_classes, num_classes)
    nan = float("nan")
    return {"loss": loss_sum / total if total else nan, "acc": top1 / total if total else nan,
            "top5": top5 / total if total else nan, "confusion": confusion, "count": total}


def load_run(run_dir: str | Path, weights: str = "best"):
    """The compiled model of a finished run with its weights, and its config.json."""
    from ..checkpoints import fit_state, read_state
    from ..network import load

    run = Path(run_dir)
    saved = read_config(run)
    network = load(run / saved["spec"], **saved["parameters"])
    if network.output_shape != (len(saved["classes"]),) or \
            list(network.input_shape) != saved["input"]:
        raise TrainError(f"{run / 'config.json'} does not match the run's spec (its classes or "
                         "input shape were changed); it cannot be used")
    model = network.to_torch().eval()
    path = Path(weights) if weights not in ("best", "last") else run / f"{weights}.safetensors"
    fit_state(network, model, read_state(path), f"the checkpoint {path}")
    return network, model, saved


def evaluate_run(run_dir, dataset: str, weights: str = "best", batch_size: int = 64) -> dict:
    """Loss, top-1, top-5, per-class accuracy and confusion matrix of a run on a data set:
    its val/ (or test/) folder, every image of a class folder, or the run's own split of
    the built-in digits."""
    network, model, saved = load_run(run_dir, weights)
    channels = saved["input"][0]
    data = load_dataset(dataset, saved["options"].get("val_split", 0.1),
                        saved["options"].get("seed", 0), channels)
    if data.split == "val_split" and not data.source.startswith("digits"):
        samples = data.train + data.val  # a class folder given to eval is a test set
    else:
        samples = data.val
    index = {c: i for i, c in enumerate(saved["classes"])}
    unknown = [c for c in data.classes if c not in index]
    if unknown:
        raise DataError(f"{dataset} has classes the run never saw: {', '.join(unknown[:5])}")
    if not samples:
        where = "val/ (or test/) folder" if data.split != "val_split" else "validation split"
        raise DataError(f"{data.source} has no images to evaluate on (its {where} holds none); "
                        "give a folder with val/<class>/ images, or a folder of class folders")
    for smp in samples:
        smp.label = index[data.classes[smp.label]]
    loader = torch.utils.data.DataLoader(ImageSet(samples, channels, eval_transform(saved)),
                                         batch_size=batch_size)
    result = evaluate(model, loader, torch.device("cpu"), nn.CrossEntropyLoss(),
                      len(saved["classes"]))
    result.update(per_class=per_class_scores(result["confusion"], saved["classes"]),
                  classes=saved["classes"], skipped=data.skipped)
    return result


def per_class_scores(confusion, classes: list[str]) -> dict:
    """For each class (confusion's rows: true class, columns: predicted): its images, accuracy
    (= recall: the share of its images predicted as it), precision (the share of the images
    predicted as it that are it) and F1 (their harmonic mean); None where a share has no
    images to be taken of."""
    scores = {}
    for i, name in enumerate(classes):
        right, n, called = int(confusion[i, i]), int(confusion[i].sum()), int(confusion[:, i].sum())
        recall = right / n if n else None
        precision = right / called if called else None
        f1 = (2 * precision * recall / (precision + recall) if precision and recall else
              (0.0 if precision is not None and recall is not None else None))
        scores[name] = {"images": n, "acc": recall, "precision": precision, "recall": recall,
                        "f1": f1}
    return scores


def predict(run_dir, images: list[str], top: int = 5, weights: str = "best"):
    """For each image: its name (printable: bytes that are not UTF-8 escaped, as `\\xff`),
    and the top classes with their softmax probabilities, or why it could not be read."""
    from .config import TOP

    problem = TOP.problem(top)
    if problem:
        raise TrainError(problem)
    _, model, saved = load_run(run_dir, weights)
    transform = eval_transform(saved)
    results = []
    for path in images:
        name = printable(path)
        try:
            with quiet_decoding():
                x = transform(decode(Sample(0, path=Path(path)), saved["input"][0]))[None]
        except Exception as exc:  # noqa: BLE001 - one unreadable image does not stop the rest
            reason = unreadable(exc, Path(path))
            results.append((name, None, f"cannot read it as an image ({reason})"))
            continue
        with torch.no_grad():
            probs = torch.softmax(model(x).float(), dim=1)[0]
        k = min(top, len(probs))
        values, indices = probs.topk(k)
        results.append((name, [(saved["classes"][int(i)], float(v))
                               for v, i in zip(values, indices)], None))
    return results

