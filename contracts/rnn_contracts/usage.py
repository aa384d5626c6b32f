"""UsageError: what the command line reports as exit status 2, in one line on stderr."""
from __future__ import annotations


class UsageError(Exception):
    """A usage or environment error of the command line (bad target, bad option, unwritable
    report path, missing optional checker): exit status 2 with a one-line message."""


def one_line(text: str) -> str:
    """``text`` on one line: every run of whitespace (newlines included) becomes one space."""
    return " ".join(text.split())
