"""`python -m archdsl.lsp`: the language server on its own, which is `archdsl lsp`."""

import importlib
import sys

# archdsl.cli imports this package; reached by name, as archdsl.fmt's __main__ does
sys.exit(importlib.import_module("archdsl.cli").main(["lsp", *sys.argv[1:]]))
