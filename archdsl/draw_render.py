"""A drawing's graphviz source -> the picture's bytes, through Graphviz's `dot` program, with
the `archdsl draw` marker that lets the next drawing replace it (archdsl/draw.py makes the
source)."""

from __future__ import annotations

import re

from .errors import ArchdslError

MARKER = "archdsl draw"
BITMAP_LIMIT = 32767  # Graphviz's cairo renderer draws bitmaps up to this many pixels a side
DEFAULT_DPI = 96
MIN_USEFUL_DPI = 24  # below this a PNG's text is not readable: not worth suggesting


class RenderError(ArchdslError):
    """Graphviz's `dot` could not render the picture; the message says why and what to do."""


def render(dot, fmt: str, dpi: int | None = None) -> bytes:
    """Render with the `dot` binary (svg, png, pdf), or return the dot source; `dpi` sets a
    PNG's resolution (96 when None). RenderError when `dot` is missing, fails or crashes, or
    when a PNG would be larger than Graphviz draws bitmaps."""
    if fmt == "dot":
        return dot.source.encode()
    import contextlib
    import io
    import signal
    import sys

    import graphviz

    if dpi is not None:
        dot = dot.copy()
        dot.attr(dpi=str(dpi))
    instead = "write the .dot source instead (-o NAME.dot) and render it elsewhere"
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):  # dot's warnings, read before they are shown
            data = dot.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise RenderError(f"Graphviz's `dot` program was not found; install Graphviz (Debian or "
                          f"Ubuntu: apt-get install graphviz), or {instead}") from None
    except graphviz.CalledProcessError as exc:
        if exc.returncode < 0:
            try:
                how = f"was killed by {signal.Signals(-exc.returncode).name}"
            except ValueError:
                how = f"was killed by signal {-exc.returncode}"
        else:
            lines = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
            how = f"failed (exit {exc.returncode})" + (f": {lines[0][:200]}" if lines else "")
        raise RenderError(f"Graphviz's `dot` {how} while making the {fmt}; {instead}") from None
    except OSError as exc:
        raise RenderError(f"Graphviz's `dot` could not be run ({exc.strerror or exc}); "
                          f"{instead}") from None
    warnings = said.getvalue()
    shrunk = re.search(r"too large for cairo-renderer bitmaps\. Scaling by ([0-9.]+)", warnings)
    if shrunk and fmt == "png":
        raise RenderError(_too_large(data, float(shrunk.group(1)), dpi or DEFAULT_DPI))
    if warnings.strip():
        sys.stderr.write(warnings)
    return mark(data, fmt, dot.comment)


def png_size(data: bytes) -> tuple[int, int]:
    """A PNG's (width, height) in pixels, from its header chunk."""
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _too_large(data: bytes, scale: float, dpi: int) -> str:
    """What to do about a PNG that Graphviz would shrink to fit its bitmap limit."""
    width, height = (round(side / scale) if scale > 0 else side for side in png_size(data))
    fitting = int(dpi * scale)
    smaller = f"; or a lower resolution (--dpi {fitting})" if fitting >= MIN_USEFUL_DPI else ""
    return (f"the PNG would be {width:,}×{height:,} px at {dpi} dpi, over the "
            f"{BITMAP_LIMIT:,} px a side Graphviz draws (it would shrink the picture to "
            f"{scale:.0%}); nothing written. Write an SVG or PDF instead (-o NAME.svg), which "
            f"has no such limit{smaller}; or draw fewer nodes: collapse blocks (the default, "
            "--collapse all) instead of --collapse none")


def mark(data: bytes, fmt: str, comment: str) -> bytes:
    """The picture with the `archdsl draw` marker in it, so that the next drawing may replace
    it: an SVG comment, a PNG tEXt chunk (`Software`, after the header chunk), a PDF comment
    line before the final `startxref` (no object moves, so every offset stays right)."""
    import zlib

    text = comment.encode("latin-1", "replace")
    if fmt == "svg":
        return data.replace(b"<svg ", b"<!-- " + comment.encode() + b" -->\n<svg ", 1)
    if fmt == "png" and data[12:16] == b"IHDR":
        end = 8 + 8 + int.from_bytes(data[8:12], "big") + 4  # signature, IHDR chunk
        body = b"tEXt" + b"Software\x00" + text
        chunk = len(body[4:]).to_bytes(4, "big") + body + \
            zlib.crc32(body).to_bytes(4, "big")
        return data[:end] + chunk + data[end:]
    if fmt == "pdf":
        at = data.rfind(b"startxref")
        if at > 0:
            return data[:at] + b"% " + text.replace(b"\n", b" ") + b"\n" + data[at:]
    return data


def drawn_by_archdsl(path) -> bool:
    """Whether the file at `path` is an earlier `archdsl draw` picture (so that drawing again
    may replace it without --force): the marker near its start (svg, dot, png) or its end
    (pdf)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            tail = f.read()
    except OSError:
        return False
    marker = MARKER.encode()
    if head.startswith(b"\x89PNG"):
        return b"tEXtSoftware\x00" + marker in head
    if head.startswith(b"%PDF-"):
        return b"\n% " + marker in tail
    return marker in head
