"""`archdsl eval DIR DATASET`: a trained run's loss, accuracies and confusion matrix on a data
set, as a table or JSON, and the picture of its most confidently wrong images."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..command_values import EXIT_OK, UsageError, epilog
from ..output_files import writable_output


def add_eval(sub) -> None:
    """Declare `archdsl eval` on `sub` (the result of `parser.add_subparsers()`)."""
    evaluate = sub.add_parser(
        "eval", help="evaluate a trained run on a data set",
        description="Loss, top-1, top-5, per-class accuracy and the confusion matrix of a run's "
                    "weights on DATASET: its val/ (or test/) folder, every image of a folder of "
                    "class folders, a CSV/TSV table's val rows (every row without a split "
                    "column), or, for `digits`, the run's own validation split; and a "
                    "picture of the misclassified images with the highest predicted "
                    "probability (DIR/confidently_wrong.png). A segmentation run reports the "
                    "pixel accuracy, mean IoU, each class's IoU and the confusion of pixels, "
                    "and draws the images of lowest IoU (DIR/worst_segmentations.png).",
        epilog=epilog(["archdsl eval runs/lenet5-20260101-120000 digits",
                       "archdsl eval runs/resnet20-20260101-120000 data/cifar10 --weights last",
                       "archdsl eval runs/lenet5-20260101-120000 digits --format json"],
                      "docs/training.md (the gallery: docs/cli.md)"),
        arguments=_arguments)
    evaluate.set_defaults(func=cmd_eval)


def _arguments(evaluate) -> None:
    from ..train.config import Option, add_option

    evaluate.add_argument("run", metavar="DIR", help="run folder written by archdsl train")
    evaluate.add_argument("dataset", metavar="DATASET",
                          help="`digits` (the run's validation split), an image folder (its "
                               "val/ or test/ folder, or every image of a folder of class "
                               "folders), or a CSV/TSV file of path,label[,split] rows (its val "
                               "rows; every row when it has no split column)")
    evaluate.add_argument("--weights", default="best",
                          help="best, last, or a checkpoint file")
    evaluate.add_argument("--format", choices=("table", "json"), default="table",
                          help="table: the summary, per-class accuracy and confusion matrix as "
                               "text; json: the same numbers as one JSON document")
    pictures = evaluate.add_mutually_exclusive_group()
    pictures.add_argument("--gallery", metavar="FILE",
                          help="write the picture of the most confidently wrong images to FILE "
                               "(.png) instead of DIR/confidently_wrong.png")
    pictures.add_argument("--no-gallery", action="store_true",
                          help="write no picture of the most confidently wrong images")
    add_option(evaluate, "gallery_size", Option("the most images in that picture (default 16)",
                                                int, flag="--gallery-size", metavar="N", min=1))
    evaluate.add_argument("--force", action="store_true",
                          help="replace the --gallery FILE even if it is not an earlier archdsl "
                               "gallery")


def cmd_eval(args) -> int:
    """Evaluate the run's weights, print the table (or JSON) and write the gallery."""
    from ..train import evaluate_run
    from ..train.eval_report import eval_document, eval_table
    from ..train.gallery import DEFAULT_NAME, SIZE, write_gallery, written_by_archdsl

    gallery = None if args.no_gallery else Path(args.gallery or Path(args.run) / DEFAULT_NAME)
    if args.gallery:
        if Path(args.gallery).suffix.lower() != ".png":
            raise UsageError(f"--gallery {args.gallery}: the gallery is a PNG picture; give a "
                             "name ending in .png")
        from ..train.seg_pictures import written_by_archdsl as segmentation_gallery

        writable_output(gallery, "--gallery", args.force,  # either kind of gallery is ours
                        ours=lambda p: written_by_archdsl(p) or segmentation_gallery(p),
                        kind="an archdsl gallery", such_as=DEFAULT_NAME)
    r = evaluate_run(args.run, args.dataset, weights=args.weights,
                     gallery_size=args.gallery_size or SIZE)
    if r.get("task") == "segment":
        return _segmentation(r, args)
    for line in r.get("warnings", ()):  # a table's repeated rows, paths outside its folder
        print(f"warning: {line}", file=sys.stderr)
    if r["skipped"]:
        shown = ", ".join(f"{p} ({why})" for p, why in r["skipped"][:3])
        print(f"warning: skipped {len(r['skipped'])} file(s) that are not readable images: "
              f"{shown}{' …' if len(r['skipped']) > 3 else ''}", file=sys.stderr)
    written = write_gallery(r, gallery, must=bool(args.gallery), title=Path(args.run).name)
    if args.format == "json":
        print(json.dumps(_finite(eval_document(r, written)), indent=2, allow_nan=False))
    else:
        print(eval_table(r, written))
    return EXIT_OK


def _finite(value):
    """`value` with every NaN or infinity replaced by None: JSON has no such numbers."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _segmentation(r: dict, args) -> int:
    """A segmentation run's report: pixel accuracy, mean IoU, per-class IoU and the confusion,
    and the gallery of its worst images (DIR/worst_segmentations.png, or --gallery FILE)."""
    from ..train.seg_pictures import DEFAULT_NAME, palette, write_worst_gallery, \
        written_by_archdsl
    from ..train.seg_report import seg_eval_document, seg_eval_table

    gallery = None if args.no_gallery else Path(args.gallery or Path(args.run) / DEFAULT_NAME)
    if gallery is not None and not args.gallery:  # the run's own: replaced only if archdsl's
        writable_output(gallery, "--gallery", args.force, ours=written_by_archdsl,
                        kind="an archdsl gallery", such_as=DEFAULT_NAME)
    for line in r.get("warnings", ()):
        print(f"warning: {line}", file=sys.stderr)
    colours = palette(len(r["classes"]), r.get("palette"))
    r["gallery"] = write_worst_gallery(r["worst"], gallery, must=bool(args.gallery),
                                       title=Path(args.run).name, classes=r["classes"],
                                       colours=colours)
    if args.format == "json":
        print(json.dumps(_finite(seg_eval_document(r)), indent=2, allow_nan=False))
    else:
        print(seg_eval_table(r))
    return EXIT_OK
