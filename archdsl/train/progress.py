"""A progress bar per epoch on a terminal; nothing when stdout is a file or a pipe."""

from __future__ import annotations

import shutil
import sys
import time


class Progress:
    def __init__(self, label: str, total: int, quiet: bool = False, stream=None):
        self.stream = stream or sys.stdout
        self.enabled = not quiet and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.label, self.total, self.done = label, max(total, 1), 0
        self.start = self.last = time.perf_counter()

    def update(self, loss: float, acc: float, rate: float) -> None:
        self.done += 1
        now = time.perf_counter()
        if not self.enabled or (now - self.last < 0.1 and self.done < self.total):
            return
        self.last = now
        left = (now - self.start) / self.done * (self.total - self.done)
        width = max(10, min(30, shutil.get_terminal_size((80, 20)).columns - 70))
        filled = int(width * self.done / self.total)
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}  loss {loss:.4f} "
                          f"acc {acc:.1%}  {rate:.0f} img/s  {left:.0f} s left ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()
