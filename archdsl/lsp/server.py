"""The language server (pygls over stdio): it checks each open document after a pause in
typing, in a worker process, and answers requests from the last check.

Why it keeps answering: checks and formatting run in worker processes (worker.py), never on
the event loop; a newer edit cancels the pending check of the older text (a running one is
killed, and its result could never be published); a request waits for a document's first
check without blocking anything, up to FIRST_CHECK_WAIT_S; the stream is read by our own
framing (transport.py), so broken messages get JSON-RPC errors; and whatever fails inside
becomes an E-INTERNAL diagnostic, an error reply or an empty answer, never a dead server.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import traceback

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInternalError, JsonRpcInvalidParams
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from .. import __version__
from ..diagnostics import Span, error
from .index import Document, keep_names
from .positions import Columns, PositionOutside, split_lines
from .transport import Malformed, read_messages
from .worker import JobFailed, Worker

DEBOUNCE_S = 0.15  # a pause in typing this long starts a check
FIRST_CHECK_WAIT_S = 10.0  # a request on a document not checked yet waits this long for it
CHECK_LIMIT_S = 60.0  # a check still running after this is stopped (E-FILE)
log = logging.getLogger("archdsl.lsp")


class ArchProtocol(LanguageServerProtocol):
    """pygls' protocol, answering what pygls leaves unanswered: a broken frame or body (a
    parse error, id null), a message that is not JSON-RPC (InvalidRequest), params that do
    not fit their method (InvalidParams) and any request after `shutdown` (InvalidRequest,
    as the LSP prescribes)."""

    exited = False  # set by the `exit` handler: stdout is closed after it

    def receive(self, item) -> None:
        """Handle one item of transport.read_messages: a message's JSON, or Malformed."""
        if isinstance(item, Malformed):
            self.send_error(None, lsp.ErrorCodes.ParseError, item.reason)
            return
        is_dict = isinstance(item, dict)
        msg_id = item.get("id") if is_dict else None
        if not isinstance(msg_id, (int, str)) or isinstance(msg_id, bool):
            msg_id = None
        request = is_dict and "id" in item and "method" in item
        if not is_dict or item.get("jsonrpc") != self.VERSION:
            self.send_error(msg_id, lsp.ErrorCodes.InvalidRequest,
                            "not a JSON-RPC 2.0 message (an object with \"jsonrpc\": \"2.0\")")
            return
        if request and self._shutdown and item["method"] != lsp.EXIT:
            self.send_error(msg_id, lsp.ErrorCodes.InvalidRequest,
                            "the server has been shut down: only `exit` is accepted")
            return
        try:
            message = self.structure_message(item)
        except JsonRpcException as exc:
            log.warning("unusable message: %s", exc)
            if request:
                code = lsp.ErrorCodes.InvalidParams if isinstance(exc, JsonRpcInvalidParams) \
                    else lsp.ErrorCodes.InvalidRequest
                self.send_error(msg_id, code, f"{item['method']}: {_cause(exc)}")
            elif "id" not in item and "method" not in item:  # neither a notification nor a reply
                self.send_error(None, lsp.ErrorCodes.InvalidRequest, _cause(exc))
            return
        try:
            self.handle_message(message)
        except Exception as exc:  # noqa: BLE001 - the server must keep reading
            log.error("handling %s failed: %s", item.get("method"), traceback.format_exc())
            if request:
                self.send_error(msg_id, lsp.ErrorCodes.InternalError, f"{exc}")

    def _send_data(self, data) -> None:
        if self.exited:
            return  # the answer of a request cancelled by `exit`: nobody reads it
        super()._send_data(data)

    def send_error(self, msg_id, code: int, message: str) -> None:
        """A JSON-RPC error response (written by hand: pygls' leaves out `"id": null`)."""
        self._send_data({"jsonrpc": self.VERSION, "id": msg_id,
                         "error": {"code": int(code), "message": message}})


