"""The meaning of a diagnostic code for the hover: declared once, in archdsl/codes.py."""

from ..codes import explain_code  # noqa: F401
