"""The Pygments lexer: found through its entry point by name and by file name, and every
spec in specs/ lexes without an error token."""

import pytest
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Error, Keyword, Name, Number, Operator

from fuzzgen import SPEC_TEXTS


def test_the_lexer_is_registered_by_name_and_by_file_name():
    assert type(get_lexer_by_name("arch")).__name__ == "ArchLexer"
    assert type(get_lexer_for_filename("net.arch")).__name__ == "ArchLexer"


@pytest.mark.parametrize("name", sorted(SPEC_TEXTS))
def test_every_spec_lexes_without_errors(name):
    tokens = list(get_lexer_by_name("arch").get_tokens(SPEC_TEXTS[name]))
    assert [t for t in tokens if t[0] is Error] == []
    assert "".join(text for _, text in tokens) == SPEC_TEXTS[name] + (
        "" if SPEC_TEXTS[name].endswith("\n") else "\n")


def test_the_parts_of_a_statement_get_their_colours():
    kinds = {text: kind for kind, text in get_lexer_by_name("arch").get_tokens(
        "block b(c) { residual< conv c*2 k3 s=2 nobias > }  # note\n") if text.strip()}
    assert kinds["block"] is Keyword and kinds["conv"] is Name.Function
    assert kinds["residual"] is Name.Builtin and kinds["k3"] is Name.Attribute
    assert kinds["s"] is Name.Attribute and kinds["2"] in Number.Integer


def test_definitions_and_conditionals_are_keywords():
    kinds = {text: kind for kind, text in get_lexer_by_name("arch").get_tokens(
        "def half(c) = (c // 2 if c != 8 else c)\n") if text.strip()}
    assert kinds["def"] is Keyword and kinds["if"] is Keyword and kinds["else"] is Keyword
    assert kinds["!="] in Operator and kinds["//"] in Operator
