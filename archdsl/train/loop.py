"""The epoch loop of a prepared run: each step trains on one global batch (summed over the
workers), each epoch is validated and checkpointed; Ctrl-C saves the run after the current
step (interrupt.py), and a non-finite loss or gradient stops it naming the layer."""

from __future__ import annotations

import logging
import math
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from ..files import WriteError
from ..flow import weighted_loss
from .data import DataError, class_counts_line
from .errors import Interrupted, TrainError, on_every_worker
from .health import GradientHealth, first_non_finite_gradient, first_non_finite_layer
from .interrupt import StopRequest
from .progress import Progress
from .run_folder import resume_command, write_error
from .setup import Setup, unwrap
from .state import Position, checkpoint, kept, non_finite, save_part


# torch.compile's first step logs from here on a machine without CUDA ("No CUDA runtime is
# found, using CUDA_HOME=…"), a line with nothing for the user to do
_COMPILE_LOGGERS = ("torch.utils.cpp_extension",)


@contextmanager
def quiet_compile_logs():
    """Within: torch.compile's informational log lines are not printed."""
    loggers = [logging.getLogger(name) for name in _COMPILE_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def run_epochs(s: Setup, at: Position, health_state: dict | None, log) -> Path:
    """Train the prepared run from `at` to its last epoch, checkpointing each; the folder."""
    config, device, run, world = s.config, s.device, s.run, s.world
    if at.epoch == 1 and at.step == 0:
        log(f"training {s.network.name} ({s.network.params:,} params) on {s.data.source}: "
            f"{len(s.data.train)} train / {len(s.data.val)} val images, {len(s.data.classes)} "
            f"classes, {device}{', ' + str(s.amp).replace('torch.', '') if s.amp else ''}; "
            f"run folder {run}")
        if not s.task.masks:  # a segmentation sample has no one class
            log(class_counts_line(s.data))
        if s.plan is not None:
            log(s.plan.line())
        if config.sampler == "balanced":
            log(f"--sampler balanced: {len(s.order) * world.size:,} draws an epoch, with "
                "replacement, each class as often as the others")
    health = GradientHealth(s.network, unwrap(s.model))
    if health_state and health_state.get("sums") is not None:
        health.sums, health.steps = health_state["sums"].to(device), health_state["steps"]
    writer = _tensorboard(run) if config.tensorboard and world.main else None
    saved_at = at.epoch - 1  # the epoch of the checkpoint on disk
    if at.step == 0 and _out_of_patience(s, at.rows, log):  # a resumed run that had stopped
        at = type(at)(epoch=config.epochs + 1, rows=at.rows, best=at.best)
    try:
        # torchrun passes Ctrl-C on to its workers: a second SIGINT right after the first is
        # that, not a second press
        with StopRequest(grace=2.0 if world.several else 0.0, announce=world.main) as stop, \
                quiet_compile_logs():
            for epoch in range(at.epoch, config.epochs + 1):
                row, confusion = _epoch(s, epoch, at, health, stop)
                _check_weights(s, epoch, row)
                if row is None:  # Ctrl-C: save where the epoch stands, then stop
                    save_part(s, epoch, at, health)
                    raise on_every_worker(Interrupted(
                        f"interrupted in epoch {epoch} after step {at.step} of "
                        f"{len(s.train_loader)}; the run is saved. Continue it with: "
                        f"{resume_command(run)}"))
                improved = _record(s, at, row, health, log)
                checkpoint(s, epoch, at.rows, at.best, improved, confusion, log=log)
                saved_at = epoch
                _report(s, epoch, at, row, writer, log)
                if _out_of_patience(s, at.rows, log):
                    break
                if world.any(stop.requested, device) and epoch < config.epochs:
                    raise on_every_worker(Interrupted(
                        f"interrupted after epoch {epoch}; the run is saved. Continue it with: "
                        f"{resume_command(run)}"))
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted again before the run was saved; {kept(saved_at)} and "
                          f"nothing is half-written. Continue it with: {resume_command(run)}"
                          ) from None
    except WriteError as exc:
        raise write_error(exc, f"{kept(saved_at)}. Free some space (or fix the folder's "
                               f"permissions), then continue with: {resume_command(run)}"
                          ) from None
    except DataError as exc:  # an image that went missing or bad, in training or validation
        raise DataError(f"{_last_line(str(exc))} The run stopped; {kept(saved_at)}. Put the "
                        "file back (or remove it and start a new run), then continue with: "
                        f"{resume_command(run)}") from None
    finally:
        if writer is not None:
            writer.close()
    advice = s.plan.advice() if s.plan is not None else ""  # a smaller batch for small data
    if not s.data.val:
        log(f"no validation images; the last weights are in {run / 'best.safetensors'}{advice}")
    else:
        log(f"best {s.task.best_words} {at.best:.1%}; weights in {run / 'best.safetensors'}"
            f"{advice}")
    return run


