"""`archdsl train SPEC DATASET` and `archdsl train --resume DIR`, on this machine or over
torchrun's workers. Its options are TrainConfig's and LaunchConfig's (archdsl/train/config.py),
declared when the command is first parsed, so that other commands do not import training."""

from __future__ import annotations

from ..command_values import EXIT_OK, UsageError, epilog, parse_sets, read_spec_bytes


def add_train(sub) -> None:
    """Declare `archdsl train` on `sub` (the result of `parser.add_subparsers()`)."""
    train = sub.add_parser(
        "train", help="train a spec on an image folder or the built-in digits",
        description="Train a spec on DATASET: `digits` (scikit-learn's handwritten digits, "
                    "built in), a folder with train/<class>/ and val/<class>/ (or test/), or "
                    "one with <class>/ folders alone, split by --val-split; for segmentation, "
                    "`shapes` (built in) or a folder with images/ and masks/ (or train/ and "
                    "val/ holding them). Everything the run leaves goes into --out (default "
                    "runs/<spec>-<date-time>/).",
        usage="archdsl train SPEC DATASET [options]\n       archdsl train --resume DIR "
              "[--epochs N] [options]",
        epilog=epilog(["archdsl train specs/lenet5.arch digits --epochs 5",
                       "archdsl train specs/resnet18.arch data/flowers --init runs/pretrained "
                       "--freeze conv1 basic",
                       "archdsl train --resume runs/lenet5-20260101-120000 --epochs 20"],
                      "docs/training.md (several GPUs: docs/distributed.md)"),
        arguments=_arguments)
    train.set_defaults(func=cmd_train)


def _arguments(train) -> None:
    from ..train.config import LaunchConfig, TrainConfig, add_options

    train.add_argument("spec", metavar="SPEC", nargs="?",
                       help=".arch spec file (required, unless --resume)")
    train.add_argument("dataset", metavar="DATASET", nargs="?",
                       help="`digits`, an image folder, or a CSV/TSV file of path,label[,split] "
                            "rows; for segmentation `shapes`, a folder with images/ and masks/, "
                            "or a CSV/TSV of image,mask[,split] rows (required, unless --resume)")
    train.add_argument("--resume", metavar="DIR", help="continue the run in DIR where it stopped")
    train.add_argument("--out", metavar="DIR", help="run folder (default runs/<spec>-<date-time>)")
    train.add_argument("--exist-ok", action="store_true", help="write into an existing run folder")
    train.add_argument("--set", action="append", metavar="NAME=VALUE", default=[],
                       help="override an `arch` parameter (num_classes comes from the data)")
    add_options(train, TrainConfig)
    add_options(train.add_argument_group(
        "several processes (torchrun)",
        "start workers with torchrun's elastic agent; --batch-size is the global batch, split "
        "evenly over them (docs/distributed.md)"), LaunchConfig)


def cmd_train(args) -> int:
    """Train (or resume) here, or start torchrun's workers when --nproc-per-node asks."""
    from ..train import resume, train
    from ..train.config import LaunchConfig, TrainConfig, from_args, given

    if args.resume and (args.spec or args.dataset):
        raise UsageError("--resume DIR continues a run with its own spec and data; give "
                         "no SPEC or DATASET")
    if not args.resume and (not args.spec or not args.dataset):
        raise UsageError("give SPEC and DATASET (e.g. archdsl train specs/lenet5.arch digits), "
                         "or --resume DIR")
    config, launch = from_args(TrainConfig, args), from_args(LaunchConfig, args)
    if launch.wanted:
        return _launch_workers(args, config, launch)
    if args.resume:  # the run's own options go on; any other given is refused by name
        resume(args.resume, epochs=args.epochs, given=given(TrainConfig, args))
        return EXIT_OK
    spec_data = read_spec_bytes(args.spec)  # read once, here; unreadable: a usage error
    train(args.spec, args.dataset, config, params=parse_sets(args.set), out=args.out,
          exist_ok=args.exist_ok, spec_data=spec_data)
    return EXIT_OK


def _launch_workers(args, config, launch) -> int:
    """`archdsl train … --nproc-per-node N`: start N workers here (and as many on each of
    --nnodes machines) through torchrun, each running this same command without the launch
    options. Rank 0 writes the run folder; its name is fixed here so that this process can
    say where the run stands if a worker dies."""
    from ..train.distributed import (launch as start, launched_by_torchrun, stderr_log,
                                     torchrun_arguments, worker_arguments)

    if launched_by_torchrun():
        raise UsageError("this process was started by torchrun already; leave out "
                         "--nproc-per-node and --nnodes (torchrun's own options say how many "
                         "workers there are)")
    nproc, nnodes = launch.nproc_per_node or 1, launch.nnodes or 1
    if launch.node_rank is not None and nnodes == 1:
        raise UsageError("--node-rank goes with --nnodes N (N machines)")
    workers = worker_arguments(args.argv[args.argv.index("train") + 1:])
    run_dir = args.resume or args.out
    from ..train import TrainError

    torchrun = torchrun_arguments(nproc, nnodes, launch.node_rank, launch.rdzv_endpoint,
                                  launch.rdzv_id, launch.torchrun)
    if not args.resume and config.batch_size % (nproc * nnodes):
        raise TrainError(f"--batch-size {config.batch_size} is the global batch, split "
                         f"evenly over the {nproc * nnodes} workers; it is not a multiple "
                         f"of {nproc * nnodes}")
    if run_dir is None:  # the folder rank 0 would pick, fixed here for every worker
        from ..network import loads
        from ..train.run_folder import default_run_folder

        network = loads(read_spec_bytes(args.spec), args.spec, **parse_sets(args.set))
        run_dir = default_run_folder(network.name)
        workers += ["--out", run_dir]
    return start(torchrun, workers, run_dir, stderr_log)
