"""`archdsl predict DIR IMAGE...`: each image's most likely classes with their probabilities,
one line per image, or as CSV (archdsl/train/image_files.py writes it)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..command_values import EXIT_OK, EXIT_SPEC, STDIN, UsageError, epilog
from ..output_files import writable_output


def add_predict(sub) -> None:
    """Declare `archdsl predict` on `sub` (the result of `parser.add_subparsers()`)."""
    pred = sub.add_parser("predict", help="classify (or segment) images with a trained run",
                          description="Print the most likely classes of each image with their "
                                      "softmax probabilities, one line per image; a folder "
                                      "stands for the images in it and its sub-folders. A "
                                      "segmentation run writes each image's mask "
                                      "(<name>_mask.png) and the mask over the image "
                                      "(<name>_overlay.png) into --out instead.",
                          epilog=epilog(["archdsl predict runs/x-20260101-120000 cat.png dog.jpg",
                                         "archdsl predict runs/x-20260101-120000 photos/ --csv "
                                         "predictions.csv",
                                         "archdsl predict runs/x-20260101-120000 img/*.png --top 1"],
                                        "docs/training.md (folders and CSV: docs/cli.md)"),
                          arguments=_arguments)
    pred.set_defaults(func=cmd_predict)


def _arguments(pred) -> None:
    from ..train.config import PREDICT_BATCH, TOP, add_option

    pred.add_argument("run", metavar="DIR", help="run folder written by archdsl train")
    pred.add_argument("images", metavar="IMAGE", nargs="+",
                      help="image file(s) to classify, each resized to the spec's input size; "
                           "a folder is searched for images (.png, .jpg, …), its sub-folders "
                           "too, hidden files and folders left out")
    add_option(pred, "top", TOP)
    add_option(pred, "batch_size", PREDICT_BATCH)
    pred.add_argument("--csv", metavar="FILE",
                      help="write the predictions to FILE as CSV (path, label_1, prob_1, …, "
                           "error) instead of printing them; - prints the CSV")
    pred.add_argument("--out", metavar="DIR",
                      help="segmentation runs: the folder for each image's <name>_mask.png and "
                           "<name>_overlay.png (default DIR/predictions)")
    pred.add_argument("--force", action="store_true",
                      help="replace the --csv FILE, or mask files in --out that archdsl did "
                           "not write, if they exist")
    pred.add_argument("--weights", default="best", help="best, last, or a checkpoint file")


def cmd_predict(args) -> int:
    """Classify the images; 1 if one of them could not be read (the others still are)."""
    from ..files import atomic_write
    from ..train import predict
    from ..train.image_files import predictions_csv

    to_csv = Path(args.csv) if args.csv not in (None, STDIN) else None
    if to_csv is not None:
        writable_output(to_csv, "--csv", args.force, such_as="predictions.csv")
    top = args.top or 3
    results = predict(args.run, args.images, top=top, weights=args.weights,
                      batch_size=args.batch_size or 64, out=args.out, force=args.force)
    if results and len(results[0]) == 4:  # a segmentation run: masks written
        return _masks_written(results, args)
    status = EXIT_OK
    for path, best, problem in results:
        if problem:
            print(f"{path}: {problem}", file=sys.stderr)
            status = EXIT_SPEC
        elif args.csv is None:
            print(f"{path}: " + ", ".join(f"{name} {p:.3f}" for name, p in best))
    if args.csv == STDIN:
        sys.stdout.write(predictions_csv(results, top))
    elif to_csv is not None:
        text = predictions_csv(results, top)
        atomic_write(to_csv, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        failed = sum(1 for _, best, _ in results if best is None)
        print(f"wrote {to_csv} ({len(results)} images"
              + (f", {failed} could not be read)" if failed else ")"))
    return status


def _masks_written(results, args) -> int:
    """A segmentation run's predictions: per image, the files written and the classes'
    shares of its pixels; 1 if an image could not be read (the others still are)."""
    if args.csv is not None:
        raise UsageError("--csv lists classification's top classes; a segmentation run "
                         "writes a mask PNG and an overlay per image (--out DIR) instead")
    status = EXIT_OK
    for path, shares, problem, files in results:
        if problem:
            print(f"{path}: {problem}", file=sys.stderr)
            status = EXIT_SPEC
            continue
        biggest = sorted(shares.items(), key=lambda kv: -kv[1])[:4]
        print(f"{path}: {files[0]} and {files[1]}; "
              + ", ".join(f"{name} {share:.0%}" for name, share in biggest))
    return status
