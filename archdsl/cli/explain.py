"""`archdsl explain SPEC [LAYER...]`: the arithmetic behind each layer's numbers
(archdsl/explain.py). It never imports torch."""

from __future__ import annotations

import json
import sys

from ..command_values import (EXIT_OK, EXIT_SPEC, UsageError, add_spec_options, epilog,
                              parse_input, parse_sets, print_diagnostics, read_spec_file,
                              spec_name)
from ..explain import UnknownLayer, explain, render_text, to_json
from ..network import analyse


def add_explain(sub) -> None:
    """Declare `archdsl explain SPEC [LAYER...] [--set NAME=VALUE]... [--input CxHxW]
    [--format text|json]` on `sub` (the result of `parser.add_subparsers()`)."""
    parser = sub.add_parser(
        "explain", help="show the arithmetic behind each layer's shape, parameters, MACs and rf",
        description="Show, for each layer (or the named ones), how its output size, parameters, "
                    "MACs and receptive field are computed: the formula, the layer's own numbers "
                    "substituted, the rounding, and where each parameter comes from.",
        epilog=epilog(["archdsl explain specs/alexnet.arch conv1",
                       "archdsl explain specs/resnet18.arch basic3 --format json",
                       "archdsl explain specs/lenet5.arch --input 1x28x28"], "docs/explain.md"))
    parser.add_argument("file", metavar="SPEC",
                        help=".arch spec file; - reads it from standard input")
    parser.add_argument("layers", nargs="*", metavar="LAYER",
                        help="a layer's name (conv1, basic1.residual1.body.conv1), a block call "
                             "(basic1), a block (basic: every call) or a spec line number; "
                             "default: every layer")
    add_spec_options(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="output format")
    parser.set_defaults(func=cmd_explain)


def cmd_explain(args) -> int:
    """Run `archdsl explain`: print the explanations; a usage error (an unreadable file, an
    unknown layer) is raised for the CLI's error boundary."""

    params, input_shape = parse_sets(args.set), parse_input(args.input)
    text = read_spec_file(args.file)
    network, diagnostics = analyse(text, spec_name(args.file), params, input_shape)
    if network is None:
        print_diagnostics(diagnostics, text)
        print(f"{spec_name(args.file)}: nothing explained: the spec has errors", file=sys.stderr)
        return EXIT_SPEC
    try:
        explanations = explain(network, args.layers)
    except UnknownLayer as exc:
        raise UsageError(str(exc)) from None
    if args.format == "json":
        print(json.dumps(to_json(network, explanations), indent=2, allow_nan=False))
    else:
        print(render_text(explanations))
    return EXIT_OK