def _cause(exc: Exception) -> str:
    """The innermost reason of a structuring failure, for the error's message."""
    cause = exc.__cause__
    while cause is not None and getattr(cause, "exceptions", None):
        cause = cause.exceptions[0]
    return str(cause or exc)


class ArchServer(LanguageServer):
    """The documents' last checks, and the machinery that keeps them fresh."""

    def __init__(self):
        super().__init__("archdsl", __version__, protocol_cls=ArchProtocol,
                         text_document_sync_kind=lsp.TextDocumentSyncKind.Full)
        self.documents: dict[str, Document] = {}
        self.versions: dict[str, int] = {}  # the newest version of each open document
        self.pending: dict[str, asyncio.Task] = {}  # each document's next check
        self.started: dict[str, asyncio.Task] = {}  # those past their pause in typing
        self.checker = Worker("check")
        self.formatter = Worker("format")

    def report_server_error(self, error: Exception, source) -> None:
        """pygls shows an error to the user by sending a message; an error in sending
        is only logged (reporting it by sending again would recurse without end)."""
        if source is JsonRpcInternalError:
            log.error("sending failed: %s", error)
            return
        super().report_server_error(error, source)

    # ------------------------------------------------------------------------- the stream

    def start_io(self, stdin=None, stdout=None) -> int:
        """Serve over stdin/stdout until `exit` or the end of stdin; the exit code (1 when
        `exit` came without `shutdown`, as the LSP says)."""
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        try:
            # the unbuffered file: a daemon thread blocked in a buffered read holds its lock,
            # and the interpreter's shutdown would abort on it
            asyncio.run(self._serve(stdin or sys.stdin.buffer.raw))
        except SystemExit as exc:  # pygls' `exit` handler
            return exc.code if isinstance(exc.code, int) else 0
        except BrokenPipeError:
            log.error("the editor closed the connection")
        finally:
            self.close()
        return 0

    async def _serve(self, stdin) -> None:
        loop = asyncio.get_running_loop()
        ended = loop.create_future()
        self.checker.start()  # it imports archdsl while the editor sends its first messages

        def pump():  # blocking reads, on their own thread; each message handled on the loop
            try:
                for item in read_messages(stdin):
                    loop.call_soon_threadsafe(self.protocol.receive, item)
                loop.call_soon_threadsafe(lambda: ended.done() or ended.set_result(None))
            except RuntimeError:
                pass  # the loop is closed: `exit` came
            except OSError as exc:  # stdin broke: as if it ended
                log.error("reading stdin failed: %s", exc)
                loop.call_soon_threadsafe(lambda: ended.done() or ended.set_result(None))

        threading.Thread(target=pump, name="archdsl-lsp-stdin", daemon=True).start()
        await ended

    def close(self) -> None:
        """Stop every check and the worker processes."""
        for task in self.pending.values():
            task.cancel()
        self.checker.close()
        self.formatter.close()

    # ------------------------------------------------------------------------- checks

    def schedule(self, uri: str, version: int, delay: float, urgent: bool = True) -> None:
        """Check `uri` after `delay` seconds, cancelling the check of its older text. An
        urgent check (an edit, an opening) goes before the other documents' checks: theirs
        start over after it."""
        self.versions[uri] = version
        old = self.pending.pop(uri, None)
        if old is not None:
            old.cancel()
        self.pending[uri] = asyncio.ensure_future(
            self._check_later(uri, version, delay, urgent))

    async def _check_later(self, uri: str, version: int, delay: float, urgent: bool) -> None:
        await asyncio.sleep(delay)
        if urgent:  # the document being edited is the one whose diagnostics are awaited
            for other, task in list(self.started.items()):
                if other != uri and self.pending.get(other) is task and not task.done():
                    self.schedule(other, self.versions[other], 0, urgent=False)
        this = self.started[uri] = asyncio.current_task()
        try:
            text = self.workspace.get_text_document(uri).source
            doc = await self._check(text, uri.rsplit("/", 1)[-1])
            if self.versions.get(uri) != version:
                return  # a newer edit has its own check coming
            self.documents[uri] = keep_names(doc, self.documents.get(uri))
            self.publish(uri, version, self.documents[uri])
        except Exception:  # noqa: BLE001 - the server must keep checking
            log.error("check failed: %s", traceback.format_exc())
        finally:
            if self.started.get(uri) is this:
                del self.started[uri]

    async def _check(self, text: str, file: str) -> Document:
        try:
            return await self.checker.run("check", text, file, limit=CHECK_LIMIT_S)
        except asyncio.TimeoutError:
            found = error("E-FILE", f"checking this spec took longer than {CHECK_LIMIT_S:.0f} s, "
                                    "so the language server stopped", Span(file, 1, 1, 1, 2),
                          hint="`archdsl check` on the file shows its diagnostics")
        except JobFailed as exc:
            log.error("check failed: %s\n%s", exc, exc.details)
            found = internal(exc, file)
        return Document(text, file, None, None, [found], lines=split_lines(text))

    async def document(self, uri: str) -> Document | None:
        """The last finished check of `uri`. Before the first one, that check, waited for up
        to FIRST_CHECK_WAIT_S (never run here); None if it has not come by then."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FIRST_CHECK_WAIT_S
        while uri not in self.documents:
            task, left = self.pending.get(uri), deadline - loop.time()
            if task is None or task.done() or left <= 0:
                return None
            await asyncio.wait({task}, timeout=left)
        return self.documents[uri]

    # ------------------------------------------------------------------------- positions

    def columns(self, lines: list[str]) -> Columns:
        """Conversions of positions in `lines` in the units agreed with the client."""
        return Columns(lines, self.workspace.position_codec.client_num_units)

    def live_columns(self, uri: str) -> Columns | None:
        """Conversions in the text the editor has now; None for a document not open."""
        if uri not in self.versions:
            return None
        return self.columns(split_lines(self.workspace.get_text_document(uri).source))

    def where(self, lines: list[str], position: lsp.Position) -> tuple[int, int] | None:
        """1-based (line, column) of a request's position in `lines` (the text of the check
        that answers); None for a line past its end, which the request answers empty."""
        try:
            return self.columns(lines).from_client(position)
        except PositionOutside:
            return None

    def publish(self, uri: str, version: int, doc: Document) -> None:
        columns = self.columns(doc.lines)
        try:
            found = to_lsp_diagnostics(doc, uri, columns)
        except Exception as exc:  # noqa: BLE001
            found = to_lsp_diagnostics(Document(doc.text, doc.file, None, None,
                                                [internal(exc, doc.file)]), uri, columns)
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, version=version, diagnostics=found))


def internal(exc: Exception, file: str):
    return error("E-INTERNAL", f"archdsl lsp failed on this spec ({type(exc).__name__}: {exc})",
                 Span(file, 1, 1, 1, 2), hint="this is a bug in archdsl; please report it with "
                                              "the spec")


_SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning}


def to_lsp_diagnostics(doc: Document, uri: str,
                       columns: Columns | None = None) -> list[lsp.Diagnostic]:
    """`archdsl check`'s diagnostics, with the same codes, ranges and severities: the hint
    ends the message, notes are related information, and a diagnostic inside a block body
    is shown again at each call that led to it. `columns` converts positions (code points
    when left out)."""
    to_range = (columns or Columns(doc.lines)).range
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
    """A request handler (a coroutine) whose failure is logged and answered with `default`;
    a JSON-RPC error it raises (InvalidParams) is the answer."""
    def wrap(fn):
        async def handler(ls, params):  # pygls passes the server to a first parameter named ls
            try:
                return await fn(ls, params)
            except JsonRpcException:
                raise
            except Exception:  # noqa: BLE001 - the server must keep answering
                log.error("%s failed: %s", fn.__name__, traceback.format_exc())
                return default
        handler.__name__ = fn.__name__
        return handler
    return wrap
