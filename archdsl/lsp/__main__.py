"""`python -m archdsl.lsp`: the language server on its own, which is `archdsl lsp`."""

import sys

from archdsl.cli import main

sys.exit(main(["lsp", *sys.argv[1:]]))
