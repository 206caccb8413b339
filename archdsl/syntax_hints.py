"""What syntax errors say, as data: Lark's error reporting by example (a table of bad
snippets, and the parser state each one stops in, name the mistake), hints for tokens and
characters, and the statement-level hints for habits from other languages: a shape written
with spaces (`input 3 x 32 x 32`), a layer called like a function (`conv(64 k=3 p=1)`).
syntax.py reads these; they import nothing of it."""

from __future__ import annotations

import re

from . import layers

# Lark's error reporting by example: a table of bad snippets, and the parser state each one
# stops in, name the mistake (UnexpectedInput.match_examples). The snippets are grouped by
# the token the parser stumbles on, because one place in the grammar means different things
# for different tokens. A mistake the table does not know gets the generic message below it.

UNCLOSED = {f"`{c}`": f"the file ends before a closing `{c}`" for c in ">})"}
OPENERS = {"{": "}", "<": ">", "(": ")"}

# Ways a body can stop short: after each kind of statement, one or several of them.
BODY_ENDINGS = ("", "relu", "relu;", "relu\n", "conv 8", "conv 8 k3", "conv 8.5", "conv 8x8",
                 "conv s=1", "conv (1)", "conv a", "conv a*b", "conv a+b", "add< relu >",
                 "repeat 2 { relu }", "input 3x8x8", "input 3", "arch a", "arch a()", "init",
                 "init resnet", "block a { relu }", "block a() { relu }", "relu; relu",
                 "relu; relu;", "relu; conv 8", "relu; conv a", "relu; conv s=1",
                 "relu; add< relu >", "relu; repeat 2 { relu }", "repeat 2 as i { relu }")
# What follows a statement without `;` or a new line: a word.
NO_SEPARATOR = ("input 3x8x8 b", "input 3 b", "arch a b", "arch a() b", "add< relu > b",
                 "add< relu | relu > b", "repeat 2 { relu } b", "repeat 2 as i { relu } b", "block a { relu } b",
                 "block a() { relu } b", "arch a(c d", "arch a(c=1 d",
                 "arch a(c=b d", "arch a(c, d e", "arch a(c, d=1 e")

EXAMPLES: dict[str, dict[str, list[str]]] = {
    "$END": {
        "unclosed `>`": [opener + body for opener in ("add< ", "add< relu | ", "add< relu | relu | ")
                         for body in BODY_ENDINGS],
        "unclosed `}`": [opener + body for opener in ("repeat 2 { ", "repeat 2 as i { ",
                                                      "block a { ", "block a(c) { ")
                         for body in BODY_ENDINGS],
        "unclosed `)`": [
            "arch a(", "arch a(c", "arch a(c=1", "arch a(c=1.5", "arch a(c=1x2",
            "arch a(c=b", "arch a(c=b*2", "arch a(c=b+2", "arch a(c=(1)", "arch a(c\n",
            "conv (1", "conv (a", "conv (1.5", "conv (1x2", "conv (a*b", "conv (a+b", "conv ((1)",
            "conv s=(1", "conv s=(a", "conv s=(a+b", "conv s=(a*b",
        ],
    },
    "NAME": {
        "missing separator": [opener + stmt + closer for opener, closer in (
            ("", ""), ("relu; ", ""), ("add< ", " >"), ("add< relu; ", " >"), ("add< relu | ", " >"),
            ("repeat 2 { ", " }"), ("repeat 2 { relu; ", " }"), ("repeat 2 as i { ", " }"),
            ("block a(c) { ", " }"))
            for stmt in NO_SEPARATOR if not stmt.startswith(("arch a(", "block"))
            or opener == ""],
    },
    **{token: {"index not a name": [f"repeat 2 as {index}" for index in indices]} for token, indices
       in (("INT", ("3", "(3")), ("FLOAT", ("1.5",)), ("SHAPE", ("3x3",)), ("LBRACE", ("{",)),
           ("LPAR", ("(",)), ("MINUS", ("-",)))},
    "_SEP": {
        "missing `)`": ["conv (1\n", "conv (a\n", "conv (a+b\n", "conv (a*b\n", "conv s=(1\n",
                        "arch a(c=(1\n"],
    },
}

