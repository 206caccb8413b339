"""The language server (`archdsl lsp`, archdsl/cli/lsp.py): a language server for .arch files over stdio (needs `archdsl[editor]`'s
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
