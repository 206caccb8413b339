"""Ctrl-C (and SIGTERM, which `kill`, systemd and job schedulers send) during training: the
first stops the run after the current step, once its state is saved; a second stops it at
once (every write is atomic, so nothing is left half-written; the previous checkpoint stays).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager


def stop_signals() -> tuple:
    """The signals that stop a run gracefully: SIGINT, and SIGTERM too in a process of its
    own. A torchrun worker leaves SIGTERM to torchrun, which sends it to stop the workers
    after one of them failed (they could not agree on a last step)."""
    from .distributed import launched_by_torchrun

    return (signal.SIGINT,) if launched_by_torchrun() else (signal.SIGINT, signal.SIGTERM)


@contextmanager
def sigterm_as_ctrl_c():
    """While the block runs (in the main thread of a process not started by torchrun),
    SIGTERM raises KeyboardInterrupt as Ctrl-C does, so that a run stopped while it starts
    ends with the same message and exit code, its temporary files removed."""
    if signal.SIGTERM not in stop_signals() or \
            threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class StopRequest:
    """While entered, the stop signals (SIGINT; SIGTERM outside torchrun) set `requested`
    instead of raising KeyboardInterrupt; a second one raises it, unless it comes within
    `grace` seconds of the first (torchrun passes the terminal's Ctrl-C on to its workers,
    which the terminal signalled already). Outside the main thread (where no handler can be
    set) it does nothing."""

    def __init__(self, grace: float = 0.0, announce: bool = True, signals: tuple | None = None):
        self.requested, self.announce = False, announce
        self.grace, self._first = grace, 0.0
        self.signals = signals if signals is not None else stop_signals()
        self._previous: dict = {}
        self._pid = os.getpid()

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

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
        what = "" if signum == signal.SIGINT else f"{signal.Signals(signum).name}: "
        print(f"{after_bar}{what}stopping after this step to save the run (Ctrl-C again stops "
              "at once, keeping the last checkpoint)", file=sys.stderr, flush=True)
