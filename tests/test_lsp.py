"""archdsl lsp, driven as an editor drives it: a real client over stdio (pytest-lsp)."""

import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient

ROOT = Path(__file__).resolve().parent.parent
URI = "file:///tmp/net.arch"
GOOD = """arch net(num_classes=10)
input 3x32x32

block basic(c, s=1) {
  residual< conv c k3 s=s p1 nobias; bn; relu; conv c k3 p1 nobias; bn >
  relu
}

conv 16 k3 p1; bn; relu
basic 16
basic 32 s=2
adaptiveavgpool 1; flatten
linear num_classes
"""
BROKEN = GOOD.replace("conv 16 k3 p1", "conv 16 k3 p1 g=5")  # 3 input channels: E-GROUPS


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=[sys.executable, "-m", "archdsl.lsp"]))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(lsp.InitializeParams(
        capabilities=pytest_lsp.client_capabilities("visual-studio-code")))
    yield
    await lsp_client.shutdown_session()


def _open(client, text, version=1):
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        text_document=lsp.TextDocumentItem(uri=URI, language_id="arch", version=version, text=text)))


async def _diagnostics(client):
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return client.diagnostics[URI]


def _at(text, needle, offset=0):
    for i, line in enumerate(text.split("\n")):
        if needle in line:
            return lsp.Position(line=i, character=line.index(needle) + offset)
    raise AssertionError(needle)


@pytest.mark.asyncio
async def test_diagnostic_appears_at_its_range_and_clears_when_fixed(client: LanguageClient):
    _open(client, BROKEN)
    found = await _diagnostics(client)
    groups = [d for d in found if d.code == "E-GROUPS"]
    assert len(groups) == 1 and groups[0].severity == lsp.DiagnosticSeverity.Error
    start = _at(BROKEN, "g=5")
    assert groups[0].range.start == start  # where `archdsl check` puts it
    assert groups[0].range.end == lsp.Position(line=start.line, character=start.character + 3)
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=URI, version=2),
        content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=GOOD)]))
    assert [d for d in await _diagnostics(client) if d.severity == 1] == []


@pytest.mark.asyncio
async def test_an_error_in_a_block_is_shown_at_the_call_too(client: LanguageClient):
    text = GOOD.replace("basic 32 s=2", "basic 31 s=2").replace("relu\n}", "relu; conv c k1 g=2\n}")
    _open(client, text)
    found = [d for d in await _diagnostics(client) if d.code == "E-GROUPS"]
    lines = sorted(d.range.start.line for d in found)
    assert lines == [_at(text, "g=2").line, _at(text, "basic 31").line]


@pytest.mark.asyncio
async def test_hover_a_conv_reads_its_output_shape(client: LanguageClient):
    _open(client, GOOD)
    await _diagnostics(client)
    result = await client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=URI), position=_at(GOOD, "conv 16", 1)))
    assert "2-D convolution" in result.contents.value
    assert "output **16x32x32**" in result.contents.value
    assert "params 448" in result.contents.value  # 16*3*3*3 weights + 16 biases
    assert "**W-BIAS-BEFORE-BN**: " in result.contents.value  # the warning there, explained
    call = await client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=URI), position=_at(GOOD, "basic 32", 1)))
    assert "16x32x32 -> **32x16x16**" in call.contents.value


@pytest.mark.asyncio
async def test_complete_after_conv_offers_its_flags(client: LanguageClient):
    text = GOOD + "conv 64 \n"
    _open(client, text)
    await _diagnostics(client)
    result = await client.text_document_completion_async(lsp.CompletionParams(
        text_document=lsp.TextDocumentIdentifier(uri=URI), position=lsp.Position(line=text.count("\n") - 1, character=8)))
    labels = {item.label: item for item in result.items}
    assert {"k", "s", "p", "nobias", "num_classes"} <= set(labels)
    assert "kernel" in labels["k"].detail


@pytest.mark.asyncio
async def test_go_to_a_blocks_definition_and_find_its_calls(client: LanguageClient):
    _open(client, GOOD)
    await _diagnostics(client)
    where = await client.text_document_definition_async(lsp.DefinitionParams(
        text_document=lsp.TextDocumentIdentifier(uri=URI), position=_at(GOOD, "basic 32", 2)))
    assert where.range.start == _at(GOOD, "basic(c")
    refs = await client.text_document_references_async(lsp.ReferenceParams(
        text_document=lsp.TextDocumentIdentifier(uri=URI), position=_at(GOOD, "basic 16"),
        context=lsp.ReferenceContext(include_declaration=False)))
    assert sorted(r.range.start.line for r in refs) == [_at(GOOD, "basic 16").line,
                                                         _at(GOOD, "basic 32").line]


NAMED = """\
input 3x16x16
conv 8 k3 p1; relu -> skip
maxpool 2; conv 8 k3 p1
upsample 2
-> up
skip, up; add
"""


