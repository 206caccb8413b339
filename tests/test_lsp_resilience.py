"""archdsl lsp keeps answering: a slow document does not hold it (its check or formatting
runs in a worker process, and the next edit stops it), broken messages get JSON-RPC errors,
positions are UTF-16 code units as announced, and specs that once broke a request work."""

import asyncio
import io
import json
import queue
import subprocess
import sys
import threading
import time

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

from archdsl.lsp.index import check
from archdsl.lsp.outline import TOKEN_TYPES, semantic_tokens
from archdsl.lsp.transport import MAX_MESSAGE_BYTES, Malformed, read_messages
from test_lsp import BROKEN, GOOD, ROOT, URI

LIVE_S = 30  # an answer that does not come in this long counts as never
BIG_URI = "file:///tmp/big.arch"
# 0.92 MB of layers, over the 5,000 allowed: seconds to check (it parses all of it first) and
# many seconds to format; several of them take more than LIVE_S one after the other
BIG = "input 8x16x16\n" + "conv 8 k3 p1    # a layer of a very long spec\n" * 20_000


# ----------------------------------------------------------------------------- an editor


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=[sys.executable, "-m", "archdsl.lsp"]))
async def client(lsp_client: LanguageClient):
    lsp_client.initialized_with = await lsp_client.initialize_session(lsp.InitializeParams(
        capabilities=pytest_lsp.client_capabilities("visual-studio-code")))
    yield
    await lsp_client.shutdown_session()


def _open(client, text, uri=URI):
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        text_document=lsp.TextDocumentItem(uri=uri, language_id="arch", version=1, text=text)))


def _change(client, text, version, uri=URI):
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)]))


async def _diagnostics(client, uri=URI):
    """The next diagnostics published for `uri`."""
    while True:
        found = await asyncio.wait_for(
            client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), LIVE_S)
        if found.uri == uri:
            return found.diagnostics


def _hover(client, position, uri=URI):
    return client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=position))


def _at(text, needle, offset=0):
    for i, line in enumerate(text.split("\n")):
        if needle in line:
            return lsp.Position(line=i, character=line.index(needle) + offset)
    raise AssertionError(needle)


@pytest.mark.asyncio
async def test_an_edit_is_checked_before_slow_documents(client: LanguageClient):
    # the edit to URI is checked first: its own older text's check stops, and five other
    # large documents' checks wait after it; a hover before URI's first check is answered
    # without running that check; BIG's diagnostics are never published for URI
    _open(client, BIG)
    hover = asyncio.ensure_future(_hover(client, _at(BROKEN, "conv 16", 1)))
    for i in range(5):
        _open(client, BIG, f"file:///tmp/big{i}.arch")
    _change(client, BROKEN, 2)
    found = await _diagnostics(client)
    assert [d.code for d in found if d.severity == 1] == ["E-GROUPS"]
    answer = await asyncio.wait_for(hover, LIVE_S)
    assert answer is None or "2-D convolution" in answer.contents.value


@pytest.mark.asyncio
async def test_a_spec_corrected_after_a_huge_repeat_is_checked(client: LanguageClient):
    _open(client, "input 3x8x8\nrepeat 100000000 { }\n")
    assert [d.code for d in await _diagnostics(client)] == ["E-TOO-BIG"]
    _change(client, GOOD, 2)
    assert [d for d in await _diagnostics(client) if d.severity == 1] == []


@pytest.mark.asyncio
async def test_formatting_large_documents_does_not_hold_up_other_requests(
        client: LanguageClient):
    _open(client, GOOD)
    await _diagnostics(client)
    _open(client, BIG, BIG_URI)
    formatting = [asyncio.ensure_future(client.text_document_formatting_async(
        lsp.DocumentFormattingParams(text_document=lsp.TextDocumentIdentifier(uri=BIG_URI),
                                     options=lsp.FormattingOptions(2, True))))
        for _ in range(8)]
    answer = await asyncio.wait_for(_hover(client, _at(GOOD, "conv 16", 1)), LIVE_S)
    assert "output **16x32x32**" in answer.contents.value
    for request in formatting:
        request.cancel()


