"""The language server (pygls over stdio): it checks each open document after a pause in
typing, on a worker thread, and answers requests from the last check.

Why it keeps answering: a check runs off the event loop, a newer edit makes the pending
check moot (it is skipped before it starts, and a finished stale check is not published),
and whatever fails inside becomes an E-INTERNAL diagnostic or an empty answer, never a dead
server.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from concurrent.futures import ThreadPoolExecutor

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from .. import __version__
from ..diagnostics import Span, error
from .index import Document, check

DEBOUNCE_S = 0.15  # a pause in typing this long starts a check
log = logging.getLogger("archdsl.lsp")


class ArchServer(LanguageServer):
    """The documents' last checks, and the machinery that keeps them fresh."""

    def __init__(self):
        super().__init__("archdsl", __version__,
                         text_document_sync_kind=lsp.TextDocumentSyncKind.Full)
        self.documents: dict[str, Document] = {}
        self.versions: dict[str, int] = {}  # the newest version of each document
        self.pending: dict[str, asyncio.Task] = {}
        self.checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archdsl-check")

    def schedule(self, uri: str, version: int, delay: float) -> None:
        """Check `uri` after `delay` seconds, cancelling the check scheduled before."""
        self.versions[uri] = version
        old = self.pending.pop(uri, None)
        if old is not None:
            old.cancel()
        self.pending[uri] = asyncio.ensure_future(self._check_later(uri, version, delay))

    async def _check_later(self, uri: str, version: int, delay: float) -> None:
        await asyncio.sleep(delay)
        text = self.workspace.get_text_document(uri).source
        loop = asyncio.get_running_loop()
        doc = await loop.run_in_executor(self.checker, self._check, uri, version, text)
        if doc is None or self.versions.get(uri) != version:
            return  # a newer edit has its own check coming
        self.documents[uri] = doc
        self.publish(uri, version, doc)

    def _check(self, uri: str, version: int, text: str) -> Document | None:
        if self.versions.get(uri) != version:
            return None  # stale before it started
        file = uri.rsplit("/", 1)[-1]
        try:
            return check(text, file, self.documents.get(uri))
        except Exception as exc:  # noqa: BLE001 - a failure is a diagnostic, never a crash
            log.error("check failed: %s", traceback.format_exc())
            return Document(text, file, None, None, [internal(exc, file)],
                            lines=text.split("\n"))

    def document(self, uri: str) -> Document:
        """The last check of `uri`, or a check made now if there is none yet."""
        doc = self.documents.get(uri)
        if doc is None:
            text = self.workspace.get_text_document(uri).source
            doc = self.documents[uri] = check(text, uri.rsplit("/", 1)[-1])
        return doc

    def publish(self, uri: str, version: int, doc: Document) -> None:
        try:
            found = to_lsp_diagnostics(doc, uri)
        except Exception as exc:  # noqa: BLE001
            found = to_lsp_diagnostics(Document(doc.text, doc.file, None, None,
                                                [internal(exc, doc.file)]), uri)
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, version=version, diagnostics=found))


def internal(exc: Exception, file: str):
    return error("E-INTERNAL", f"archdsl lsp failed on this spec ({type(exc).__name__}: {exc})",
                 Span(file, 1, 1, 1, 2), hint="this is a bug in archdsl; please report it with "
                                              "the spec")


def to_range(span: Span | None) -> lsp.Range:
    if span is None:
        return lsp.Range(lsp.Position(0, 0), lsp.Position(0, 1))
    return lsp.Range(lsp.Position(max(span.line - 1, 0), max(span.column - 1, 0)),
                     lsp.Position(max(span.end_line - 1, 0), max(span.end_column - 1, 0)))


_SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning}


def to_lsp_diagnostics(doc: Document, uri: str) -> list[lsp.Diagnostic]:
    """`archdsl check`'s diagnostics, with the same codes, ranges and severities: the hint
    ends the message, notes are related information, and a diagnostic inside a block body
    is shown again at each call that led to it."""
    out = []
    for d in doc.diagnostics:
        message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
        related = [lsp.DiagnosticRelatedInformation(lsp.Location(uri, to_range(n.span)),
                                                    n.message)
                   for n in d.notes if n.span is not None]
        severity = _SEVERITY.get(d.severity, lsp.DiagnosticSeverity.Information)
        out.append(lsp.Diagnostic(to_range(d.span), message, severity=severity, code=d.code,
                                  source="archdsl", related_information=related or None))
        for note in d.notes:
            if note.span is None or not note.message.startswith("in block"):
                continue
            out.append(lsp.Diagnostic(
                to_range(note.span), f"{note.message.split(',')[0]}: {message}",
                severity=severity, code=d.code, source="archdsl",
                related_information=[lsp.DiagnosticRelatedInformation(
                    lsp.Location(uri, to_range(d.span)), d.message)] if d.span else None))
    return out


def guarded(default):
    """A request handler whose failure is logged and answered with `default`."""
    def wrap(fn):
        def handler(ls, params):  # pygls passes the server to a first parameter named ls
            try:
                return fn(ls, params)
            except Exception:  # noqa: BLE001 - the server must keep answering
                log.error("%s failed: %s", fn.__name__, traceback.format_exc())
                return default
        handler.__name__ = fn.__name__
        return handler
    return wrap
