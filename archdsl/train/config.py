"""The options of `archdsl train`, declared once.

TrainConfig's fields are what a run does (saved in config.json, read back by --resume);
LaunchConfig's say how `archdsl train` starts workers through torchrun. Each field carries an
Option: its flag, help, choices and valid range. The command line's argparse options, the
reading of their values (a value out of range is a usage error, said in one line), the
building of a config from the parsed arguments, and the launcher's list of its own flags are
all made from these declarations. Imports nothing heavy: every command builds the parser.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Callable

from ..errors import UsageError


class OptionError(UsageError):
    """A command-line value outside its option's range: a usage error (exit 2)."""


@dataclass(frozen=True)
class Option:
    """How one field appears on the command line, and which values it takes."""

    help: str
    type: type = str  # int, float, str; bool is a switch, list a repeatable option
    flag: str = ""  # default: --field-name
    choices: tuple = ()
    min: float | None = None  # inclusive bounds
    max: float | None = None
    above: float | None = None  # exclusive lower bound
    metavar: str | None = None
    many: bool = False  # a list option taking several values at once (--freeze A B)
    why: str = ""  # said after a value out of range
    check: Callable[[str], str | None] | None = None  # a problem with the value, in words
    aliases: tuple = ()  # (flag, value) pairs: another flag that sets this option to `value`

    def range_text(self) -> str:
        """The valid range in words: `above 0`, `from 0 to 1`, `at least 1`."""
        if self.above is not None:
            return f"above {_number(self.above)}"
        if self.min is not None and self.max is not None:
            return f"from {_number(self.min)} to {_number(self.max)}"
        if self.min is not None:
            return f"at least {_number(self.min)}"
        return f"at most {_number(self.max)}" if self.max is not None else ""

    def problem(self, value, given: str | None = None) -> str | None:
        """What is wrong with `value` (written `given` on the command line) for this option,
        in words; None when it is fine."""
        if value is None or self.type in (bool, list):
            return None
        shown = given if given is not None else value
        if self.type is float and not math.isfinite(value):
            return f"{self.flag} must be a finite number, got {shown}"
        if self.choices and value not in self.choices:
            words = ", ".join(self.choices[:-1]) + f" or {self.choices[-1]}"
            close = difflib.get_close_matches(str(value), self.choices, n=1)
            if close:
                return f"unknown {self.flag} {value!r}; did you mean {close[0]}? ({words})"
            return f"unknown {self.flag} {value!r}: {words}"
        low_ok = (self.min is None or value >= self.min) and \
            (self.above is None or value > self.above)
        if not (low_ok and (self.max is None or value <= self.max)):
            why = f": {self.why}" if self.why else ""
            return f"{self.flag} must be {self.range_text()}, got {shown}{why}"
        return self.check(value) if self.check is not None else None

    def parse(self, text: str):
        """The value of `text`, or OptionError; a malformed number raises ValueError, which
        argparse reports as it always has (`invalid int value: 'x'`)."""
        value = self.type(text)
        problem = self.problem(value, text)
        if problem:
            raise OptionError(problem)
        return value


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def option(default, type_: type, help: str, **declared):
    """A dataclass field declared as a command-line option (see Option)."""
    kind = {"default_factory": default} if callable(default) else {"default": default}
    return field(**kind, metadata={"option": Option(help, type_, **declared)})


def options(cls) -> list[tuple[str, Option, object]]:
    """(field name, Option with its flag filled in, default) of each option of `cls`."""
    found = []
    for f in fields(cls):
        if "option" not in f.metadata:
            continue
        opt = f.metadata["option"]
        if not opt.flag:
            opt = replace(opt, flag="--" + f.name.replace("_", "-"))
        default = f.default if f.default is not MISSING else f.default_factory()
        found.append((f.name, opt, default))
    return found


