"""The stream from the editor cut into messages: headers, a blank line, then Content-Length
bytes of JSON (the Language Server Protocol's base protocol).

pygls' own reader trusts the stream: `Content-Length: abc` or `-5` leaves it waiting forever,
and `Content-Length: 99999999999999` makes it allocate that much. Here a broken frame becomes
a Malformed item (the server answers it with a JSON-RPC parse error) and reading goes on at
the next `Content-Length:` header; no message over MAX_MESSAGE_BYTES is ever allocated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

# The largest spec is 1 MiB of text (network.MAX_SPEC_BYTES); JSON may write a character as
# 12 bytes (a surrogate pair's escapes), so a message carrying any spec fits in this.
MAX_MESSAGE_BYTES = 16 << 20
MAX_HEADER_BYTES = 8 << 10
_CHUNK = 1 << 16
_MARK = b"content-length:"
_HEADERS_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class Malformed:
    """A frame or body that is not a message: why, in words for the editor's log."""

    reason: str


def read_messages(stream: BinaryIO) -> Iterator[object | Malformed]:
    """Each message of `stream` as parsed JSON, or Malformed where one is broken; ends with
    the stream."""
    frames = _Frames(stream)
    while True:
        block = frames.header_block()
        if block is None:
            return
        if not block.strip():
            continue  # stray blank lines between messages
        length, problem = content_length(block)
        if problem is not None:
            yield Malformed(problem)
            frames.unread(block[1:])  # a header may start inside what was taken for one
            frames.skip_to_next_header()
            continue
        body = frames.take(length)
        if body is None:
            return
        yield parse_body(body)


def content_length(block: bytes) -> tuple[int, str | None]:
    """The Content-Length that a header block declares, or why there is none to trust."""
    length = None
    for line in re.split(rb"\r?\n", block.strip(b"\r\n")):
        name, colon, value = line.partition(b":")
        if not colon or not re.fullmatch(rb"[A-Za-z][A-Za-z0-9-]*", name):
            return 0, f"`{_shown(line)}` is not a header line"
        if name.lower() != b"content-length":
            continue  # Content-Type and anything newer: not needed to find the body
        value = value.strip()
        if not re.fullmatch(rb"[0-9]+", value):
            return 0, f"Content-Length is `{_shown(value)}`, not a number of bytes"
        if len(value.lstrip(b"0")) > 9 or int(value) > MAX_MESSAGE_BYTES:
            return 0, (f"Content-Length is {_shown(value)} bytes; a message is at most "
                       f"{MAX_MESSAGE_BYTES} bytes")
        length = int(value)
    if length is None:
        return 0, "the message has no Content-Length header"
    return length, None


def parse_body(body: bytes) -> object | Malformed:
    """The JSON of a message body, or Malformed."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, nesting too deep
        return Malformed(f"the body is not JSON ({type(exc).__name__}: {str(exc)[:100]})")


def _shown(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return text if len(text) <= 40 else text[:40] + "…"


class _Frames:
    """A byte stream read in chunks, with the unread rest kept."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.buffer = bytearray()
        self.ended = False

    def _fill(self) -> bool:
        if self.ended:
            return False
        read = getattr(self.stream, "read1", self.stream.read)
        chunk = read(_CHUNK)
        if not chunk:
            self.ended = True
            return False
        self.buffer += chunk
        return True

    def header_block(self) -> bytes | None:
        """The bytes up to and including the blank line that ends the headers; None at the
        end of the stream. Headers longer than MAX_HEADER_BYTES come back cut there, and
        are then not headers."""
        while True:
            found = _HEADERS_END.search(self.buffer, 0, MAX_HEADER_BYTES + 4)
            if found is not None:
                block = bytes(self.buffer[:found.end()])
                del self.buffer[:found.end()]
                return block
            if len(self.buffer) > MAX_HEADER_BYTES:
                block = bytes(self.buffer[:MAX_HEADER_BYTES])
                del self.buffer[:MAX_HEADER_BYTES]
                return block
            if not self._fill():
                return None

    def unread(self, data: bytes) -> None:
        self.buffer[:0] = data

    def skip_to_next_header(self) -> None:
        """Drop bytes up to the next `Content-Length:` (any case): where a frame whose length
        cannot be trusted most likely ends."""
        while True:
            at = self.buffer.lower().find(_MARK)
            if at >= 0:
                del self.buffer[:at]
                return
            del self.buffer[:max(len(self.buffer) - len(_MARK), 0)]
            if not self._fill():
                return

    def take(self, length: int) -> bytes | None:
        """The next `length` bytes (at most MAX_MESSAGE_BYTES), or None if the stream ends
        first."""
        while len(self.buffer) < length:
            if not self._fill():
                return None
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        return body
