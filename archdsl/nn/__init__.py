"""archdsl's own torch modules, for layer kinds torch.nn has no class for.

A kind declares one as `call("archdsl.nn.<file>:<Class>", …)` (layers/base.py). Each class
is self-contained: it uses torch, nn and F only, since `export --to python` copies its
source into the standalone file. Nothing here is imported on the check path.
"""
