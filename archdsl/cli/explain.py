"""`archdsl explain SPEC [LAYER...]`: the arithmetic behind each layer's numbers
(archdsl/explain.py). It never imports torch."""

from __future__ import annotations

import json
import sys

from ..command_values import (EXIT_OK, EXIT_SPEC, add_spec_options, epilog, parse_input,
                              parse_sets, print_diagnostics, spec_source, UsageError)
from ..explain import UnknownLayer, explain_layer, render_text, select, to_json
from ..network import analyse_graph
from ..report import checked_prefix


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
                        help=".arch spec file, or a run folder (its spec and parameters); - reads "
                             "it from standard input")
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
    unknown layer) is raised for the CLI's error boundary. A spec with errors is explained up
    to its first error, then the errors are shown (exit 1)."""
    input_shape = parse_input(args.input)
    text, name, params = spec_source(args.file, parse_sets(args.set))  # a run folder: its spec copy
    _, graph, diagnostics = analyse_graph(text, name, params, input_shape)
    errors = [d for d in diagnostics if d.is_error]
    if graph is None:
        print_diagnostics(diagnostics, text)
        print(f"{name}: nothing explained: the spec has errors before any shape is known",
              file=sys.stderr)
        return EXIT_SPEC
    known = set(checked_prefix(graph)) if errors else None
    try:
        chosen = select(graph, args.layers)
    except UnknownLayer as exc:
        raise UsageError(str(exc)) from None
    explanations = [explain_layer(graph, nid) for nid in chosen if known is None or nid in known]
    if args.format == "json":
        print(json.dumps(to_json(graph, explanations), indent=2, allow_nan=False))
    elif explanations:
        print(render_text(explanations))
    if not errors:
        return EXIT_OK
    print_diagnostics(diagnostics, text)
    left = len(chosen) - len(explanations)
    print(f"{name}: explained up to the first error" + (
        f"; {left} layer{'s' if left != 1 else ''} from there on left unexplained" if left
        else ""), file=sys.stderr)
    return EXIT_SPEC
