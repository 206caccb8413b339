"""Ctrl-C during training: the first press stops the run after the current step, once its
state is saved; a second press stops it at once (every write is atomic, so nothing is left
half-written; the previous checkpoint stays)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time


class StopRequest:
    """While entered, SIGINT sets `requested` instead of raising KeyboardInterrupt; a second
    SIGINT raises it, unless it comes within `grace` seconds of the first (torchrun passes
    the terminal's Ctrl-C on to its workers, which the terminal signalled already). Outside
    the main thread (where no handler can be set) it does nothing."""

    def __init__(self, grace: float = 0.0, announce: bool = True):
        self.requested, self.announce = False, announce
        self.grace, self._first = grace, 0.0
        self._previous = None
        self._pid = os.getpid()

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum, frame) -> None:
        if os.getpid() != self._pid:
            return  # a forked data-loader worker: the main process decides
        if self.requested:
            if time.monotonic() - self._first < self.grace:
                return
            raise KeyboardInterrupt
        self.requested, self._first = True, time.monotonic()
        if not self.announce:
            return
        after_bar = "\n" if sys.stdout.isatty() else ""  # below the progress bar
        print(f"{after_bar}stopping after this step to save the run (Ctrl-C again stops at once, "
              "keeping the last checkpoint)", file=sys.stderr, flush=True)