def device_problem(name: str) -> str | None:
    """Why `--device NAME` cannot be used here, or None. CUDA and MPS are asked of torch,
    which is imported only for them."""
    if name in ("auto", "cpu"):
        return None
    match = re.fullmatch(r"cuda(?::(\d+))?|mps", name)
    if match is None:
        return f"unknown device {name!r}: auto, cpu, cuda, cuda:N or mps"
    import torch

    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            return ("--device mps was asked for, but PyTorch sees no MPS device (Apple's GPU) "
                    "here; use auto or cpu")
        return None
    if not torch.cuda.is_available():
        return "--device cuda was asked for, but PyTorch sees no CUDA GPU"
    if match[1] is not None and int(match[1]) >= torch.cuda.device_count():
        return (f"--device {name} was asked for, but PyTorch sees "
                f"{torch.cuda.device_count()} CUDA GPU(s), numbered from 0")
    return None


def folder_problem(flag: str):
    """A check for an option naming a folder: a path that exists and is not a folder."""
    def problem(path: str) -> str | None:
        from pathlib import Path

        if Path(path).exists() and not Path(path).is_dir():
            return f"{flag} {path} is a file; give a folder (it is made if it does not exist)"
        return None

    return problem


SEEDS = 2 ** 32  # numpy's seeds are below this
AUGMENT = ("basic", "trivialaugment", "randaugment", "autoaugment", "none")


