"""The one error boundary of the `archdsl` command: whatever a command raises becomes one
plain message on stderr and a documented exit code, never a traceback."""

from __future__ import annotations

import os
import sys

from ..command_values import EXIT_OK, EXIT_SPEC, color
from ..errors import EXIT_INTERRUPTED, ArchdslError


def guarded(command: str, action) -> int:
    """Run a command's action and turn whatever it raises into one plain message on stderr
    and a documented exit code, never a traceback (ARCHDSL_TRACEBACK=1 shows the traceback
    of an unexpected one). Every error archdsl words itself is an ArchdslError
    (archdsl/errors.py) that carries its exit code:

        2    usage: the command line (UsageError, an option out of range), an export that
             cannot be done (ExportError), a checkpoint that cannot be read
        1    a spec with errors (its diagnostics), a failed training, evaluation, prediction,
             drawing or export, a file that cannot be written, out of memory, an internal error
        130  Ctrl-C (and SIGTERM while training), after saving what can be saved
        0    also when the reader of stdout went away (`| head`)
    """
    rank = int(os.environ.get("RANK", "0")) if "LOCAL_RANK" in os.environ else 0
    if rank:
        command = f"{command} (rank {rank})"
    try:
        return action()
    except ArchdslError as exc:
        return _reported(command, exc, rank)
    except KeyboardInterrupt:
        if rank:
            return EXIT_INTERRUPTED  # every worker got Ctrl-C; rank 0 says it
        what = " before training started" if command == "train" else ""
        print(f"archdsl {command}: interrupted{what}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_OK
    except MemoryError:
        print(f"archdsl {command}: error: out of memory; use a smaller --batch-size or a smaller "
              "model", file=sys.stderr)
        return EXIT_SPEC
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        return _unexpected(command, exc)


def _reported(command: str, exc: ArchdslError, rank: int) -> int:
    """An error with a message for the user: the message (the diagnostics of a SpecError)
    and its own exit code. An error every worker meets alike is said by rank 0 alone."""
    if rank and getattr(exc, "on_every_worker", False):
        from ..train.distributed import outlive_rank_zero

        outlive_rank_zero()
        return exc.exit_code
    print(exc.report(command, color=color(sys.stderr)), file=sys.stderr)
    return exc.exit_code


def _unexpected(command: str, exc: Exception) -> int:
    """An OSError archdsl did not word itself, or a bug: one line, never a traceback."""
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"archdsl {command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_SPEC
    if os.environ.get("ARCHDSL_TRACEBACK"):
        raise exc
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    print(f"archdsl {command}: internal error: {type(exc).__name__}: {first}\nThis is a bug "
          "in archdsl; please report it with the command you ran (set ARCHDSL_TRACEBACK=1 "
          "to see where it happened)", file=sys.stderr)
    return EXIT_SPEC


def _quiet_stdout() -> None:
    """After a broken pipe: send what is still buffered nowhere, so that the interpreter's
    own flush at exit does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def tolerant_output() -> None:
    """Text that the terminal's encoding cannot show (a file name that is not UTF-8 arrives
    as surrogates) is printed with backslash escapes instead of failing the command."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):  # not a text stream of io's (a test's capture)
            pass
