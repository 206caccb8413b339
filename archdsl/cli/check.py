"""`archdsl check FILE...`: every layer's shape, parameters, MACs and receptive field, the
totals, and located errors and warnings, as a table or JSON. It never imports torch."""

from __future__ import annotations

import json
import sys

from ..command_values import (EXIT_OK, EXIT_SPEC, EXIT_USAGE, UsageError, add_spec_options,
                              epilog, parse_input, parse_sets, print_diagnostics, spec_name,
                              spec_source)


def add_check(sub) -> None:
    """Declare `archdsl check` on `sub` (the result of `parser.add_subparsers()`)."""
    check = sub.add_parser("check", help="check specs: shapes, parameters, MACs, diagnostics",
                           description="Check .arch files: print every layer's output shape, "
                                       "parameters, MACs and receptive field, the totals, and "
                                       "located errors and warnings.",
                           epilog=epilog(["archdsl check specs/resnet18.arch",
                                          "archdsl check specs/alexnet.arch --set num_classes=10",
                                          "archdsl check specs/*.arch --format json"],
                                         "docs/cli.md (the language: docs/language.md)"))
    check.add_argument("files", nargs="+", metavar="FILE",
                       help=".arch spec file(s), or run folders (their spec with the parameters "
                            "they were trained with); - reads one from standard input")
    add_spec_options(check)
    check.add_argument("--format", choices=("table", "json"), default="table",
                       help="output format")
    check.add_argument("--strict", action="store_true", help="treat warnings as errors (exit 1)")
    check.set_defaults(func=cmd_check)


def cmd_check(args) -> int:
    """Check each file in turn; an unreadable one is reported and the others still checked."""
    from ..diagnostics import Span, error
    from ..network import Network, analyse_graph
    from ..report import partial_table, to_json

    sets = parse_sets(args.set)  # a malformed --set is a usage error before any file is read
    input_shape = parse_input(args.input)
    status = EXIT_OK
    documents = []
    for i, file in enumerate(args.files):
        name = spec_name(file)
        try:  # a run folder is its spec copy, checked with the parameters it was trained with
            text, name, params = spec_source(file, sets)
        except UsageError as exc:  # report it, and go on with the other files
            print(f"archdsl check: error: {exc}", file=sys.stderr)
            status = EXIT_USAGE
            if args.format == "json":
                documents.append(to_json(None, [error("E-FILE", str(exc), Span(name, 1, 1, 1, 1))]))
            continue
        _, graph, diagnostics = analyse_graph(text, name, params, input_shape)
        errors = any(d.is_error for d in diagnostics)
        network = Network(graph, diagnostics) if graph is not None and not errors else None
        if errors or (args.strict and diagnostics):
            status = max(status, EXIT_SPEC)
        if args.format == "json":
            documents.append(to_json(network, diagnostics))
            continue
        # the table, or, for a spec with errors, the table up to the first one: where the
        # sizes went before it failed
        shown = network.summary() if network is not None else \
            partial_table(graph) if graph is not None else None
        if shown is not None:
            if i:
                print()
            print(shown)
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
