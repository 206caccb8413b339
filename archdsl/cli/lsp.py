"""`archdsl lsp`: the language server for editors over stdin/stdout (archdsl/lsp/ is the
server; it needs `archdsl[editor]`'s pygls)."""

from __future__ import annotations

from ..command_values import EXIT_OK, UsageError, epilog


def add_lsp(sub) -> None:
    """Declare `archdsl lsp` on `sub` (the result of `parser.add_subparsers()`)."""
    parser = sub.add_parser(
        "lsp", help="run the language server for editors (over stdio)",
        description="Run archdsl's language server over stdin/stdout, for an editor to start: "
                    "diagnostics as you type, hover, completion, go to definition, references, "
                    "symbols, inlay hints of each line's output shape, colouring and formatting. "
                    "See docs/editors.md.",
        epilog=epilog(["archdsl lsp", "archdsl lsp --stdio"], "docs/editors.md"))
    parser.add_argument("--stdio", action="store_true",
                        help="talk over stdin/stdout (the default and only transport; accepted "
                             "because editors pass it)")
    parser.set_defaults(func=cmd_lsp, command="lsp")


def cmd_lsp(args) -> int:
    """Serve until the editor says exit."""
    try:
        from ..lsp.handlers import make_server
    except ImportError as exc:
        raise UsageError(f"the language server needs pygls ({exc.name} is not installed): "
                         "pip install 'archdsl[editor]'") from None
    code = make_server().start_io()
    return EXIT_OK if code == 0 else code
