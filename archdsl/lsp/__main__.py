"""`python -m archdsl.lsp`: the language server on its own."""

import sys

from . import main

sys.exit(main())
