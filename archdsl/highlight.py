"""A Pygments lexer for .arch specs, registered as the `arch` lexer through the
`pygments.lexers` entry point: Sphinx, MkDocs and other Pygments users colour ```arch
blocks with it."""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, Text

from .vocabulary import flag_letters, functions, keywords, layer_kinds

__all__ = ["ArchLexer", "token_table"]


def token_table() -> dict:
    """The lexer's states, from the vocabulary as it stands now: Pygments compiles them once
    per class, so a kind registered later is seen by a subclass built with a new table."""
    return {
        "root": [
            (r"#.*?$", Comment.Single),
            (r"\s+", Text),
            (words(keywords(), suffix=r"\b"), Keyword),
            (r"([A-Za-z_][A-Za-z0-9_]*)(\s*)(<)", bygroups(Name.Builtin, Text, Punctuation)),
            (r"([A-Za-z_][A-Za-z0-9_]*)(=)", bygroups(Name.Attribute, Operator)),
            (rf"\b[{''.join(flag_letters())}][0-9]+(x[0-9]+)*\b", Name.Attribute),
            # a built-in function called (`max(a, b)`), even where a kind has its name
            (words(functions(), prefix=r"\b", suffix=r"(?=\()"), Name.Builtin.Pseudo),
            (words(layer_kinds(), prefix=r"\b", suffix=r"\b"), Name.Function),
            (r"[0-9]+(x[0-9]+)+\b", Number),
            (r"([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+", Number.Float),
            (r"[0-9]+", Number.Integer),
            (r"[A-Za-z_][A-Za-z0-9_]*", Name),
            (r"//|[<>=!]=|[-+*/%=]", Operator),
            (r"[;,(){}<>|]", Punctuation),
        ],
    }


class ArchLexer(RegexLexer):
    """archdsl's .arch language."""

    name = "archdsl"
    aliases = ["arch", "archdsl"]
    filenames = ["*.arch"]
    mimetypes = ["text/x-archdsl"]

    tokens = token_table()
