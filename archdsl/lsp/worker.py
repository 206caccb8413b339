"""The language server's long jobs (checking a document, formatting one) in a child process,
so that one can be stopped where it is: a thread cannot be, and a check made moot by the
next edit, or a formatting the editor gave up on, would hold the server for as long as it
runs. Cancelling the task that awaits a job kills the process; a fresh one starts at once
and imports archdsl while nothing waits for it.

The child is `python -m archdsl.lsp.worker`: jobs in on its stdin, outcomes out on its
stdout, both pickled.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

log = logging.getLogger("archdsl.lsp")


class JobFailed(Exception):
    """A job raised, or its process ended under it; the message says which."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.details = details


class Worker:
    """One child process that runs jobs one at a time, in the order asked."""

    def __init__(self, name: str):
        self.name = name
        self._process: subprocess.Popen | None = None
        self._turn = asyncio.Lock()
        self._closed = False

    def start(self) -> None:
        """Start the process if none is running."""
        if self._closed or (self._process is not None and self._process.poll() is None):
            return
        root = str(Path(__file__).resolve().parents[2])  # where `archdsl` imports from
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        self._process = subprocess.Popen([sys.executable, "-m", "archdsl.lsp.worker"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    async def run(self, job: str, *args, limit: float | None = None):
        """`job`'s result (a name in JOBS, run in the child); JobFailed if it raised,
        asyncio.TimeoutError if it ran `limit` seconds (waiting for its turn not counted)."""
        async with self._turn:
            if self._closed:
                raise JobFailed(f"the {self.name} worker is closed")
            self.start()
            process, loop = self._process, asyncio.get_running_loop()
            outcome = loop.create_future()
            threading.Thread(target=_exchange, args=(process, (job, args), loop, outcome),
                             name=f"archdsl-{self.name}", daemon=True).start()
            try:
                status, value, details = await asyncio.wait_for(outcome, limit)
            except (asyncio.CancelledError, asyncio.TimeoutError):
                process.kill()  # the job is moot, or too long: stop it where it is
                self._process = None
                self.start()
                raise
        if status == "ok":
            return value
        if self._closed:
            raise JobFailed("stopped: the server is shutting down")
        raise JobFailed(value, details)

    def close(self) -> None:
        """Kill the process (and reap it); later jobs fail."""
        self._closed = True
        if self._process is not None:
            self._process.kill()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log.error("the %s process outlived its kill", self.name)


def _exchange(process: subprocess.Popen, job, loop, outcome) -> None:
    """Send `job` and wait for its outcome, off the event loop; then hand it over."""
    try:
        pickle.dump(job, process.stdin)
        process.stdin.flush()
        result = pickle.load(process.stdout)
    except Exception as exc:  # noqa: BLE001 - killed, or died: the pipe broke
        process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        result = ("lost", f"the process ended ({type(exc).__name__}, exit code "
                          f"{process.returncode})", "")

    def settle():
        if not outcome.done():
            outcome.set_result(result)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:
        pass  # the event loop is closed: the server has gone


# ----------------------------------------------------------------------------- the child


def check(text: str, file: str):
    """A Document of `text` (index.check, without a previous version)."""
    from .index import check as check_document

    return check_document(text, file)


def format_spec(text: str) -> tuple[str, str]:
    """("formatted", `archdsl fmt`'s layout of `text`), or ("refused", why) when `archdsl
    fmt` refuses it (syntax errors: the first one, with its place)."""
    from ..fmt import FormatError, format_text

    try:
        return "formatted", format_text(text)
    except FormatError as exc:
        first = exc.diagnostics[0] if exc.diagnostics else None
        where = f"{first.span.line}:{first.span.column}: " if first and first.span else ""
        return "refused", f"not formatted: {where}{exc}"


JOBS = {"check": check, "format": format_spec}


def serve(jobs_in, outcomes_out) -> None:
    """Run each job read from `jobs_in` and write its outcome, until `jobs_in` ends."""
    while True:
        try:
            name, args = pickle.load(jobs_in)
        except EOFError:
            return
        try:
            data = pickle.dumps(("ok", JOBS[name](*args), ""))
        except Exception as exc:  # noqa: BLE001 - the parent turns it into a diagnostic
            data = pickle.dumps(("error", f"{type(exc).__name__}: {exc}",
                                 traceback.format_exc()))
        outcomes_out.write(data)
        outcomes_out.flush()


def _exit_with_parent() -> None:
    """End this process when the server that started it has gone (a busy job would not
    notice its stdin closing)."""
    parent = os.getppid()
    while True:
        time.sleep(2.0)
        if os.getppid() != parent:
            os._exit(0)


if __name__ == "__main__":
    jobs_in, outcomes_out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not land among the outcomes
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    check("input 3x8x8\nconv 8 k3\n", "warm-up.arch")  # imports and builds the parser now
    serve(jobs_in, outcomes_out)