def _out_of_patience(s: Setup, rows: list, log) -> bool:
    """--patience N: whether the last N epochs have not raised the best validation accuracy
    (mean IoU for segmentation: the task's `best`), so that the run stops; said once. Read
    from the rows alone, so a resume knows."""
    patience = s.config.patience
    if patience is None or not s.data.val or not rows or rows[-1]["epoch"] >= s.config.epochs:
        return False
    accuracies = [r[s.task.best] for r in rows]
    best = accuracies.index(max(accuracies))
    if len(rows) - 1 - best < patience:
        return False
    log(f"--patience {patience}: the {s.task.watched} has not improved for {patience} "
        f"epoch(s) (best {accuracies[best]:.1%}, epoch {rows[best]['epoch']}); stopping after "
        f"epoch {rows[-1]['epoch']} of {s.config.epochs}")
    return True


def _record(s: Setup, at: Position, row: dict, health: GradientHealth, log) -> bool:
    """Add a finished epoch's row and say its gradient warnings; whether it is the best."""
    at.rows.append(row)
    for warning in health.end_epoch():  # gradients are the same on every worker
        log(f"warning: {warning}")
    improved = not s.data.val or row[s.task.best] > at.best
    if improved:
        at.best = row[s.task.best] if s.data.val else -1.0
    return improved


def _report(s: Setup, epoch: int, at: Position, row: dict, writer, log) -> None:
    """After an epoch's checkpoint: start the next epoch afresh, TensorBoard's scalars and
    the line that says how it went."""
    at.step, at.partial = 0, Position().partial
    if writer is not None:
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "val_miou",
                    "lr"):
            if key in row:
                writer.add_scalar(key, row[key], epoch)
        writer.flush()
    log(f"epoch {epoch}/{s.config.epochs}  train loss {row['train_loss']:.4f} "
        f"acc {row['train_acc']:.1%}  val loss {row['val_loss']:.4f} "
        f"{s.task.line(row, len(s.data.classes))}  lr {row['lr']:.3g}  "
        f"{row['images_per_s']:.0f} img/s  {row['seconds']:.1f} s")


