"""`archdsl time SPEC`: each layer's forward and backward time beside its MACs, as a table
or JSON (archdsl/timing.py does the work)."""

from __future__ import annotations

import argparse
import json
import sys

from ..command_values import (EXIT_OK, EXIT_SPEC, add_spec_options, color, epilog, parse_input,
                              parse_sets, print_diagnostics, spec_source, UsageError)


def _at_least(least: int):
    """An argparse type: a whole number of at least `least`."""
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value
    return convert


def add_time(sub) -> None:
    """Declare `archdsl time SPEC [--device cpu|cuda] [--batch-size N] [--repeat N] [--warmup
    N] [--set NAME=VALUE]... [--input CxHxW] [--format table|json] [--wide]` on `sub` (the result of
    `parser.add_subparsers()`)."""
    parser = sub.add_parser(
        "time", help="time each layer's forward and backward pass of the compiled network",
        description="Compile a spec and time every layer's forward and backward pass in "
                    "training mode (medians of several passes after warm-up), beside its MACs "
                    "and the GFLOP/s it achieves; rank the costliest layers, and set the sum "
                    "of the layers beside a whole pass timed without hooks.",
        epilog=epilog(["archdsl time specs/resnet18.arch",
                       "archdsl time specs/resnet50.arch --device cuda --batch-size 64",
                       "archdsl time specs/lenet5.arch --format json"], "docs/time.md"))
    parser.add_argument("file", metavar="SPEC",
                        help=".arch spec file, or a run folder (its spec and parameters); - "
                             "reads it from standard input")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where the network runs")
    parser.add_argument("--batch-size", type=_at_least(1), default=8, metavar="N",
                        help="samples in the batch")
    parser.add_argument("--repeat", type=_at_least(1), default=5, metavar="N",
                        help="timed rounds (a plain pass, a forward-hooked and a backward-hooked "
                             "one each); medians are shown")
    parser.add_argument("--warmup", type=_at_least(0), default=2, metavar="N",
                        help="rounds run before timing starts")
    add_spec_options(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="output format")
    parser.add_argument("--wide", action="store_true",
                        help="the table with every column (op, GFLOP/s) and whole layer names, "
                             "however wide; by default it fits 80 columns")
    parser.set_defaults(func=cmd_time)


def cmd_time(args) -> int:
    """Run `archdsl time`; a usage error is raised for the CLI's error boundary."""
    from ..diagnostics import SpecError
    from ..network import analyse
    from ..timing import table, time_network, to_json

    input_shape = parse_input(args.input)
    text, name, params = spec_source(args.file, parse_sets(args.set))  # a run folder: its spec copy
    if args.device == "cuda":
        _need_cuda()
    network, diagnostics = analyse(text, name, params, input_shape)
    if network is None:
        print_diagnostics(diagnostics, text)
        print(f"{name}: not timed: the spec has errors", file=sys.stderr)
        return EXIT_SPEC
    try:
        timing = time_network(network, device=args.device, batch_size=args.batch_size,
                              warmup=args.warmup, repeat=args.repeat)
    except SpecError as exc:  # too big to build: refused before allocating
        print(exc.render(color=color(sys.stderr)), file=sys.stderr)
        print(f"{name}: not timed", file=sys.stderr)
        return EXIT_SPEC
    except (MemoryError, RuntimeError, ValueError) as exc:
        print(f"archdsl time: error: {_failure(exc, args.batch_size)}", file=sys.stderr)
        return EXIT_SPEC
    if args.format == "json":
        print(json.dumps(to_json(timing), indent=2))
    else:
        print(table(timing, wide=args.wide))
    return EXIT_OK


def _need_cuda() -> None:
    import torch

    if not torch.cuda.is_available():
        raise UsageError("--device cuda: torch sees no CUDA device on this machine "
                         f"(torch {torch.__version__}); use --device cpu")


def _failure(exc: Exception, batch: int) -> str:
    """What went wrong while the network ran, in a line, with what to try."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    if isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate" in text:
        return f"out of memory with a batch of {batch}; use a smaller --batch-size"
    return f"the network failed while timed: {text}"
