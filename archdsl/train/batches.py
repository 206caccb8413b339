"""An epoch's batches: how many steps the training images make at --batch-size, whether the
last partial batch is trained on or left out, and the lines that say so.

The last partial batch is left out only when it is a small part of the epoch (at most 2% of
its images), as large data sets always had it: the digits leave 18 of 1,618 out, ImageNet 143
of 1,281,167. A larger one is trained on, so that a data set of a few hundred images is not
cut by a seventh each epoch; with several workers it is split evenly over them (the few
images that do not divide are left out), and each worker's part holds at least two images:
batch norm has no batch statistics in a batch of one. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

LEFT_OUT_AT_MOST = 0.02  # the share of an epoch's images a left-out last batch may hold
FEW_STEPS = 8  # an epoch of fewer steps is a small data set for its batch: suggest a smaller one
SMALLEST_SUGGESTED = 8  # the smallest batch suggested


@dataclass(frozen=True)
class EpochPlan:
    """The batches of one epoch of `images` training images (draws, with --sampler balanced)
    at the global batch `batch` over `world` workers; `last` is how many images of the last,
    partial, global batch are trained on (0: it is left out, or there is none)."""

    images: int
    batch: int
    world: int = 1
    last: int = 0

    @property
    def whole(self) -> bool:
        """The training set is less than one batch: every image, one step an epoch."""
        return self.images < self.batch

    @property
    def full(self) -> int:
        """The full batches of an epoch."""
        return 0 if self.whole else self.images // self.batch

    @property
    def steps(self) -> int:
        return 1 if self.whole else self.full + (1 if self.last else 0)

    @property
    def smallest(self) -> int:
        """The fewest images a worker's batch holds."""
        if self.whole:
            return self.images // self.world
        return min(self.batch, self.last or self.batch) // self.world

    @property
    def left_out(self) -> int:
        """The images of each epoch's order that no step trains on."""
        return 0 if self.whole else self.images - self.full * self.batch - self.last

    def line(self) -> str:
        """What the run says at its start: `25 steps an epoch of 64 images; 18 images (1.1%)
        left out of each epoch, others each time`."""
        per = (f" ({self.batch // self.world} on each of {self.world} workers)"
               if self.world > 1 else "")
        if self.whole:
            text = (f"1 step an epoch, of all {_count(self.images, 'training image')} (fewer "
                    f"than --batch-size {self.batch})")
        elif self.last:
            text = (f"{self.steps} steps an epoch: {self.full} of {self.batch} images{per} and "
                    f"a last one of {self.last}")
        else:
            text = (f"{_count(self.steps, 'step')} an epoch of "
                    f"{_count(self.batch, 'image')}{per}")
        if self.left_out:
            share = self.left_out / self.images
            shown = f"{share:.1%}" if share >= 0.001 else "under 0.1%"
            text += (f"; {_count(self.left_out, 'image')} ({shown}) left out of each epoch, "
                     "others each time")
        smaller = self.suggestion()
        if smaller:
            text += (f"; few steps for so small a data set: --batch-size {smaller.batch} "
                     f"makes {smaller.steps}")
        return text

    def advice(self) -> str:
        """What the run's last line adds for a data set small for its batch: the smaller
        --batch-size to try; empty when there is none to give."""
        smaller = self.suggestion()
        if smaller is None:
            return ""
        return (f"; with only {_count(self.steps, 'step')} an epoch, try --batch-size {smaller.batch} "
                f"({smaller.steps} steps an epoch)")

    def suggestion(self) -> EpochPlan | None:
        """For an epoch of fewer than FEW_STEPS steps: the plan of the largest power-of-two
        batch (a multiple of the workers, at least SMALLEST_SUGGESTED and two images a
        worker) that makes at least FEW_STEPS, or else of the smallest such batch; None when
        the epoch has steps enough, or no smaller batch makes more."""
        floor = max(SMALLEST_SUGGESTED, 2 * self.world)
        if self.steps >= FEW_STEPS or self.batch <= floor:
            return None
        size, best = 1 << (self.batch - 1).bit_length() - 1, None  # below the batch
        while size >= floor:
            if size % self.world == 0:
                best = plan_epoch(self.images, size, self.world)
                if best.steps >= FEW_STEPS:
                    break
            size //= 2
        return best if best is not None and best.steps > self.steps else None


def plan_epoch(images: int, batch: int, world: int = 1, keep_last: bool = True) -> EpochPlan:
    """The batches of an epoch (the module's doc says the rule). `keep_last=False` leaves the
    last partial batch out whatever its size, as runs made before the rule did: resuming one
    goes on with the batches it was started with."""
    last = 0
    if keep_last and images > batch:
        partial = images % batch
        kept = partial - partial % world
        if kept // world >= 2 and partial > LEFT_OUT_AT_MOST * images:
            last = kept
    return EpochPlan(images, batch, world, last)


def _count(n: int, word: str) -> str:
    """`1 image`, `18 images`."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