def _epoch(s: Setup, epoch: int, at: Position, health: GradientHealth, stop: StopRequest):
    """Train one epoch (from step `at.step`) and validate it: the metrics row and confusion
    matrix, or (None, None) when Ctrl-C stopped it; `at` then says where it stood."""
    config, world = s.config, s.world
    s.model.train()
    if s.frozen:  # after train(): frozen batch norm keeps its statistics
        from .transfer import set_frozen

        set_frozen(unwrap(s.model), s.frozen,
                   config.unfreeze_at is None or epoch < config.unfreeze_at)
    progress = Progress(f"epoch {epoch}/{config.epochs}", len(s.train_loader),
                        quiet=config.quiet or not world.main)
    progress.done = at.step
    epoch_order = s.generator.get_state()  # the shuffle of this epoch, for a resumed part
    s.order.skip = at.step * config.batch_size
    part = at.partial
    start = time.perf_counter() - part["seconds"]
    batches = iter(s.train_loader)  # draws the epoch's shuffle even when no batch is left
    stopping = world.any(stop.requested, s.device)  # every worker stops at the same step
    while True:
        # several workers stop where they agreed (the next step's sums carry Ctrl-C); one
        # process stops as soon as Ctrl-C came
        stopping = stopping or (stop.requested and not world.several)
        if stopping:
            break
        try:
            x, y = next(batches)
        except StopIteration:
            break
        loss_sum, correct, counted, seen, stops = _step(s, x, y, epoch, at, health, stop)
        part["seen"] += int(seen)
        part["counted"] = part.get("counted", part["seen"] - int(seen)) + int(counted)
        part["loss_sum"] += loss_sum
        part["correct"] += int(correct)
        part["seconds"] = time.perf_counter() - start
        stopping = stops > 0
        progress.update(loss=part["loss_sum"] / part["seen"],
                        acc=part["correct"] / max(part["counted"], 1),
                        rate=part["seen"] / max(part["seconds"], 1e-9))
    progress.close()
    s.order.skip = 0
    s.epoch_order = epoch_order
    if stopping:
        return None, None
    return _validated(s, epoch, part, time.perf_counter() - start, stop)


def _step(s: Setup, x, y, epoch: int, at: Position, health: GradientHealth, stop: StopRequest):
    """One training step on a batch: the loss, correct, image and Ctrl-C sums over the
    workers. Stops the run at a non-finite loss or gradient."""
    config, model, device, amp, world = s.config, s.model, s.device, s.amp, s.world
    if s.augment is not None:  # uint8 images: augmented and normalised on the device
        x = x.to(device, non_blocking=True)
        if s.task.masks:  # cropped and flipped with their images
            x, y = s.augment.train()(x, y.to(device, non_blocking=True))
        else:
            x = s.augment.train()(x)
    else:
        fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
        x = x.to(device, non_blocking=True, memory_format=fmt)
    y = target = y.to(device, non_blocking=True).long()
    if s.mix is not None:  # soft targets; accuracy against each image's larger share
        x, target = s.mix(x, y)
        y = target.argmax(1)
    with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
        out, loss = weighted_loss(model(x), target, s.loss_fn,  # aux outputs, weighted
                                  [o.aux for o in s.network.graph.outputs])
    s.optimizer.zero_grad(set_to_none=True)
    if s.scaler is not None:
        s.scaler.scale(loss).backward()
        s.scaler.unscale_(s.optimizer)
    else:
        loss.backward()
    health.record()
    # one sum over the workers and one sync per step: the loss and accuracy sums, whether
    # the gradients (the same on every worker, DDP averaged them) are finite, and Ctrl-C
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    grads_ok = (torch.isfinite(torch.stack(torch._foreach_norm(grads))).all().float()
                if s.scaler is None and grads  # fp16's scaler skips non-finite steps itself
                else torch.ones((), device=loss.device))
    correct, counted = s.task.step_sums(out.detach(), y)  # images, or labelled pixels
    sums = torch.stack([loss.detach().float() * len(y), correct, counted,
                        torch.full((), float(len(y)), device=loss.device), grads_ok,
                        torch.full((), float(stop.requested), device=loss.device)])
    loss_sum, correct, counted, seen, grads_ok, stops = world.sum_(sums).tolist()
    if not (math.isfinite(loss_sum) and grads_ok == world.size):
        _stop_non_finite(s, x, epoch, at.step + 1, loss_sum / max(seen, 1))
    if config.clip_grad:
        nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
    if s.scaler is not None:
        s.scaler.step(s.optimizer)
        s.scaler.update()
    else:
        s.optimizer.step()
    if s.ema is not None:
        s.ema.update_parameters(unwrap(model))
    s.schedule.step()
    at.step += 1
    return loss_sum, correct, counted, seen, stops


