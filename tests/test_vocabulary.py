"""archdsl.vocabulary: the language's words, found once. Every keyword of the grammar has its
hover text, and a kind registered at run time is known at once to the formatter, the
Pygments lexer and the language server."""

import subprocess
import sys

import pytest
from pygments.token import Keyword, Name

from archdsl import vocabulary
from archdsl.fmt import format_text
from archdsl.highlight import ArchLexer, token_table
from archdsl.layers import REGISTRY
from archdsl.layers.base import BOOL, INT, Arg, LayerKind, layer
from archdsl.lsp.features import hover
from archdsl.lsp.index import check
from archdsl.lsp.outline import completion

SPEC = "input 3x8x8\nconv 4 k3 p1\ntiles q3 lapped\n"


@pytest.fixture
def tiles():
    """`tiles q3 lapped`: a kind with a flag letter no other kind uses, for one test."""

    @layer("tiles", family="shape", words={"lapped": ("overlap", True)},
           summary="splits the map into tiles (a test kind)")
    class Tiles(LayerKind):
        args = (Arg("tiles", INT, 2, flag="q", min=1, doc="tiles along each side"),
                Arg("overlap", BOOL, False, doc="whether neighbouring tiles overlap"))

    try:
        yield "tiles"
    finally:
        REGISTRY.pop("tiles", None)


def test_every_keyword_of_the_grammar_has_a_description():
    assert set(vocabulary.keywords()) == set(vocabulary.STATEMENTS)
    assert all(text.startswith("`") for text in vocabulary.STATEMENTS.values())


def test_keywords_come_from_the_grammar():
    assert vocabulary.statement_keywords() == ("arch", "input", "init", "output", "block", "def",
                                                  "repeat")
    assert vocabulary.expression_keywords() == ("and", "else", "if", "not", "or")
    assert "as" in vocabulary.keywords()


def test_the_registry_gives_kinds_flags_and_words():
    assert {"conv", "relu", "add"} <= set(vocabulary.layer_kinds())
    assert {"k", "s", "p", "d", "g"} <= set(vocabulary.flag_letters())
    assert "nobias" in vocabulary.bare_words() and "conv" not in vocabulary.bare_words()
    assert {"residual", "add"} <= set(vocabulary.combinators())
    assert {"min", "max", "floor"} <= set(vocabulary.functions())


def test_importing_the_vocabulary_loads_neither_torch_nor_lark():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, archdsl.vocabulary; "
         "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lark'}))"],
        capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_a_new_kind_is_known_to_the_vocabulary(tiles):
    assert "tiles" in vocabulary.layer_kinds() and "q" in vocabulary.flag_letters()
    assert "lapped" in vocabulary.bare_words()


def test_the_formatter_keeps_a_line_of_a_new_kind(tiles):
    assert format_text(SPEC) == SPEC


def test_the_lexer_colours_a_new_kind_and_its_flag(tiles):
    lexer = type("FreshLexer", (ArchLexer,), {"tokens": token_table()})()
    kinds = {text: kind for kind, text in lexer.get_tokens(SPEC) if text.strip()}
    assert kinds["tiles"] is Name.Function and kinds["q3"] is Name.Attribute
    assert kinds["input"] is Keyword


def test_the_language_server_completes_and_explains_a_new_kind(tiles):
    doc = check(SPEC, "net.arch")
    assert doc.diagnostics == []
    labels = {item.label for item in completion(doc, 3, len("tiles q3 ") + 1)}
    assert {"q", "lapped"} <= labels
    assert "tiles along each side" in hover(doc, 3, len("tiles ") + 1)
    assert "tiles" in {item.label for item in completion(doc, 4, 1)}


def test_hover_explains_every_keyword():
    doc = check("arch net(c=8)\ninput 3x8x8\nrepeat 2 as i { conv (c if i > 0 else 4) k1; relu }\n",
                "net.arch")
    line = doc.lines[2]
    for word in ("repeat", "as", "if", "else"):
        assert hover(doc, 3, line.index(f"{word} ") + 1) == vocabulary.STATEMENTS[word]