@pytest.mark.asyncio
async def test_rename_a_named_value_everywhere_it_is_meant(client: LanguageClient):
    text = NAMED
    _open(client, text)
    await _diagnostics(client)
    edit = await client.text_document_rename_async(lsp.RenameParams(
        text_document=lsp.TextDocumentIdentifier(uri=URI), position=_at(text, "skip,"),
        new_name="encoder"))
    changes = edit.changes[URI]
    assert sorted((c.range.start.line, c.range.start.character) for c in changes) == [
        (1, 22), (5, 0)]
    assert {c.new_text for c in changes} == {"encoder"}


@pytest.mark.asyncio
async def test_format_the_document(client: LanguageClient):
    text = "input 3x8x8\nconv 8 k3 ;relu\n"
    _open(client, text)
    await _diagnostics(client)
    edits = await client.text_document_formatting_async(lsp.DocumentFormattingParams(
        text_document=lsp.TextDocumentIdentifier(uri=URI), options=lsp.FormattingOptions(tab_size=2, insert_spaces=True)))
    assert [e.new_text for e in edits] == ["input 3x8x8\nconv 8 k3; relu\n"]


@pytest.mark.asyncio
async def test_symbols_inlay_hints_and_tokens(client: LanguageClient):
    _open(client, GOOD)
    await _diagnostics(client)
    symbols = await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(
        text_document=lsp.TextDocumentIdentifier(uri=URI)))
    names = [s.name for s in symbols]
    assert names[:3] == ["arch net", "input", "basic"] and "linear num_classes" in names
    hints = await client.text_document_inlay_hint_async(lsp.InlayHintParams(
        text_document=lsp.TextDocumentIdentifier(uri=URI), range=lsp.Range(start=lsp.Position(line=0, character=0), end=lsp.Position(line=20, character=0))))
    by_line = {h.position.line: h.label for h in hints}
    assert by_line[_at(GOOD, "basic 32").line] == "-> 32x16x16"
    assert by_line[_at(GOOD, "linear").line] == "-> 10"
    tokens = await client.text_document_semantic_tokens_full_async(lsp.SemanticTokensParams(
        text_document=lsp.TextDocumentIdentifier(uri=URI)))
    assert len(tokens.data) % 5 == 0 and len(tokens.data) > 100


def test_a_repeat_index_and_names_inside_functions_and_conditions_are_indexed():
    # the index's uses lead to their own repeat (two repeats may both say `i`), and a
    # parameter read inside max(...) or a conditional is a reference to it
    from archdsl.lsp.index import check, definition_of, references

    text = ("arch net(c=8)\ninput 3x8x8\n"
            "repeat 2 as i { conv max(c, 4 * i) k3 p1; relu }\n"
            "repeat 3 as i { conv (c if i > 0 else 4) k1; relu }\n")
    doc = check(text, "net.arch")
    first_use = doc.at(3, text.splitlines()[2].index("* i") + 3)
    second_use = doc.at(4, text.splitlines()[3].index("if i") + 4)
    assert (first_use.role, second_use.role) == ("index-use", "index-use")
    assert definition_of(doc, first_use)[2].line == 3
    assert definition_of(doc, second_use)[2].line == 4
    assert [(s.line, s.column) for s in references(doc, second_use)] == [(4, 13), (4, 28)]
    c_refs = references(doc, doc.at(1, 10))
    assert [s.line for s in c_refs] == [1, 3, 4]


HUGE = "input 8x16x16\nrepeat 2500 { conv 8 k3 p1; relu }\nadaptiveavgpool 1; flatten; linear 10\n"


@pytest.mark.asyncio
async def test_requests_use_the_last_check_and_a_superseded_edit_is_never_published(
        client: LanguageClient):
    # an edit to 5,000 layers waits for its check (debounced on the worker thread): a hover
    # meanwhile is answered from the last finished check, and an edit that comes before the
    # 5,000 layers' diagnostics are published replaces them: they are never shown
    _open(client, GOOD)
    await _diagnostics(client)
    published = len(client.diagnostics)  # one entry per document: counts documents
    for version, text in ((2, HUGE), (3, BROKEN)):
        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=URI, version=version),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)]))
        if version == 2:
            hover = await client.text_document_hover_async(lsp.HoverParams(
                text_document=lsp.TextDocumentIdentifier(uri=URI),
                position=_at(GOOD, "conv 16")))
            assert "16x32x32" in hover.contents.value  # GOOD's check, the last finished
            assert not [d for d in client.diagnostics[URI] if d.severity == 1]
    found = await _diagnostics(client)  # the first published after the edits: BROKEN's
    assert [d.code for d in found if d.severity == 1] == ["E-GROUPS"]
    assert len(client.diagnostics) == published