# Tokens that mean the same mistake wherever they stand.
TOKEN_HINTS = {
    "COMMA": "arguments are separated by spaces, not commas",
    "MINUS": "a negative value can only follow `=` or `(`: write `name=-1` or `(-1)`",
}
STRAY_CLOSERS = {"MORETHAN": "`>` closes nothing here", "RBRACE": "`}` closes nothing here"}

# Characters that are no token at all.
CHARACTER_HINTS = {
    ",": "arguments are separated by spaces, not commas",
    '"': "the language has no strings: write the bare word, e.g. `padding_mode=reflect`",
    "'": "the language has no strings: write the bare word, e.g. `padding_mode=reflect`",
    "[": "branches are written `concat< a | b >`",
    ":": "keywords are written `name=value`",
    "\x00": "this does not look like a text file",
}

TOKEN_WORDS = {
    "NAME": "a name", "INT": "a number", "FLOAT": "a number", "SHAPE": "a shape such as 3x224x224",
    "_SEP": "a new line or `;`", "$END": "the end of the file",
}


# A statement is read from the last of these before an error to the first after it.
_STARTS, _ENDS = ";\n{<|", ";\n#|>}"
_SPACED_SHAPE = re.compile(r"(?<![0-9])[0-9]+(?:\s*x\s*[0-9]+)+")  # one start per digit run
_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(([^()]*)\)")
_KEYWORD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=([0-9]+(?:x[0-9]+)?)")


def statement_at(text: str, pos: int) -> str:
    """The statement around offset `pos` of `text`, without its comment."""
    start = max(text.rfind(ch, 0, pos) for ch in _STARTS) + 1
    ends = [i for i in (text.find(ch, pos) for ch in _ENDS) if i != -1]
    return text[start:min(ends) if ends else len(text)].strip()


def statement_hint(text: str, pos: int | None, found: str) -> str | None:
    """A hint that writes the statement at `pos` the archdsl way, when the error (at the token
    or character `found`) comes of another language's habit; None otherwise."""
    if pos is None or pos > len(text):
        return None
    statement = statement_at(text, pos)
    if found.startswith("x"):
        for m in _SPACED_SHAPE.finditer(statement):
            if any(ch.isspace() for ch in m.group()):
                fixed = statement[:m.start()] + "".join(m.group().split()) + statement[m.end():]
                return f"shapes are written without spaces: `{fixed}`"
    if _GLUED_MINUS.match(statement):  # `conv -1 k3`: tensor arithmetic `conv - 1`, then k3
        return TOKEN_HINTS["MINUS"]
    return call_hint(statement)


# a layer's first argument written as a negative value: `conv -1 k3`, `leakyrelu -0.5 x`
_GLUED_MINUS = re.compile(r"\s*[A-Za-z_]\w*\s+-[\w.(]")


def call_hint(statement: str) -> str | None:
    """For `conv(64 k=3 p=1)`: archdsl writes the arguments after the name, without
    parentheses or commas, and a flag's value after its letter (`k3`)."""
    m = _CALL.fullmatch(statement)
    if m is None:
        return None
    kind = layers.get(m.group(1))
    flags = kind.flags() if kind is not None else {}
    words = []
    for word in re.split(r"[\s,]+", m.group(2).strip()):
        keyword = _KEYWORD.fullmatch(word)
        words.append(f"{keyword.group(1)}{keyword.group(2)}" if keyword and keyword.group(1)
                     in flags else word)
    fixed = " ".join(w for w in [m.group(1), *words] if w)
    return f"archdsl writes a layer without parentheses, its arguments after its name: `{fixed}`"
