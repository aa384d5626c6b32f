"""Exceptions raised by the contract library."""
from __future__ import annotations


class ContractViolation(AssertionError):
    """A recurrent module broke a contract of the torch recurrent API.

    An ``AssertionError`` subclass, so pytest shows it as a test failure (with assertion rewriting
    of the surrounding test untouched). ``violations`` holds one readable paragraph per broken
    contract; ``str(exc)`` is the whole report.
    """

    def __init__(self, title: str, violations: list[str]) -> None:
        self.title = title
        self.violations = list(violations)
        body = "\n\n".join(violations)
        super().__init__(f"{title}\n\n{body}" if body else title)


class SpecError(ValueError):
    """An RNNSpec cannot be built: a bad field value, or a module lacking required attributes."""


class SelfTestError(RuntimeError):
    """The runtime checker accepted a tensor it must reject: contracts would check nothing."""