@dataclass
class TrainConfig:
    """Every option of `archdsl train`, with its default."""

    epochs: int = option(10, int, "epochs in all (default 10; with --resume, the run's own)",
                         min=1, metavar="N")
    batch_size: int = option(64, int, "images per step, the global batch split evenly over "
                                      "the workers (default 64)", min=1,
                            metavar="N")
    optimizer: str = option("sgd", str, "sgd (stochastic gradient descent with momentum) or "
                                        "adamw (default sgd)", choices=("sgd", "adamw"))
    lr: float | None = option(None, float, "learning rate (default 0.05 sgd, 0.001 adamw)",
                              above=0, metavar="LR")
    momentum: float = option(0.9, float, "momentum of sgd (default 0.9)", min=0, max=1,
                             metavar="M")
    nesterov: bool = option(False, bool, "Nesterov momentum (sgd)")
    weight_decay: float | None = option(
        None, float, "on weights, not biases or norms (default 5e-4 sgd, 0.05 adamw)", min=0,
        metavar="WD")
    schedule: str = option("cosine", str, "learning-rate schedule (default cosine, which has "
                                          "a warm-up)", choices=("cosine", "step", "onecycle",
                                                               "constant"))
    warmup_epochs: float = option(1.0, float, "linear warm-up of the cosine schedule, in "
                                              "epochs (default 1)", min=0, metavar="EPOCHS")
    step_size: int = option(30, int, "epochs between decays of the step schedule (default 30)",
                            min=1, metavar="EPOCHS")
    gamma: float = option(0.1, float, "decay factor of the step schedule (default 0.1)",
                          above=0, metavar="FACTOR")
    label_smoothing: float = option(0.0, float, "label smoothing of the loss (default 0)",
                                    min=0, max=1, metavar="EPS")
    clip_grad: float | None = option(None, float, "clip the gradients' global norm to NORM",
                                     above=0, metavar="NORM")
    seed: int = option(0, int, "seed of the split, the initial weights, the order and the "
                               "augmentation (default 0)", min=0, max=SEEDS - 1,
                    metavar="SEED")
    workers: int = option(0, int, "data-loader worker processes (default 0: the training "
                                  "process reads the images)", min=0, metavar="N")
    threads: int = option(0, int, "torch's CPU threads (default 0: this process's share of the "
                                  "cores less its --workers, at least 1, or OMP_NUM_THREADS when "
                                  "set; a busy machine trains faster with 1)", min=0,
                          metavar="N")
    device: str = option("auto", str, "where to train: cpu, cuda, cuda:N (GPU number N), mps "
                                      "or auto (default auto: CUDA, then MPS, then the CPU)",
                         metavar="{auto,cpu,cuda,cuda:N,mps}",
                         check=device_problem)
    precision: str = option("auto", str, "autocast precision (default auto: bf16 on CUDA, "
                                         "fp32 elsewhere; fp16 uses a gradient scaler)",
                            choices=("auto", "bf16", "fp16", "fp32"))
    compile: bool = option(False, bool, "torch.compile the model")
    augment: str = option("basic", str, "the augmentation of the training images: basic is a "
                                        "random resized crop and a flip; trivialaugment, "
                                        "randaugment and autoaugment add torchvision's policy "
                                        "of that name after them; none is a plain resize "
                                        "(default basic)", choices=AUGMENT,
                          aliases=(("--no-augment", "none"),))
    random_erasing: float = option(0.0, float, "erase a random rectangle of each training image "
                                               "with this probability (torchvision's "
                                               "RandomErasing; default 0)", min=0, max=1,
                                   metavar="P")
    val_split: float = option(
        0.1, float, "fraction of each class held out for validation when DATASET has no val/ "
                    "folder (default 0.1)", min=0, max=0.9, metavar="FRACTION",
        why="it is the share of each class held out for validation, and the rest, at least a "
            "tenth, is what the network trains on")
    tensorboard: bool = option(False, bool, "also write TensorBoard event files into the run "
                                            "folder")
    quiet: bool = option(False, bool, "print nothing but errors")
    sync_bn: bool = option(False, bool, "synchronise batch norm statistics across workers "
                                        "(CUDA)")
    cache: str = option("none", str, "decode and resize every image once, into memory or a "
                                     "file under --cache-dir; later epochs read pixels "
                                     "(default none)",
                        choices=("none", "memory", "disk"))
    cache_dir: str | None = option(None, str, "where --cache disk keeps its files (default "
                                               "~/.cache/archdsl)", metavar="DIR",
                                check=folder_problem("--cache-dir"))
    init: str | None = option(None, str, "start from these weights: an archdsl run folder, a "
                                         ".safetensors file, a PyTorch state_dict file (e.g. "
                                         "torchvision's), `torchvision` (its weights of the "
                                         "model the spec is, from TORCH_HOME's cache) or "
                                         "`torchvision:NAME` (those of its model NAME, e.g. "
                                         "torchvision:resnet50 for a backbone); mapped by "
                                         "structure, a head that does not fit starts fresh "
                                         "(default none)", metavar="SOURCE")
    freeze: list = option(list, list, "train these layers or groups not at all (their names as "
                                      "`archdsl check` and the errors show them: conv1, basic3, "
                                      "or a block's name for every call of it); batch norm "
                                      "statistics are frozen too; it takes several names, so "
                                      "write it after SPEC DATASET or end it with --",
                          metavar="NAME", many=True)
    unfreeze_at: int | None = option(None, int, "thaw the --freeze layers from epoch EPOCH on "
                                                "(default never)", min=1, metavar="EPOCH")
    mixup: float | None = option(None, float, "mix pairs of training images and their labels "
                                              "(torchvision's MixUp, its weight drawn from "
                                              "Beta(ALPHA, ALPHA); default off)", above=0,
                                 metavar="ALPHA")
    cutmix: float | None = option(None, float, "paste a box of another training image, labels "
                                               "mixed by area (torchvision's CutMix; with "
                                               "--mixup, one of the two per batch; default off)",
                                  above=0, metavar="ALPHA")
    ema: float | None = option(None, float, "keep an exponential moving average of the weights "
                                            "with this decay (e.g. 0.999); it is what validation "
                                            "measures and best.safetensors and ema.safetensors "
                                            "hold (default off)", above=0, metavar="DECAY",
                               check=lambda v: None if v < 1 else
                               f"--ema must be below 1, got {v:g}: it is the share of the "
                               "average kept at each step")
    patience: int | None = option(None, int, "stop when the validation accuracy has not "
                                             "improved for N epochs (default never)", min=1,
                                  metavar="N")
    sampler: str = option("shuffle", str, "the training order: shuffle uses every image once "
                                          "an epoch; balanced draws images with replacement, "
                                          "each class equally often (default shuffle)",
                          choices=("shuffle", "balanced"))
    class_weights: str = option("none", str, "weigh the training loss: auto weighs each class "
                                             "by the inverse of its share of the training "
                                             "images (default none)", choices=("none", "auto"))
    augment_on: str = option("auto", str, "where random crops, flips and normalisation run "
                                          "(default auto: the GPU when training on CUDA)",
                             choices=("auto", "cpu", "gpu"))

    def resolved(self) -> "TrainConfig":
        """The config with the optimizer's own learning rate and weight decay filled in."""
        lr = self.lr if self.lr is not None else (0.05 if self.optimizer == "sgd" else 1e-3)
        wd = self.weight_decay if self.weight_decay is not None else (
            5e-4 if self.optimizer == "sgd" else 0.05)
        return TrainConfig(**{**asdict(self), "lr": lr, "weight_decay": wd})

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """A config from config.json's options (fields it does not know are left out)."""
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if isinstance(d.get("augment"), bool):  # runs from before --augment POLICY
            d["augment"] = "basic" if d["augment"] else "none"
        return cls(**d)

    def problems(self) -> list[str]:
        """Each value outside its option's range, in words (for configs not made by the CLI)."""
        found = []
        for name, opt, _ in options(type(self)):
            value = getattr(self, name)
            if opt.type is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if opt.type is not bool and opt.type is not list and value is not None \
                    and not isinstance(value, opt.type):
                found.append(f"{opt.flag} must be {opt.type.__name__}, got {value!r}")
                continue
            problem = opt.problem(value)
            if problem:
                found.append(problem)
        return found


