"""A Pygments lexer for .arch specs, registered as the `arch` lexer through the
`pygments.lexers` entry point: Sphinx, MkDocs and other Pygments users colour ```arch
blocks with it."""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, Text

__all__ = ["ArchLexer"]


def _kinds() -> list[str]:
    from .layers import REGISTRY

    return sorted(REGISTRY, key=len, reverse=True)


class ArchLexer(RegexLexer):
    """archdsl's .arch language."""

    name = "archdsl"
    aliases = ["arch", "archdsl"]
    filenames = ["*.arch"]
    mimetypes = ["text/x-archdsl"]

    tokens = {
        "root": [
            (r"#.*?$", Comment.Single),
            (r"\s+", Text),
            (words(("arch", "block", "repeat", "as", "input", "init", "def", "if", "else"),
                   suffix=r"\b"), Keyword),
            (r"([A-Za-z_][A-Za-z0-9_]*)(\s*)(<)", bygroups(Name.Builtin, Text, Punctuation)),
            (r"([A-Za-z_][A-Za-z0-9_]*)(=)", bygroups(Name.Attribute, Operator)),
            (r"\b[kspdg][0-9]+(x[0-9]+)*\b", Name.Attribute),
            (words(tuple(_kinds()), prefix=r"\b", suffix=r"\b"), Name.Function),
            (r"[0-9]+(x[0-9]+)+\b", Number),
            (r"([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+", Number.Float),
            (r"[0-9]+", Number.Integer),
            (r"[A-Za-z_][A-Za-z0-9_]*", Name),
            (r"//|[<>=!]=|[-+*/%=]", Operator),
            (r"[;,(){}<>|]", Punctuation),
        ],
    }