@pytest.mark.asyncio
async def test_formatting_a_document_that_starts_with_two_byte_order_marks(
        client: LanguageClient):
    # the second mark is text, and no spec's (E-SYNTAX at 1:1, as `archdsl check` and
    # `archdsl fmt` say): the formatting is refused with that reason, not an internal error
    _open(client, "\ufeff\ufeffinput 3x8x8\nconv 8 k3 ;relu\n")
    found = await _diagnostics(client)
    assert [(d.code, d.range.start) for d in found] == [("E-SYNTAX", lsp.Position(0, 0))]
    with pytest.raises(JsonRpcException) as refused:
        await client.text_document_formatting_async(lsp.DocumentFormattingParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            options=lsp.FormattingOptions(2, True)))
    assert refused.value.code == lsp.LSPErrorCodes.RequestFailed
    assert refused.value.message.startswith("not formatted: 1:1: unexpected character")


@pytest.mark.asyncio
async def test_formatting_a_document_with_syntax_errors_says_where(client: LanguageClient):
    _open(client, "input 3x8x8\nconv 8 k3 )\n")
    await _diagnostics(client)
    with pytest.raises(JsonRpcException) as refused:
        await client.text_document_formatting_async(lsp.DocumentFormattingParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            options=lsp.FormattingOptions(2, True)))
    assert refused.value.message.startswith("not formatted: 2:11: ")


def _tokens(data, text):
    """(line, column, text, type) of each semantic token, from the relative encoding;
    columns and lengths in UTF-16 code units."""
    lines = [line.encode("utf-16-le") for line in text.split("\n")]
    found, line, column = [], 0, 0
    for i in range(0, len(data), 5):
        delta_line, delta_column, length, kind = data[i:i + 4]
        line, column = line + delta_line, (column if delta_line == 0 else 0) + delta_column
        piece = lines[line][2 * column:2 * (column + length)].decode("utf-16-le")
        found.append((line, column, piece, TOKEN_TYPES[kind]))
    return found


@pytest.mark.asyncio
async def test_positions_are_utf16_code_units(client: LanguageClient):
    # 🙂 is one code point and two UTF-16 units: everything after it on its line is one
    # unit further right than its code point count
    assert client.initialized_with.capabilities.position_encoding == "utf-16"
    text = "input 3x8x8  # 🙂 smile\nrelu 🙂; relu 🙂\n"
    _open(client, text)
    errors = [d for d in await _diagnostics(client) if d.code == "E-SYNTAX"]
    assert [(d.range.start, d.range.end) for d in errors] == [
        (lsp.Position(1, 5), lsp.Position(1, 7)),     # the first 🙂
        (lsp.Position(1, 14), lsp.Position(1, 16))]   # the second, after the first
    tokens = await client.text_document_semantic_tokens_full_async(lsp.SemanticTokensParams(
        text_document=lsp.TextDocumentIdentifier(uri=URI)))
    found = _tokens(tokens.data, text)
    assert (0, 13, "# 🙂 smile", "comment") in found
    assert [t[:3] for t in found if t[0] == 1] == [(1, 0, "relu"), (1, 7, ";"), (1, 9, "relu")]


@pytest.mark.parametrize("spec", ["convnext.arch", "efficientnet.arch"])
def test_semantic_tokens_colour_a_repeat_index(spec):
    text = (ROOT / "specs" / spec).read_text()
    found = _tokens(semantic_tokens(check(text, spec)), text)
    assert len(found) > 100
    index = [t for t in found if t[3] == "variable"]
    assert index and {t[2] for t in index} == {"i"}


# ----------------------------------------------------------------------------- raw bytes


def _frame(body: bytes, length: bytes | None = None) -> bytes:
    return b"Content-Length: " + (length or str(len(body)).encode()) + b"\r\n\r\n" + body


def _message(**fields) -> bytes:
    return _frame(json.dumps({"jsonrpc": "2.0", **fields}).encode())


INITIALIZE = _message(id=1, method="initialize", params={"processId": None, "rootUri": None,
                                                         "capabilities": {}})


