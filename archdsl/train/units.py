"""Numbers in training messages: bytes of disk and memory, and whether a top-k accuracy says
anything."""

from __future__ import annotations


def format_bytes(n: float) -> str:
    """`512 bytes`, `3.4 MB`, `15.1 GB`: decimal units, as disks and memory are sold."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


TOP_K = 5  # the k of the top-k accuracy that validation and eval measure beside top-1


def top_k_shown(classes: int, k: int = TOP_K) -> bool:
    """Whether the top-k accuracy is worth printing: with k classes or fewer every image's
    class is among the k most likely, so it is 100% and says nothing."""
    return k < classes