@dataclass
class LaunchConfig:
    """`archdsl train`'s options for starting workers with torchrun (not passed on to them)."""

    nproc_per_node: int | None = option(None, int, "workers on this machine (one per GPU)",
                                        min=1, metavar="N")
    nnodes: int | None = option(None, int, "machines (default 1)", min=1, metavar="N")
    node_rank: int | None = option(None, int, "this machine's rank (static rendezvous at "
                                              "--rdzv-endpoint)", min=0, metavar="R")
    rdzv_endpoint: str | None = option(None, str, "node 0's address, the same on every machine",
                                       metavar="HOST:PORT")
    rdzv_id: str | None = option(None, str, "the job's rendezvous id (default archdsl)",
                                 metavar="ID")
    torchrun: list = option(list, list, "pass ARG to torchrun as it is (e.g. "
                                        "--torchrun=--max-restarts=3)", metavar="ARG")

    @property
    def wanted(self) -> bool:
        """Whether the command asked for workers at all."""
        return self.nproc_per_node is not None or self.nnodes is not None


LAUNCH_FLAGS = tuple(opt.flag for _, opt, _ in options(LaunchConfig))


# ----------------------------------------------------------------------------- argparse


def add_option(parser, name: str, opt: Option) -> None:
    """One argparse option for `opt`; a value not given is None (the config's default)."""
    if opt.type is bool:
        action = "store_true" if not opt.flag.startswith("--no-") else "store_false"
        parser.add_argument(opt.flag, dest=name, action=action, default=None, help=opt.help)
        return
    if opt.type is list:
        parser.add_argument(opt.flag, dest=name, action="extend" if opt.many else "append",
                            nargs="+" if opt.many else None, default=None,
                            metavar=opt.metavar, help=opt.help)
        return

    def convert(text, opt=opt):
        return opt.parse(text)

    # argparse names the converter in its messages: `invalid int value`
    convert.__name__ = opt.type.__name__ if opt.type in (int, float) else opt.parse.__name__
    parser.add_argument(opt.flag, dest=name, type=convert, default=None, metavar=opt.metavar,
                        choices=opt.choices or None, help=opt.help)
    for flag, value in opt.aliases:
        parser.add_argument(flag, dest=name, action="store_const", const=value, default=None,
                            help=f"the same as {opt.flag} {value}")


def add_options(parser, cls) -> None:
    """Every option of the config class `cls` (TrainConfig, LaunchConfig) on `parser`."""
    for name, opt, _ in options(cls):
        add_option(parser, name, opt)


def given(cls, args) -> dict:
    """The options of `cls` given on the command line: field name -> value."""
    return {name: getattr(args, name) for name, _, _ in options(cls)
            if getattr(args, name, None) is not None}


def from_args(cls, args):
    """A `cls` with the options given on the command line, the defaults elsewhere."""
    return cls(**given(cls, args))


# `archdsl predict --top K`
TOP = Option("how many classes to show (default 3)", int, flag="--top", min=1)
# `archdsl predict --batch-size`
PREDICT_BATCH = Option("images classified at once (default 64)", int, flag="--batch-size",
                       metavar="N", min=1)
