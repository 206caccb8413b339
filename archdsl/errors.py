"""The one error base. Every failure archdsl reports to a person as a message rather than a
traceback is an ArchdslError, which carries the exit status the command line gives it; the
CLI's boundary (cli.guarded) catches this one class. A leaf module: it imports nothing from
archdsl, so every stage may raise its own error without importing the command line."""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# 128 + SIGINT, as shells report Ctrl-C: a run stopped by Ctrl-C (the CLI's exit code, and a
# torchrun worker's that the launcher recognises as having said so)
EXIT_INTERRUPTED = 130


class ArchdslError(Exception):
    """A failure with a message for the user. `exit_code` is the command's exit status;
    `label` what the command line writes before the message (`archdsl CMD: error: …`),
    None for none (`archdsl train: interrupted …`)."""

    exit_code = EXIT_FAILED
    label: str | None = "error"

    def report(self, command: str, color: bool = False) -> str:
        """The text the command line prints on stderr."""
        label = f"{self.label}: " if self.label else ""
        return f"archdsl {command}: {label}{self}"


class UsageError(ArchdslError):
    """A problem with the command line itself: an option, a file that cannot be read or
    would be replaced (exit code 2)."""

    exit_code = EXIT_USAGE
