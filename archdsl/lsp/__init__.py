"""`archdsl lsp`: a language server for .arch files over stdio (needs `archdsl[editor]`'s
pygls; see docs/editors.md).

    index.py      a document checked as `archdsl check` does, and the index of its names
    features.py   hover
    outline.py    completion, symbols, inlay hints, semantic tokens
    codes.py      what each diagnostic code means
    positions.py  archdsl's positions (code points) and the editor's (UTF-16 units)
    transport.py  the stdin stream cut into messages, broken frames included
    worker.py     checks and formatting in a child process that can be stopped
    server.py     the server: debounced checks in the worker, diagnostics, protocol errors
    handlers.py   the protocol's requests, each a thin shell over the above
"""

from __future__ import annotations

__all__ = ["add_lsp", "cmd_lsp"]


def add_lsp(sub) -> None:
    """Declare `archdsl lsp` on `sub` (the result of `parser.add_subparsers()`)."""
    from ..command_values import epilog

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
    from ..command_values import EXIT_OK, UsageError

    try:
        from .handlers import make_server
    except ImportError as exc:
        raise UsageError(f"the language server needs pygls ({exc.name} is not installed): "
                         "pip install 'archdsl[editor]'") from None
    code = make_server().start_io()
    return EXIT_OK if code == 0 else code
