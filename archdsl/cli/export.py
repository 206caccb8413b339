"""`archdsl export FILE --to FORMAT`: the network as standalone PyTorch source, ONNX,
TorchScript or a torch.export program (archdsl/export.py does the work)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..command_values import (EXIT_OK, EXIT_SPEC, STDIN, add_spec_options, color, epilog,
                              is_run_folder, parse_input, parse_sets, print_diagnostics,
                              spec_source, UsageError)
from ..output_files import writable_output


def add_export(sub) -> None:
    """Declare `archdsl export` on `sub` (the result of `parser.add_subparsers()`)."""
    export = sub.add_parser(
        "export", help="write the network as PyTorch source, ONNX, TorchScript or torch.export",
        description="Compile a spec and write it for deployment: standalone PyTorch source "
                    "(python), ONNX (onnx), a traced TorchScript module (torchscript) or a "
                    "torch.export program (exported).",
        epilog=epilog(["archdsl export specs/resnet18.arch --to python -o resnet18.py",
                       "archdsl export specs/lenet5.arch --to onnx --weights runs/x/best.safetensors",
                       "archdsl export runs/x --to onnx"],
                      "docs/export.md"))
    export.add_argument("file", metavar="FILE",
                        help=".arch spec file, or a run folder (its spec, parameters and best "
                             "weights); - reads it from standard input (then give -o)")
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


def cmd_export(args) -> int:
    """Check the spec, then write it in the asked format; 1 if it has errors."""
    from ..diagnostics import SpecError
    from ..export import FORMATS, default_output, export
    from ..network import analyse

    if args.file == STDIN and not args.output:
        raise UsageError("the spec comes from standard input: name the output with -o OUT")
    # a run folder is its spec copy with the parameters and the best weights it trained
    text, name, params = spec_source(args.file, parse_sets(args.set))
    path = Path(name)
    weights = Path(args.weights) if args.weights else _run_weights(args)
    out = Path(args.output) if args.output else default_output(path, args.to)
    if args.file != STDIN and out.resolve() == path.resolve():
        raise UsageError(f"refusing to write the export over the spec itself ({out})")
    writable_output(out, "-o", args.force, such_as="net" + FORMATS[args.to])
    network, diagnostics = analyse(text, name, params, parse_input(args.input))
    print_diagnostics(diagnostics, text)
    if network is None:
        print(f"{name}: not exported: the spec has errors", file=sys.stderr)
        return EXIT_SPEC
    try:
        export(network, args.to, out, weights)
    except SpecError as exc:  # too big to build: refused before allocating
        print(exc.render(color=color(sys.stderr)), file=sys.stderr)
        print(f"{name}: not exported", file=sys.stderr)
        return EXIT_SPEC
    print(f"wrote {out} ({args.to}{', with weights from ' + str(weights) if weights else ''})")
    return EXIT_OK


def _run_weights(args) -> Path | None:
    """The best weights of a run folder given as SPEC (a Python export takes none)."""
    best = Path(args.file) / "best.safetensors"
    if args.to != "python" and is_run_folder(args.file) and best.is_file():
        return best
    return None