class RawServer:
    """`python -m archdsl.lsp` with bytes written to its stdin as given, and its messages
    read off its stdout by a thread."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, "-m", "archdsl.lsp"], cwd=ROOT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL)
        self.messages = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        out = self.process.stdout
        while True:
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                byte = out.read(1)
                if not byte:
                    return
                header += byte
            length = int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])
            self.messages.put(json.loads(out.read(length)))

    def send(self, data: bytes):
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def reply(self, msg_id):
        """The response to `msg_id` (None: an error about no message in particular)."""
        deadline = time.monotonic() + LIVE_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no reply to id {msg_id} in {LIVE_S} s")
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if "method" not in message and message.get("id") == msg_id:
                return message

    def ends(self) -> int:
        """The exit code, once the process ends (within LIVE_S)."""
        return self.process.wait(timeout=LIVE_S)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def raw():
    server = RawServer()
    yield server
    server.kill()


@pytest.mark.parametrize("broken, code", [
    (_frame(b'{"jsonrpc": "2.0", "method": "initialized"}', b"abc"), -32700),
    (_frame(b'{"jsonrpc": "2.0", "method": "initialized"}', b"-5"), -32700),
    (_frame(b'{"jsonrpc": "2.0", "method": "initialized"}', b"99999999999999"), -32700),
    (b"Content-Type: application/json\r\n\r\n{}", -32700),  # no Content-Length
    (_frame(b'{"jsonrpc": "2.0", "id": 7, '), -32700),  # cut short
    (_frame(b"[1, 2]"), -32600),  # JSON, not a JSON-RPC message
], ids=["not-a-number", "negative", "absurd", "missing", "not-json", "not-an-object"])
def test_a_broken_message_gets_an_error_and_the_next_is_read(raw, broken, code):
    raw.send(broken + INITIALIZE)
    error = raw.reply(None)["error"]
    assert error["code"] == code and error["message"]
    assert "capabilities" in raw.reply(1)["result"]
    raw.send(_message(id=2, method="shutdown") + _message(method="exit"))
    assert raw.reply(2)["result"] is None
    assert raw.ends() == 0


def test_a_position_outside_the_document(raw):
    # negative: not a position at all (the protocol's numbers are unsigned), InvalidParams;
    # a line past the end: an empty answer, as for a document not open
    raw.send(INITIALIZE + _message(method="initialized", params={}) + _message(
        method="textDocument/didOpen", params={"textDocument": {
            "uri": URI, "languageId": "arch", "version": 1, "text": GOOD}}))
    where = {"textDocument": {"uri": URI}}
    raw.send(_message(id=2, method="textDocument/hover",
                      params={**where, "position": {"line": -1, "character": 0}}))
    error = raw.reply(2)["error"]
    assert error["code"] == -32602 and "line" in error["message"]
    raw.send(_message(id=3, method="textDocument/hover",
                      params={**where, "position": {"line": 500, "character": 0}}))
    assert raw.reply(3)["result"] is None
    conv = _at(GOOD, "conv 16", 1)
    raw.send(_message(id=4, method="textDocument/hover", params={
        **where, "position": {"line": conv.line, "character": conv.character}}))
    assert "output **16x32x32**" in raw.reply(4)["result"]["contents"]["value"]


def test_requests_after_shutdown_are_invalid_and_exit_ends_the_server(raw):
    raw.send(INITIALIZE + _message(method="initialized", params={}))
    raw.reply(1)
    raw.send(_message(id=2, method="shutdown"))
    assert raw.reply(2)["result"] is None
    raw.send(_message(id=3, method="textDocument/hover", params={
        "textDocument": {"uri": URI}, "position": {"line": 0, "character": 0}}))
    assert raw.reply(3)["error"]["code"] == -32600  # InvalidRequest, as the LSP says
    raw.send(_message(method="exit"))
    assert raw.ends() == 0


def test_exit_without_shutdown_ends_the_server_with_code_1(raw):
    raw.send(INITIALIZE)
    raw.reply(1)
    raw.send(_message(method="exit"))
    assert raw.ends() == 1


def test_the_framing_reads_on_after_each_kind_of_break():
    good = {"jsonrpc": "2.0", "id": 1, "method": "x"}
    body = json.dumps(good).encode()
    stream = (_frame(body, b"abc") + _frame(body, b"-5") + _frame(body, b"99999999999999")
              + _frame(body, str(MAX_MESSAGE_BYTES + 1).encode())
              + _frame(body, b"10")  # too short: the rest looks like a header, and is not
              + b"\r\n" + _frame(body) + b"x" * 100_000 + _frame(body))
    found = list(read_messages(io.BytesIO(stream)))
    assert [type(m).__name__ for m in found] == ["Malformed"] * 6 + ["dict", "Malformed", "dict"]
    assert all(m == good for m in found if not isinstance(m, Malformed))
    assert list(read_messages(io.BytesIO(_frame(body)[:-3]))) == []  # cut by the end
