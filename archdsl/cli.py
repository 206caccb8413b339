"""The `archdsl` command. Only this module turns diagnostics into text and exit codes.

Exit codes: 0 success, 1 a spec has errors (or warnings under --strict), or a training,
evaluation or prediction failed; 2 usage errors; 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .command_values import (EXIT_OK, EXIT_SPEC, EXIT_USAGE, STDIN, Parser, UsageError,
                             add_spec_options, color, epilog, parse_input, parse_sets,
                             print_diagnostics, read_spec_file, spec_name)
from .errors import EXIT_INTERRUPTED, ArchdslError
from .explain import add_explain
from .fmt import add_fmt
from .lsp import add_lsp
from .timing import add_time
from .train.config import PREDICT_BATCH, TOP, LaunchConfig, Option, OptionError, TrainConfig, \
    add_option, add_options, from_args, given

def cmd_check(args) -> int:
    from .diagnostics import Span, error
    from .network import analyse
    from .report import to_json

    params = parse_sets(args.set)
    input_shape = parse_input(args.input)
    status = EXIT_OK
    documents = []
    for i, file in enumerate(args.files):
        name = spec_name(file)
        try:
            text = read_spec_file(file)
        except UsageError as exc:  # report it, and go on with the other files
            print(f"archdsl check: error: {exc}", file=sys.stderr)
            status = EXIT_USAGE
            if args.format == "json":
                documents.append(to_json(None, [error("E-FILE", str(exc), Span(name, 1, 1, 1, 1))]))
            continue
        network, diagnostics = analyse(text, name, params, input_shape)
        errors = any(d.is_error for d in diagnostics)
        if errors or (args.strict and diagnostics):
            status = max(status, EXIT_SPEC)
        if args.format == "json":
            documents.append(to_json(network, diagnostics))
            continue
        if network is not None:
            if i:
                print()
            print(network.summary())
            sys.stdout.flush()
        if diagnostics:
            print_diagnostics(diagnostics, text)
            n_err = sum(d.is_error for d in diagnostics)
            n_warn = len(diagnostics) - n_err
            print(f"{name}: {_plural(n_err, 'error')}, {_plural(n_warn, 'warning')}\n",
                  file=sys.stderr)
    if args.format == "json":
        out = documents[0] if len(documents) == 1 else documents
        print(json.dumps(out, indent=2, allow_nan=False))  # strict JSON, never NaN/Infinity
    return status


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def cmd_export(args) -> int:
    from .diagnostics import SpecError
    from .export import FORMATS, default_output, export
    from .network import analyse

    path, name = Path(args.file), spec_name(args.file)
    if args.file == STDIN and not args.output:
        raise UsageError("the spec comes from standard input: name the output with -o OUT")
    out = Path(args.output) if args.output else default_output(path, args.to)
    if out.is_dir():
        raise UsageError(f"{out} is a folder; give a file name such as "
                         f"{out / ('net' + FORMATS[args.to])}")
    text = read_spec_file(args.file)
    network, diagnostics = analyse(text, name, parse_sets(args.set), parse_input(args.input))
    print_diagnostics(diagnostics, text)
    if network is None:
        print(f"{name}: not exported: the spec has errors", file=sys.stderr)
        return EXIT_SPEC
    if args.file != STDIN and out.resolve() == path.resolve():
        raise UsageError(f"refusing to write the export over the spec itself ({out})")
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; choose another -o, or add --force to replace it")
    weights = Path(args.weights) if args.weights else None
    try:
        export(network, args.to, out, weights)
    except SpecError as exc:  # too big to build: refused before allocating
        print(exc.render(color=color(sys.stderr)), file=sys.stderr)
        print(f"{name}: not exported", file=sys.stderr)
        return EXIT_SPEC
    print(f"wrote {out} ({args.to}{', with weights from ' + str(weights) if weights else ''})")
    return EXIT_OK


DRAW_FORMATS = ("svg", "png", "pdf", "dot")


def cmd_draw(args) -> int:
    import shutil

    from .draw import DrawOptions, drawn_by_archdsl, render, to_dot, unknown_blocks
    from .files import atomic_write_bytes
    from .network import analyse_graph

    spec_path, name = Path(args.file), spec_name(args.file)
    if args.file == STDIN and not args.output:
        raise UsageError("the spec comes from standard input: name the picture with -o OUT")
    out = Path(args.output) if args.output else Path(spec_path.stem + ".svg")
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in DRAW_FORMATS:
        raise UsageError(f"cannot tell the format from {out}: use a .svg, .png, .pdf or .dot name")
    if fmt != "dot" and shutil.which("dot") is None:
        raise UsageError("drawing needs Graphviz's `dot` program, which is not installed. On "
                         "Debian or Ubuntu: sudo apt-get install graphviz (or write .dot source "
                         "with -o NAME.dot, which needs no Graphviz)")
    collapse = _collapse_option(args.collapse)
    text = read_spec_file(args.file)
    if args.file != STDIN and out.exists() and out.resolve() == spec_path.resolve():
        raise UsageError(f"refusing to draw over the spec itself ({out})")
    if out.is_dir():
        raise UsageError(f"{out} is a folder; give a file name such as {out / 'net.svg'}")
    if out.exists() and not args.force and not drawn_by_archdsl(out):
        raise UsageError(f"{out} exists and is not an archdsl drawing; choose another -o, or add "
                         "--force to replace it")
    _, graph, diagnostics = analyse_graph(text, name, parse_sets(args.set),
                                          parse_input(args.input))
    if graph is not None and isinstance(collapse, list) and unknown_blocks(collapse, graph):
        raise UsageError(unknown_blocks(collapse, graph))
    print_diagnostics(diagnostics, text)
    if graph is None:
        print(f"{name}: nothing drawn: the spec could not be read", file=sys.stderr)
        return EXIT_SPEC
    dot = to_dot(graph, diagnostics, DrawOptions(collapse=collapse, direction=args.direction))
    atomic_write_bytes(out, render(dot, fmt))
    errors = any(d.is_error for d in diagnostics)
    print(f"wrote {out}" + (" (with the errors marked in red)" if errors else ""))
    return EXIT_SPEC if errors else EXIT_OK


def _collapse_option(values: list[str] | None):
    """--collapse all|none|NAME[,NAME…] (repeatable) -> "auto", "all", "none" or names."""
    names = [n.strip() for v in values or () for n in v.split(",") if n.strip()]
    if not names:
        return "auto"
    alone = [n for n in names if n in ("all", "none")]
    if alone and len(names) > 1:
        raise UsageError(f"--collapse {alone[0]} stands alone; it cannot be mixed with other "
                         "values")
    return alone[0] if alone else names


def guarded(command: str, action) -> int:
    """The one error boundary: run a command's action and turn whatever it raises into one
    plain message on stderr and a documented exit code, never a traceback
    (ARCHDSL_TRACEBACK=1 shows the traceback of an unexpected one). Every error archdsl
    words itself is an ArchdslError (archdsl/errors.py) that carries its exit code:

        2    usage: the command line (UsageError, an option out of range), an export that
             cannot be done (ExportError), a checkpoint that cannot be read
        1    a spec with errors (its diagnostics), a failed training, evaluation, prediction,
             drawing or export, a file that cannot be written, out of memory, an internal error
        130  Ctrl-C (and SIGTERM while training), after saving what can be saved
        0    also when the reader of stdout went away (`| head`)
    """
    rank = int(os.environ.get("RANK", "0")) if "LOCAL_RANK" in os.environ else 0
    if rank:
        command = f"{command} (rank {rank})"
    try:
        return action()
    except ArchdslError as exc:
        return _reported(command, exc, rank)
    except KeyboardInterrupt:
        if rank:
            return EXIT_INTERRUPTED  # every worker got Ctrl-C; rank 0 says it
        what = " before training started" if command == "train" else ""
        print(f"archdsl {command}: interrupted{what}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_OK
    except MemoryError:
        print(f"archdsl {command}: error: out of memory; use a smaller --batch-size or a smaller "
              "model", file=sys.stderr)
        return EXIT_SPEC
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        return _unexpected(command, exc)


def _reported(command: str, exc: ArchdslError, rank: int) -> int:
    """An error with a message for the user: the message (the diagnostics of a SpecError)
    and its own exit code. An error every worker meets alike is said by rank 0 alone."""
    if rank and getattr(exc, "on_every_worker", False):
        from .train.distributed import outlive_rank_zero

        outlive_rank_zero()
        return exc.exit_code
    print(exc.report(command, color=color(sys.stderr)), file=sys.stderr)
    return exc.exit_code


def _unexpected(command: str, exc: Exception) -> int:
    """An OSError archdsl did not word itself, or a bug: one line, never a traceback."""
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"archdsl {command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_SPEC
    if os.environ.get("ARCHDSL_TRACEBACK"):
        raise exc
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    print(f"archdsl {command}: internal error: {type(exc).__name__}: {first}\nThis is a bug "
          "in archdsl; please report it with the command you ran (set ARCHDSL_TRACEBACK=1 "
          "to see where it happened)", file=sys.stderr)
    return EXIT_SPEC


def _quiet_stdout() -> None:
    """After a broken pipe: send what is still buffered nowhere, so that the interpreter's
    own flush at exit does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def cmd_train(args) -> int:
    from .train import resume, train

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
    read_spec_file(args.spec)  # an unreadable spec is a usage error, as for the other commands
    train(args.spec, args.dataset, config, params=parse_sets(args.set), out=args.out,
          exist_ok=args.exist_ok)
    return EXIT_OK


