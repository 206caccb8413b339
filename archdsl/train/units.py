"""Numbers in training messages: bytes of disk and memory."""

from __future__ import annotations


def format_bytes(n: float) -> str:
    """`512 bytes`, `3.4 MB`, `15.1 GB`: decimal units, as disks and memory are sold."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