def _validated(s: Setup, epoch: int, part: dict, seconds: float, stop: StopRequest):
    """The epoch's metrics row and confusion matrix, or (None, None) if Ctrl-C stopped the
    validation of one process alone (several workers validate to the end: they must agree
    on where they stop)."""
    world = s.world
    loss_fn = s.loss_fn if getattr(s.loss_fn, "weight", None) is None else \
        s.task.loss(None, s.config)  # validation: unweighted
    model = s.ema.module if s.ema is not None else s.model  # --ema: the average is measured
    val = s.task.validate(model, s.val_loader, s.device, loss_fn, len(s.data.classes), s.amp,
                          None if world.several else stop, world,
                          s.augment.eval() if s.augment is not None else None)
    if val is None:
        return None, None
    seen = part["seen"]
    row = {"epoch": epoch, "train_loss": round(part["loss_sum"] / max(seen, 1), 6),
           "train_acc": round(part["correct"] / max(part.get("counted", seen), 1), 6),
           "val_loss": round(val["loss"], 6), **s.task.row(val),
           "lr": round(s.optimizer.param_groups[0]["lr"], 8),
           "images_per_s": round(seen / max(seconds, 1e-9), 1), "seconds": round(seconds, 3)}
    return row, val["confusion"]


def _last_line(message: str) -> str:
    """The message of an exception re-raised from a data-loader worker, without the worker's
    traceback that torch puts into it."""
    if "Original Traceback" not in message:
        return message
    return message.strip().splitlines()[-1].split(": ", 1)[-1]


def _kept_checkpoint(s: Setup, epoch: int) -> str:
    """What a run stopped in `epoch` by non-finite numbers keeps, in words (checkpoints are
    never written with non-finite values, so the one on disk is good)."""
    return (f"the last good checkpoint (epoch {epoch - 1}) is kept in {s.run}"
            if epoch > 1 and (s.run / "last.safetensors").exists()
            else "no epoch had finished, so no weights were kept")


def _check_weights(s: Setup, epoch: int, row: dict | None) -> None:
    """Stop, keeping the last checkpoint, when a step left the weights or buffers non-finite
    (the loss and gradients of every step were finite, the optimizer's update was not)."""
    where = non_finite(s) if s.world.main else ""
    if not s.world.any(bool(where), s.device):
        return
    val = f" (the validation loss was {row['val_loss']})" if row else ""
    raise on_every_worker(TrainError(
        f"the weights became non-finite (NaN or infinite) in epoch {epoch}{where}{val}; they "
        f"were not saved, and {_kept_checkpoint(s, epoch)}. Lower the learning rate (--lr), "
        "clip gradients (--clip-grad 1.0), or add normalisation (`bn`) to the spec"))


def _stop_non_finite(s: Setup, x, epoch: int, step: int, value: float) -> None:
    """Stop at a non-finite loss (naming the first layer whose output is not finite) or
    gradient (naming the parameter where it entered), keeping the last checkpoint."""
    left = _kept_checkpoint(s, epoch)
    if math.isfinite(value):
        at = first_non_finite_gradient(s.network, unwrap(s.model))
        what, where = f"the gradients became non-finite{at} (the loss was {value:.4g})", ""
    else:
        what = f"the loss became {value}"
        # SyncBatchNorm's forward pass would wait for the other workers
        where = ("" if s.config.sync_bn else
                 first_non_finite_layer(s.network, unwrap(s.model), x))
    raise on_every_worker(TrainError(
        f"{what} in epoch {epoch}, step {step}{where}; {left}. Lower the learning rate "
        "(--lr), clip gradients (--clip-grad 1.0), or add normalisation (`bn`) to the spec"))


def _tensorboard(run: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise TrainError("--tensorboard needs the tensorboard package: pip install tensorboard "
                         "(or install archdsl with its [tensorboard] extra)") from None
    return SummaryWriter(str(run / "tensorboard"))