def _launch_workers(args, config: TrainConfig, launch: LaunchConfig) -> int:
    """`archdsl train … --nproc-per-node N`: start N workers here (and as many on each of
    --nnodes machines) through torchrun, each running this same command without the launch
    options. Rank 0 writes the run folder; its name is fixed here so that this process can
    say where the run stands if a worker dies."""
    from .train.distributed import (launch as start, launched_by_torchrun, stderr_log,
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
    from .train import TrainError

    torchrun = torchrun_arguments(nproc, nnodes, launch.node_rank, launch.rdzv_endpoint,
                                  launch.rdzv_id, launch.torchrun)
    if not args.resume and config.batch_size % (nproc * nnodes):
        raise TrainError(f"--batch-size {config.batch_size} is the global batch, split "
                         f"evenly over the {nproc * nnodes} workers; it is not a multiple "
                         f"of {nproc * nnodes}")
    if run_dir is None:  # the folder rank 0 would pick, fixed here for every worker
        from .network import load
        from .train.run_folder import default_run_folder

        run_dir = default_run_folder(load(args.spec, **parse_sets(args.set)).name)
        workers += ["--out", run_dir]
    return start(torchrun, workers, run_dir, stderr_log)


def cmd_eval(args) -> int:
    from .train import evaluate_run
    from .train.eval_report import eval_document, eval_table
    from .train.gallery import DEFAULT_NAME, SIZE, write_gallery, written_by_archdsl
    from .train.image_files import refuse_to_replace

    gallery = None if args.no_gallery else Path(args.gallery or Path(args.run) / DEFAULT_NAME)
    if args.gallery:
        if Path(args.gallery).suffix.lower() != ".png":
            raise UsageError(f"--gallery {args.gallery}: the gallery is a PNG picture; give a "
                             "name ending in .png")
        refuse_to_replace(gallery, args.force, "--gallery", written_by_archdsl,
                          "an archdsl gallery")
    r = evaluate_run(args.run, args.dataset, weights=args.weights,
                     gallery_size=args.gallery_size or SIZE)
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


def cmd_predict(args) -> int:
    from .files import atomic_write
    from .train import predict
    from .train.image_files import predictions_csv, refuse_to_replace

    to_csv = Path(args.csv) if args.csv not in (None, STDIN) else None
    if to_csv is not None:
        refuse_to_replace(to_csv, args.force, "--csv")
    top = args.top or 3
    results = predict(args.run, args.images, top=top, weights=args.weights,
                      batch_size=args.batch_size or 64)
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


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = Parser(prog="archdsl", description="Work with convolutional networks written in "
                                                "the .arch language.",
                    epilog=epilog(["archdsl check specs/resnet18.arch",
                                   "archdsl draw specs/vgg16.arch -o vgg16.png",
                                   "archdsl train specs/lenet5.arch digits"],
                                  "README.md, then docs/cli.md; `archdsl COMMAND --help`"))
    parser.add_argument("--version", action="version", version=f"archdsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    _add_check(sub)
    _add_export(sub)
    _add_draw(sub)
    _add_train(sub)
    _add_eval(sub)
    _add_predict(sub)
    add_explain(sub)
    add_time(sub)
    add_fmt(sub)
    add_lsp(sub)
    return parser


def _add_check(sub) -> None:
    check = sub.add_parser("check", help="check specs: shapes, parameters, MACs, diagnostics",
                           description="Check .arch files: print every layer's output shape, "
                                       "parameters, MACs and receptive field, the totals, and "
                                       "located errors and warnings.",
                           epilog=epilog(["archdsl check specs/resnet18.arch",
                                          "archdsl check specs/alexnet.arch --set num_classes=10",
                                          "archdsl check specs/*.arch --format json"],
                                         "docs/cli.md (the language: docs/language.md)"))
    check.add_argument("files", nargs="+", metavar="FILE",
                       help=".arch spec file(s); - reads one from standard input")
    add_spec_options(check)
    check.add_argument("--format", choices=("table", "json"), default="table",
                       help="output format")
    check.add_argument("--strict", action="store_true", help="treat warnings as errors (exit 1)")
    check.set_defaults(func=cmd_check)


def _add_export(sub) -> None:
    export = sub.add_parser(
        "export", help="write the network as PyTorch source, ONNX, TorchScript or torch.export",
        description="Compile a spec and write it for deployment: standalone PyTorch source "
                    "(python), ONNX (onnx), a traced TorchScript module (torchscript) or a "
                    "torch.export program (exported).",
        epilog=epilog(["archdsl export specs/resnet18.arch --to python -o resnet18.py",
                       "archdsl export specs/lenet5.arch --to onnx --weights runs/x/best.safetensors"],
                      "docs/export.md"))
    export.add_argument("file", metavar="FILE",
                        help=".arch spec file; - reads it from standard input (then give -o)")
    export.add_argument("--to", required=True, choices=("python", "onnx", "torchscript",
                                                        "exported"), help="output format")
    export.add_argument("-o", "--output", metavar="OUT",
                        help="output file (default: the spec's name with .py, .onnx, .ts or "
                             ".pt2, in the current folder)")
    export.add_argument("--weights", metavar="CHECKPOINT",
                        help="load these weights first (.safetensors, or a torch.save'd "
                             "state_dict, read without executing code)")
    export.add_argument("--force", action="store_true", help="replace OUT if it exists")
    add_spec_options(export)
    export.set_defaults(func=cmd_export)


def _add_draw(sub) -> None:
    draw = sub.add_parser(
        "draw", help="draw the network as a picture (svg, png, pdf or dot)",
        description="Draw a spec's layer graph with Graphviz: a node per layer with its key "
                    "arguments and parameters, edges labelled with tensor shapes, blocks as "
                    "clusters. A spec with errors is drawn as far as it can be, the faulty "
                    "layers in red, and the command exits 1.",
        epilog=epilog(["archdsl draw specs/alexnet.arch -o alexnet.png",
                       "archdsl draw specs/resnet50.arch --collapse none -o resnet50.svg",
                       "archdsl draw specs/resnet18.arch --collapse basic --direction LR"],
                      "docs/draw.md"))
    draw.add_argument("file", metavar="FILE",
                      help=".arch spec file; - reads it from standard input (then give -o)")
    draw.add_argument("-o", "--output", metavar="OUT",
                      help="picture to write; the format follows the extension: .svg, .png, .pdf "
                           "or .dot (default: the spec's name with .svg, in the current folder)")
    draw.add_argument("--collapse", action="append", metavar="all|none|NAME[,NAME…]",
                      help="draw block calls as single nodes: all (the outermost calls), none, or "
                           "the calls of the named blocks (comma-separated, or --collapse "
                           "repeated); default: collapse the deepest blocks and repeats until "
                           "the picture fits a page")
    draw.add_argument("--direction", choices=("TB", "LR"), default="TB",
                      help="TB: top to bottom, LR: left to right")
    draw.add_argument("--force", action="store_true",
                      help="replace OUT even if it is not an earlier archdsl drawing")
    add_spec_options(draw)
    draw.set_defaults(func=cmd_draw)


def _add_train(sub) -> None:
    """`archdsl train`: its options are TrainConfig's and LaunchConfig's (train/config.py)."""
    train = sub.add_parser(
        "train", help="train a spec on an image folder or the built-in digits",
        description="Train a spec on DATASET: `digits` (scikit-learn's handwritten digits, "
                    "built in), a folder with train/<class>/ and val/<class>/ (or test/), or "
                    "one with <class>/ folders alone, split by --val-split. Everything the run "
                    "leaves goes into --out (default runs/<spec>-<date-time>/).",
        usage="archdsl train SPEC DATASET [options]\n       archdsl train --resume DIR "
              "[--epochs N] [options]",
        epilog=epilog(["archdsl train specs/lenet5.arch digits --epochs 5",
                       "archdsl train specs/resnet18.arch data/flowers --init runs/pretrained "
                       "--freeze conv1 basic",
                       "archdsl train --resume runs/lenet5-20260101-120000 --epochs 20"],
                      "docs/training.md (several GPUs: docs/distributed.md)"))
    train.add_argument("spec", metavar="SPEC", nargs="?",
                       help=".arch spec file (required, unless --resume)")
    train.add_argument("dataset", metavar="DATASET", nargs="?",
                       help="`digits`, an image folder, or a CSV/TSV file of path,label[,split] "
                            "rows (required, unless --resume)")
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
    train.set_defaults(func=cmd_train)


def _add_eval(sub) -> None:
    evaluate = sub.add_parser(
        "eval", help="evaluate a trained run on a data set",
        description="Loss, top-1, top-5, per-class accuracy and the confusion matrix of a run's "
                    "weights on DATASET: its val/ (or test/) folder, every image of a folder of "
                    "class folders, or, for `digits`, the run's own validation split; and a "
                    "picture of the misclassified images with the highest predicted "
                    "probability (DIR/confidently_wrong.png).",
        epilog=epilog(["archdsl eval runs/lenet5-20260101-120000 digits",
                       "archdsl eval runs/resnet20-20260101-120000 data/cifar10 --weights last",
                       "archdsl eval runs/lenet5-20260101-120000 digits --format json"],
                      "docs/training.md (the gallery: docs/cli.md)"))
    evaluate.add_argument("run", metavar="DIR", help="run folder written by archdsl train")
    evaluate.add_argument("dataset", metavar="DATASET", help="`digits` or an image folder")
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
    evaluate.set_defaults(func=cmd_eval)


def _add_predict(sub) -> None:
    pred = sub.add_parser("predict", help="classify images with a trained run",
                          description="Print the most likely classes of each image with their "
                                      "softmax probabilities, one line per image; a folder "
                                      "stands for the images in it and its sub-folders.",
                          epilog=epilog(["archdsl predict runs/x-20260101-120000 cat.png dog.jpg",
                                         "archdsl predict runs/x-20260101-120000 photos/ --csv "
                                         "predictions.csv",
                                         "archdsl predict runs/x-20260101-120000 img/*.png --top 1"],
                                        "docs/training.md (folders and CSV: docs/cli.md)"))
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
    pred.add_argument("--force", action="store_true", help="replace the --csv FILE if it exists")
    pred.add_argument("--weights", default="best", help="best, last, or a checkpoint file")
    pred.set_defaults(func=cmd_predict)


def _tolerant_output() -> None:
    """Text that the terminal's encoding cannot show (a file name that is not UTF-8 arrives
    as surrogates) is printed with backslash escapes instead of failing the command."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):  # not a text stream of io's (a test's capture)
            pass


def main(argv: list[str] | None = None) -> int:
    _tolerant_output()
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except OptionError as exc:  # a value out of its option's range (train/config.py)
        command = next((a for a in argv if not a.startswith("-")), "")
        print(f"archdsl {command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    args.argv = argv
    return guarded(args.command, lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
