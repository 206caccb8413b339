"""`archdsl draw FILE`: the layer graph as a picture (svg, png, pdf, or dot source) through
Graphviz (archdsl/draw.py does the work)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..command_values import (EXIT_OK, EXIT_SPEC, STDIN, add_spec_options, epilog, parse_input,
                              parse_sets, print_diagnostics, spec_source, UsageError)
from ..output_files import writable_output

DRAW_FORMATS = ("svg", "png", "pdf", "dot")
MIN_DPI, MAX_DPI = 10, 1200


def _dpi(text: str) -> int:
    """--dpi N: a whole number of dots per inch within reason (argparse's type)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not MIN_DPI <= value <= MAX_DPI:
        raise argparse.ArgumentTypeError(f"must be {MIN_DPI} to {MAX_DPI}, got {value}")
    return value


def add_draw(sub) -> None:
    """Declare `archdsl draw` on `sub` (the result of `parser.add_subparsers()`)."""
    draw = sub.add_parser(
        "draw", help="draw the network as a picture (svg, png, pdf or dot)",
        description="Draw a spec's layer graph with Graphviz: a node per layer with its key "
                    "arguments and parameters, edges labelled with tensor shapes, blocks as "
                    "clusters. A spec with errors is drawn as far as it can be, the faulty "
                    "layers in red, and the command exits 1.",
        epilog=epilog(["archdsl draw specs/alexnet.arch -o alexnet.png --dpi 150",
                       "archdsl draw specs/googlenet.arch --expand inception1",
                       "archdsl draw specs/resnet18.arch --expand first --direction LR"],
                      "docs/draw.md"))
    draw.add_argument("file", metavar="FILE",
                      help=".arch spec file, or a run folder (its spec and parameters); - reads "
                           "it from standard input (then give -o)")
    draw.add_argument("-o", "--output", metavar="OUT",
                      help="picture to write; the format follows the extension: .svg, .png, .pdf "
                           "or .dot (default: the spec's name with .svg, in the current folder)")
    draw.add_argument("--collapse", action="append", metavar="all|none|NAME[,NAME…]",
                      help="draw block calls as single nodes: all (the outermost calls), none, or "
                           "the calls of the named blocks (comma-separated, or --collapse "
                           "repeated); default: collapse the deepest blocks and repeats until "
                           "the picture fits a page")
    draw.add_argument("--expand", action="append", metavar="NAME[,NAME…]",
                      help="draw these open whatever --collapse says: a block call or repeat "
                           "by the name check gives its layers (stage2, stage2.repeat1), every "
                           "call of a block by the block's name, first (the first call of each "
                           "block called more than once), or none; comma-separated or repeated; "
                           "default: first, where the picture still fits a page")
    draw.add_argument("--direction", choices=("TB", "LR"), default="TB",
                      help="TB: top to bottom, LR: left to right")
    draw.add_argument("--dpi", type=_dpi, metavar="N",
                      help=f"a PNG's resolution in dots per inch, {MIN_DPI} to {MAX_DPI} "
                           "(default 96; SVG and PDF scale without it)")
    draw.add_argument("--force", action="store_true",
                      help="replace OUT even if it is not an earlier archdsl drawing")
    add_spec_options(draw)
    draw.set_defaults(func=cmd_draw)


def cmd_draw(args) -> int:
    """Draw the spec as far as it can be read; 1 if it has errors (they are drawn in red)."""
    import shutil

    from ..draw import (DrawOptions, drawn_by_archdsl, render, to_dot, unknown_blocks,
                        unknown_expand)
    from ..files import atomic_write_bytes
    from ..network import analyse_graph

    text, name, params = spec_source(args.file, parse_sets(args.set))  # a run folder: its spec copy
    spec_path = Path(name)
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
    if args.dpi is not None and fmt != "png":
        raise UsageError(f"--dpi sets a PNG's resolution; {out} is {fmt.upper()}, which "
                         + ("is text" if fmt == "dot" else "scales without it"))
    collapse = _collapse_option(args.collapse)
    expand = _names(args.expand) if args.expand is not None else None
    if args.file != STDIN and out.exists() and out.resolve() == spec_path.resolve():
        raise UsageError(f"refusing to draw over the spec itself ({out})")
    writable_output(out, "-o", args.force, ours=drawn_by_archdsl, kind="an archdsl drawing",
                    such_as="net.svg")
    _, graph, diagnostics = analyse_graph(text, name, params, parse_input(args.input))
    if graph is not None and isinstance(collapse, list) and unknown_blocks(collapse, graph):
        raise UsageError(unknown_blocks(collapse, graph))
    if graph is not None and expand and unknown_expand(expand, graph):
        raise UsageError(unknown_expand(expand, graph))
    print_diagnostics(diagnostics, text)
    if graph is None:
        print(f"{name}: nothing drawn: the spec could not be read", file=sys.stderr)
        return EXIT_SPEC
    dot = to_dot(graph, diagnostics, DrawOptions(collapse=collapse, direction=args.direction,
                                                 expand=expand))
    atomic_write_bytes(out, render(dot, fmt, args.dpi))
    errors = any(d.is_error for d in diagnostics)
    print(f"wrote {out}" + (" (with the errors marked in red)" if errors else ""))
    return EXIT_SPEC if errors else EXIT_OK


def _names(values: list[str] | None) -> list[str]:
    """NAME[,NAME…], repeatable, as one list."""
    return [n.strip() for v in values or () for n in v.split(",") if n.strip()]


def _collapse_option(values: list[str] | None):
    """--collapse all|none|NAME[,NAME…] (repeatable) -> "auto", "all", "none" or names."""
    names = _names(values)
    if not names:
        return "auto"
    alone = [n for n in names if n in ("all", "none")]
    if alone and len(names) > 1:
        raise UsageError(f"--collapse {alone[0]} stands alone; it cannot be mixed with other "
                         "values")
    return alone[0] if alone else names
