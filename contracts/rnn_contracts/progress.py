"""Live progress of the command line, on stderr.

* on a terminal with rich installed (the ``progress`` extra): each finished check as a line
  (column, name, status, time) and a live spinner line for the one running;
* elsewhere (CI logs, pipes, files) or without rich: one plain line per finished check, never a
  control character;
* ``--quiet``: nothing.

A closed stream ends the reporting quietly; the run goes on.
"""
from __future__ import annotations

from typing import Any, TextIO

from rnn_contracts.outcome import heading, mark, milliseconds


def progress_line(where: str, name: str, status: str, seconds: float) -> str:
    """``[cpu] shapes: ok 0.3 ms``: one finished check."""
    return f"{heading(where, name)}: {mark(status)} {milliseconds(seconds)}"


class Silent:
    """--quiet: reports nothing."""

    def start(self, where: str, name: str) -> None:
        """Nothing."""

    def finish(self, where: str, name: str, status: str, seconds: float) -> None:
        """Nothing."""

    def close(self) -> None:
        """Nothing."""


class PlainLines:
    """One plain line per finished check, flushed at once (a CI log shows it as it happens)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream: TextIO | None = stream

    def start(self, where: str, name: str) -> None:
        """Nothing: a pipe gets no live line."""

    def finish(self, where: str, name: str, status: str, seconds: float) -> None:
        """Write the check's line."""
        if self._stream is None:
            return
        try:
            self._stream.write(progress_line(where, name, status, seconds) + "\n")
            self._stream.flush()
        except (BrokenPipeError, ValueError):  # the reader went away, or the stream is closed
            self._stream = None

    def close(self) -> None:
        """Nothing to undo."""


_STYLE = {"passed": "green", "failed": "bold red", "not applicable": "dim", "known limitation": "yellow",
          "not run": "dim"}


class Live:
    """rich on a terminal: finished checks printed above a transient spinner line."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        # soft_wrap: a long line wraps as the terminal wraps it; rich never crops or ellipsizes.
        self._console = Console(file=stream, force_terminal=True, highlight=False, soft_wrap=True)
        self._bar = Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False),
                             TimeElapsedColumn(), console=self._console, transient=True)
        self._task = self._bar.add_task("starting", total=None)  # the first start() names the check
        self._bar.start()

    def start(self, where: str, name: str) -> None:
        """Show ``name`` as the running check."""
        self._bar.update(self._task, description=f"{heading(where, name)} running", refresh=True)

    def finish(self, where: str, name: str, status: str, seconds: float) -> None:
        """Print the finished check above the live line."""
        from rich.text import Text

        self._console.print(Text(progress_line(where, name, status, seconds), style=_STYLE.get(status, "")))

    def close(self) -> None:
        """Remove the live line and give the terminal back."""
        self._bar.stop()


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def make_reporter(stream: TextIO, *, quiet: bool = False) -> Silent | PlainLines | Live:
    """The reporter that fits ``stream``: Silent for quiet, Live on a terminal when rich is
    installed, PlainLines otherwise."""
    if quiet:
        return Silent()
    if _is_terminal(stream):
        try:
            return Live(stream)
        except ImportError:  # rich is an optional extra: a terminal then gets the plain lines
            pass
    return PlainLines(stream)
