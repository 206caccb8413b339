"""A model's accuracy on images: validation during a run, and a finished run's `eval` and
`predict`."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..flow import main_output
from .data import DataError, Sample, decode, printable, quiet_decoding, unreadable
from .table_data import load_dataset
from .distributed import World
from .errors import TrainError
from .gallery import SIZE, confidently_wrong
from .images import ImageSet, eval_transform
from .interrupt import StopRequest
from .run_folder import read_config


def evaluate(model, loader, device, loss_fn, num_classes: int, amp=None,
             stop: StopRequest | None = None, world: World | None = None,
             prepare=None, keep: list | None = None) -> dict | None:
    """Loss, top-1, top-5 and the confusion matrix (rows: true class, columns: predicted);
    None when `stop` is requested part-way. With several workers, each evaluates its share
    of the images and the sums are added up over the workers. With `keep` (eval, not
    training), each batch's (softmax probability of the predicted class, predicted class) is
    appended to it, on the CPU, in the loader's order."""
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
                out = main_output(model(x))
            out = out.float()
            loss_sum += float(loss_fn(out, y)) * len(y)
            k = min(5, out.shape[1])
            best = out.topk(k, dim=1).indices
            top1 += int((best[:, 0] == y).sum())
            top5 += int((best == y[:, None]).any(dim=1).sum())
            total += len(y)
            if keep is not None:
                keep.append((torch.softmax(out, dim=1).gather(1, best[:, :1])[:, 0].cpu(),
                             best[:, 0].cpu()))
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
    wanted = (len(saved["classes"]),) + (tuple(saved["input"][1:])
                                         if saved.get("task") == "segment" else ())
    if network.output_shape != wanted or list(network.input_shape) != saved["input"]:
        raise TrainError(f"{run / 'config.json'} does not match the run's spec (its classes or "
                         "input shape were changed); it cannot be used")
    model = network.to_torch().eval()
    path = Path(weights) if weights not in ("best", "last") else run / f"{weights}.safetensors"
    fit_state(network, model, read_state(path), f"the checkpoint {path}")
    return network, model, saved


def _held_out_folder(dataset: str, classes: list[str]) -> str:
    """DATA/val (or test/) when DATA holds that folder alone, without train/: evaluating on
    it is what `DATA/val/<class>/` means (the run's classes are not called val)."""
    from .data import VAL_NAMES

    root = Path(dataset)
    if not root.is_dir():
        return dataset
    folders = [e for e in root.iterdir() if e.is_dir() and not e.name.startswith(".")]
    if len(folders) == 1 and folders[0].name.lower() in VAL_NAMES and \
            folders[0].name not in classes:
        return str(folders[0])
    return dataset


def evaluate_run(run_dir, dataset: str, weights: str = "best", batch_size: int = 64,
                 gallery_size: int = SIZE) -> dict:
    """Loss, top-1, top-5, per-class accuracy and confusion matrix of a run on a data set:
    its val/ (or test/) folder, every image of a class folder, or the run's own split of
    the built-in digits. Each image's path (`DATASET #i` for built-in images), label,
    predicted class and its probability are kept too, and the `gallery_size` most
    confidently wrong images (gallery.confidently_wrong) picked."""
    network, model, saved = load_run(run_dir, weights)
    if saved.get("task") == "segment":
        from .seg_inference import evaluate_run_masks

        return {"task": "segment", **evaluate_run_masks(network, model, saved, dataset,
                                                        batch_size, gallery_size)}
    channels = saved["input"][0]
    dataset = _held_out_folder(dataset, saved["classes"])
    data = load_dataset(dataset, saved["options"].get("val_split", 0.1),
                        saved["options"].get("seed", 0), channels)
    if data.task == "segment":
        raise DataError(f"{data.source} holds images with masks, and the run classifies whole "
                        "images: give a folder of class folders (or its val/ folder)")
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
    kept: list = []
    result = evaluate(model, loader, torch.device("cpu"), nn.CrossEntropyLoss(),
                      len(saved["classes"]), keep=kept)
    paths = [printable(s.path) if s.path is not None else f"{dataset} #{i}"
             for i, s in enumerate(samples)]
    labels = [s.label for s in samples]
    confidence = torch.cat([c for c, _ in kept]).tolist()
    predicted = torch.cat([p for _, p in kept]).tolist()
    result.update(per_class=per_class_scores(result["confusion"], saved["classes"]),
                  classes=saved["classes"], skipped=data.skipped, samples=samples, paths=paths,
                  warnings=list(data.warnings),
                  labels=labels, predicted=predicted, confidence=confidence,
                  wrong=sum(y != p for y, p in zip(labels, predicted)),
                  confidently_wrong=confidently_wrong(labels, predicted, confidence, paths,
                                                      saved["classes"], gallery_size))
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


class UnlabelledSet(torch.utils.data.Dataset):
    """Image files decoded as they are read, through `transform`: (image, problem), where
    `problem` says why a file could not be read (its image is then zeros of `shape`) and is
    empty for an image that was."""

    def __init__(self, paths: list[str], shape: list[int], transform):
        self.paths, self.shape, self.transform = paths, shape, transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        path = Path(self.paths[i])
        try:
            with quiet_decoding():
                return self.transform(decode(Sample(0, path=path), self.shape[0])), ""
        except DataError:
            raise  # the run's channels, not the file, are at fault
        except Exception as exc:  # noqa: BLE001 - one unreadable image does not stop the rest
            return torch.zeros(self.shape), f"cannot read it as an image ({unreadable(exc, path)})"


def predict(run_dir, images: list[str], top: int = 5, weights: str = "best",
            batch_size: int = 64, out: str | Path | None = None, force: bool = False):
    """For each image (a folder stands for its images: image_files.find_images): its name
    (printable: bytes that are not UTF-8 escaped, as `\\xff`), and the top classes with their
    softmax probabilities, or why it could not be read. Images go through the model
    `batch_size` at a time. A segmentation run writes each image's mask and overlay into
    `out` (default DIR/predictions) instead: seg_inference.predict_masks."""
    from .config import PREDICT_BATCH, TOP
    from .image_files import find_images

    problem = TOP.problem(top) or PREDICT_BATCH.problem(batch_size)
    if problem:
        raise TrainError(problem)
    paths = find_images(list(images))
    _, model, saved = load_run(run_dir, weights)
    if saved.get("task") == "segment":
        from .seg_inference import predict_masks

        folder = Path(out) if out is not None else Path(run_dir) / "predictions"
        return predict_masks(model, saved, paths, folder, force)
    loader = torch.utils.data.DataLoader(
        UnlabelledSet(paths, saved["input"], eval_transform(saved)), batch_size=batch_size)
    results, names = [], iter(paths)
    with torch.no_grad():
        for x, problems in loader:
            probs = torch.softmax(main_output(model(x)).float(), dim=1)
            values, indices = probs.topk(min(top, probs.shape[1]), dim=1)
            for problem, v, i in zip(problems, values.tolist(), indices.tolist()):
                best = None if problem else [(saved["classes"][c], p) for p, c in zip(v, i)]
                results.append((printable(next(names)), best, problem or None))
    return results
