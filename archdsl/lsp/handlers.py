"""The editor protocol's requests and notifications, each a thin shell over features.py,
outline.py and index.py."""

from __future__ import annotations

from lsprotocol import types as lsp

from . import features, outline
from .index import definition_of, references
from .server import DEBOUNCE_S, ArchServer, guarded, to_range


def _where(params) -> tuple[int, int]:
    return params.position.line + 1, params.position.character + 1


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

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    @guarded(None)
    def hover(ls: ArchServer, params: lsp.HoverParams):
        text = features.hover(ls.document(params.text_document.uri), *_where(params))
        if text is None:
            return None
        return lsp.Hover(lsp.MarkupContent(lsp.MarkupKind.Markdown, text))

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                    lsp.CompletionOptions(trigger_characters=[" ", "=", "<", "{", "|", ";"]))
    @guarded(None)
    def completion(ls: ArchServer, params: lsp.CompletionParams):
        doc = ls.document(params.text_document.uri)
        live = ls.workspace.get_text_document(params.text_document.uri).lines
        if params.position.line < len(live):  # complete against what is typed now
            doc.lines = list(doc.lines)
            while len(doc.lines) <= params.position.line:
                doc.lines.append("")
            doc.lines[params.position.line] = live[params.position.line].rstrip("\n")
        return lsp.CompletionList(is_incomplete=False,
                                  items=outline.completion(doc, *_where(params)))

    _navigation(server)
    _presentation(server)
    return server


def _navigation(server: ArchServer) -> None:
    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    @guarded(None)
    def definition(ls: ArchServer, params: lsp.DefinitionParams):
        doc = ls.document(params.text_document.uri)
        occ = doc.at(*_where(params))
        target = definition_of(doc, occ) if occ is not None else None
        if target is None:
            return None
        return lsp.Location(params.text_document.uri, to_range(target[2]))

    @server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
    @guarded(None)
    def find_references(ls: ArchServer, params: lsp.ReferenceParams):
        doc = ls.document(params.text_document.uri)
        occ = doc.at(*_where(params))
        if occ is None:
            return None
        spans = references(doc, occ, params.context.include_declaration)
        return [lsp.Location(params.text_document.uri, to_range(s)) for s in spans]

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @guarded([])
    def document_symbols(ls: ArchServer, params: lsp.DocumentSymbolParams):
        return outline.symbols(ls.document(params.text_document.uri))


def _presentation(server: ArchServer) -> None:
    @server.feature(lsp.TEXT_DOCUMENT_INLAY_HINT)
    @guarded([])
    def inlay_hints(ls: ArchServer, params: lsp.InlayHintParams):
        doc = ls.document(params.text_document.uri)
        return outline.inlay_hints(doc, params.range.start.line + 1, params.range.end.line + 1)

    @server.feature(lsp.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL,
                    lsp.SemanticTokensLegend(token_types=outline.TOKEN_TYPES, token_modifiers=[]))
    @guarded(None)
    def semantic_tokens(ls: ArchServer, params: lsp.SemanticTokensParams):
        return lsp.SemanticTokens(data=outline.semantic_tokens(
            ls.document(params.text_document.uri)))

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    @guarded(None)
    def formatting(ls: ArchServer, params: lsp.DocumentFormattingParams):
        from ..fmt import FormatError, format_text

        source = ls.workspace.get_text_document(params.text_document.uri).source
        try:
            formatted = format_text(source)
        except FormatError:
            return None  # the syntax errors are already shown as diagnostics
        if formatted == source:
            return []
        lines = source.split("\n")
        end = lsp.Position(len(lines) - 1, len(lines[-1]))
        return [lsp.TextEdit(lsp.Range(lsp.Position(0, 0), end), formatted)]
