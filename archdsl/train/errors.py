"""The failures of a training run that the command line reports as messages, not tracebacks."""

from __future__ import annotations

from ..errors import EXIT_INTERRUPTED, EXIT_USAGE, ArchdslError


class TrainError(ArchdslError):
    """A run that cannot start or go on, with a message for the user."""


class TrainUsageError(TrainError):
    """An option the run cannot take as given (a layer --freeze does not find, an option a
    resume would ignore, an image path predict cannot find): a mistake on the command line,
    which it reports with exit code 2, as the CLI's own UsageError."""

    exit_code = EXIT_USAGE


class Interrupted(TrainError):
    """Ctrl-C stopped the run; the message says what was saved and how to continue (exit 130)."""

    exit_code, label = EXIT_INTERRUPTED, None


def on_every_worker(exc: BaseException) -> BaseException:
    """Mark an error that every worker of a distributed run meets alike (a bad spec, a
    non-finite loss, Ctrl-C): only rank 0 reports it."""
    exc.on_every_worker = True
    return exc


__all__ = ["TrainError", "TrainUsageError", "Interrupted", "on_every_worker", "EXIT_INTERRUPTED"]
