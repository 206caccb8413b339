"""The language's words, found once for every tool that needs them: the formatter, the
Pygments lexer, the language server and the TextMate grammar writer.

Keywords come from grammars/archdsl.lark; layer kinds, flag letters and bare words from the
layer registry; combinators from archdsl.layers.merge; functions from the expressions'
built-ins. Everything is worked out when asked, so importing this module reads no file and
loads neither Lark nor torch.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from .layers import REGISTRY

__all__ = ["STATEMENTS", "grammar_file", "keywords", "statement_keywords",
           "expression_keywords", "layer_kinds", "flag_letters", "bare_words", "combinators",
           "functions"]

# Hover text of every keyword; tests/test_vocabulary.py fails while a keyword lacks one.
STATEMENTS = {
    "arch": "`arch name(param=default, …)`: the network's name and parameters",
    "input": "`input CxHxW`: one sample's shape, channels first",
    "init": "`init resnet zero_residual`: how the weights start out",
    "output": "`output logits, aux aux=0.3`: the network's outputs by name, the first the main "
              "one; `aux=w` marks one used only in training, its loss weighted w",
    "block": "`block name(params) a, b -> p, q { … }`: a named, parameterised group of layers; "
             "the values it takes and gives may be named after its parameters",
    "def": "`def name(params) = value`: a named expression, called as `name(…)`",
    "repeat": "`repeat n { … }`: the body n times",
    "as": "`repeat n as i { … }`: `i` holds the iteration's index, 0 … n-1, inside the body",
    "if": "`(a if cond else b)`: a where cond holds, else b; inside parentheses only",
    "else": "`(a if cond else b)`: b where cond does not hold",
    "and": "`(a if c > 8 and d else b)`: both conditions hold",
    "or": "`(a if c > 8 or d else b)`: at least one condition holds",
    "not": "`(a if not d else b)`: the condition does not hold",
}


def grammar_file() -> Path:
    """grammars/archdsl.lark, where archdsl.syntax finds it: inside the package when
    installed, beside the package in a source checkout."""
    from .syntax import _GRAMMAR_PLACES

    here = Path(__file__).parent
    for place in _GRAMMAR_PLACES:
        if (here / place).is_file():
            return here / place
    raise FileNotFoundError("archdsl.lark not found next to the package")  # broken install


@lru_cache(maxsize=1)
def _rules() -> dict[str, str]:
    """The grammar's rules and terminals, name -> definition, comment lines left out."""
    text = re.sub(r"(?m)^\s*//.*$", "", grammar_file().read_text())
    parts = re.split(r"(?m)^\??(\w+)(?:\.\d+)?:", text)
    return dict(zip(parts[1::2], parts[2::2]))


def _words(definition: str) -> set[str]:
    return set(re.findall(r'"([a-z]+)"', definition))


@lru_cache(maxsize=1)
def keywords() -> tuple[str, ...]:
    """The grammar's literal words (`arch`, `repeat`, `if`, …), sorted."""
    return tuple(sorted(set().union(*map(_words, _rules().values()))))


@lru_cache(maxsize=1)
def statement_keywords() -> tuple[str, ...]:
    """The keywords that start a statement (`arch`, `block`, `repeat`, …), in grammar order."""
    starts = (re.match(r'\s*"([a-z]+)"', definition) for definition in _rules().values())
    return tuple(m.group(1) for m in starts if m)


@lru_cache(maxsize=1)
def expression_keywords() -> tuple[str, ...]:
    """The keywords inside a value (`if` and `else` of `(a if c else b)`): those of the rules
    a parenthesised value, the grammar's `test`, is made of. A value may follow each."""
    rules, seen, todo = _rules(), set(), ["test"]
    while todo:
        name = todo.pop()
        if name in rules and name not in seen:
            seen.add(name)
            todo += re.findall(r"[a-z_]+", re.sub(r'"[^"]*"', "", rules[name]))
    return tuple(sorted(set().union(*(_words(rules[name]) for name in seen))))


def layer_kinds() -> list[str]:
    """Every registered layer kind, merges included, sorted."""
    return sorted(REGISTRY)


def flag_letters() -> list[str]:
    """Every short flag letter of every registered kind (`k` of `k3`), sorted."""
    return sorted({letter for kind in REGISTRY.values() for letter in kind.flags()})


def bare_words() -> list[str]:
    """Words written alone as an argument: kinds' words (`nobias`) and argument choices
    (`reflect`), sorted; none is a kind's name."""
    words = set()
    for kind in REGISTRY.values():
        words |= set(kind.words)
        for arg in kind.args:
            words |= set(arg.choices)
    return sorted(words - set(REGISTRY))


def combinators() -> list[str]:
    """The names written before `<`: `residual`, `shortcut_first` and every merge kind."""
    from .layers.merge import combinator_names

    return combinator_names()


def functions() -> list[str]:
    """The built-in functions of expressions (`max`, `floor`, …), sorted."""
    from .expand.expressions import FUNCTIONS

    return sorted(FUNCTIONS)
