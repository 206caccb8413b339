"""The editor protocol's requests and notifications, each a thin shell over features.py,
outline.py and index.py.

Positions: a negative line or character is not a position (the protocol's types are
unsigned): InvalidParams, before any handler runs. A position is read in the text of the
check that answers (completion: in the text typed now); a line past that text's end gets an
empty answer, as a document not open does; a character past its line's end is the line's
end, as the LSP says; a range (inlay hints) is clipped to the text.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException

from . import features, outline
from .index import definition_of, references
from .server import DEBOUNCE_S, ArchServer, guarded
from .worker import JobFailed

FORMAT_LIMIT_S = 60.0  # a formatting still running after this is stopped, with an error reply


def make_server() -> ArchServer:
    """A server with every feature registered."""
    server = ArchServer()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: ArchServer, params: lsp.DidOpenTextDocumentParams):
        ls.schedule(params.text_document.uri, params.text_document.version, 0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: ArchServer, params: lsp.DidChangeTextDocumentParams):
        ls.schedule(params.text_document.uri, params.text_document.version, DEBOUNCE_S)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: ArchServer, params: lsp.DidCloseTextDocumentParams):
        uri = params.text_document.uri
        task = ls.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        ls.documents.pop(uri, None)
        ls.versions.pop(uri, None)
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(lsp.SHUTDOWN)
    def shutdown(ls: ArchServer, params):
        ls.close()

    @server.feature(lsp.EXIT)
    def exit_(ls: ArchServer, params):
        ls.protocol.exited = True
        ls.close()

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    @guarded(None)
    async def hover(ls: ArchServer, params: lsp.HoverParams):
        doc = await ls.document(params.text_document.uri)
        where = ls.where(doc.lines, params.position) if doc else None
        text = features.hover(doc, *where) if where else None
        if text is None:
            return None
        return lsp.Hover(lsp.MarkupContent(lsp.MarkupKind.Markdown, text))

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                    lsp.CompletionOptions(trigger_characters=[" ", "=", "<", "{", "|", ";"]))
    @guarded(None)
    async def completion(ls: ArchServer, params: lsp.CompletionParams):
        uri = params.text_document.uri
        live = ls.live_columns(uri)
        where = ls.where(live.lines, params.position) if live else None
        doc = await ls.document(uri) if where else None
        if doc is None:
            return None
        lines = list(doc.lines)  # complete against what is typed now
        lines += [""] * (where[0] - len(lines))
        lines[where[0] - 1] = live.lines[where[0] - 1]
        return lsp.CompletionList(is_incomplete=False,
                                  items=outline.completion(replace(doc, lines=lines), *where))

    _navigation(server)
    _presentation(server)
    return server


async def _name_at(ls: ArchServer, uri: str, position: lsp.Position):
    """The document's last check and the name at `position` (None where there is none)."""
    doc = await ls.document(uri)
    where = ls.where(doc.lines, position) if doc else None
    return doc, (doc.at(*where) if where else None)


def _navigation(server: ArchServer) -> None:
    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    @guarded(None)
    async def definition(ls: ArchServer, params: lsp.DefinitionParams):
        uri = params.text_document.uri
        doc, occ = await _name_at(ls, uri, params.position)
        target = definition_of(doc, occ) if occ is not None else None
        if target is None:
            return None
        return lsp.Location(uri, ls.columns(doc.lines).range(target[2]))

    @server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
    @guarded(None)
    async def find_references(ls: ArchServer, params: lsp.ReferenceParams):
        uri = params.text_document.uri
        doc, occ = await _name_at(ls, uri, params.position)
        if occ is None:
            return None
        spans = references(doc, occ, params.context.include_declaration)
        to_range = ls.columns(doc.lines).range
        return [lsp.Location(uri, to_range(s)) for s in spans]

    @server.feature(lsp.TEXT_DOCUMENT_RENAME)
    @guarded(None)
    async def rename(ls: ArchServer, params: lsp.RenameParams):
        """A named value, parameter, block or repeat index renamed everywhere it is meant."""
        uri = params.text_document.uri
        doc, occ = await _name_at(ls, uri, params.position)
        if occ is None or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", params.new_name):
            return None
        to_range = ls.columns(doc.lines).range
        edits = [lsp.TextEdit(to_range(s), params.new_name) for s in references(doc, occ)]
        return lsp.WorkspaceEdit(changes={uri: edits}) if edits else None

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @guarded([])
    async def document_symbols(ls: ArchServer, params: lsp.DocumentSymbolParams):
        doc = await ls.document(params.text_document.uri)
        return outline.symbols(doc, ls.columns(doc.lines)) if doc else []


def _presentation(server: ArchServer) -> None:
    @server.feature(lsp.TEXT_DOCUMENT_INLAY_HINT)
    @guarded([])
    async def inlay_hints(ls: ArchServer, params: lsp.InlayHintParams):
        doc = await ls.document(params.text_document.uri)
        if doc is None:
            return []
        columns = ls.columns(doc.lines)
        first = columns.from_client(params.range.start, clip=True)[0]
        last = columns.from_client(params.range.end, clip=True)[0]
        return outline.inlay_hints(doc, first, last, columns)

    @server.feature(lsp.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL,
                    lsp.SemanticTokensLegend(token_types=outline.TOKEN_TYPES, token_modifiers=[]))
    @guarded(None)
    async def semantic_tokens(ls: ArchServer, params: lsp.SemanticTokensParams):
        doc = await ls.document(params.text_document.uri)
        if doc is None:
            return None
        return lsp.SemanticTokens(data=outline.semantic_tokens(doc, ls.columns(doc.lines)))

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    @guarded(None)
    async def formatting(ls: ArchServer, params: lsp.DocumentFormattingParams):
        return await _formatting(ls, params.text_document.uri)


async def _formatting(ls: ArchServer, uri: str):
    """`archdsl fmt` of the document, in the formatter's process (a large document takes
    seconds, and other requests go on meanwhile): one edit replacing the text, or [] when
    it is formatted already. Where archdsl fmt refuses (syntax errors, a document over the
    size of a spec, a formatting running past FORMAT_LIMIT_S) the answer is an error
    saying why."""
    from ..network import MAX_SPEC_BYTES

    columns = ls.live_columns(uri)
    if columns is None:
        return None
    source = ls.workspace.get_text_document(uri).source
    if len(source) > MAX_SPEC_BYTES:
        raise _failed(f"not formatted: the document is {len(source):,} characters, and a spec "
                      f"is at most {MAX_SPEC_BYTES:,}")
    try:
        outcome, text = await ls.formatter.run("format", source, limit=FORMAT_LIMIT_S)
    except asyncio.TimeoutError:
        raise _failed(f"not formatted: it took longer than {FORMAT_LIMIT_S:.0f} s") from None
    except JobFailed as exc:
        raise _failed(f"archdsl fmt failed: {exc}") from None
    if outcome == "refused":
        raise _failed(text)
    if text == source:
        return []
    return [lsp.TextEdit(lsp.Range(lsp.Position(0, 0), columns.end()), text)]


def _failed(message: str) -> JsonRpcException:
    return JsonRpcException(message, code=lsp.LSPErrorCodes.RequestFailed)
