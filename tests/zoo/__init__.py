"""A zoo of recurrent modules for verify_rnn, as data (torch's common_modules style).

``FAULTY``: realistic mistakes, each with the contract that must catch it.
``CORRECT``: modules of different construction that must pass every contract.
Both are tuples of :class:`ZooEntry`; tests/test_zoo.py runs one generic test body over each.
Importable as ``zoo`` because pytest's default "prepend" import mode puts tests/ (a directory
without __init__.py) on sys.path for the test modules in it.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

from .correct import CORRECT
from .faulty import FAULTY
from .faulty_subchecks import ENTRIES as _SUBCHECKS
from .loops import ZooEntry

FAULTY = FAULTY + _SUBCHECKS  # negative controls for sub-checks (tests/test_subchecks.py)

__all__ = ["CORRECT", "FAULTY", "ZooEntry", "one_thread"]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One intra-op CPU thread while probing tiny modules (the zoo's, the corpus's): on a busy
    2-core runner torch's thread pool costs more than the arithmetic (about 2x the wall time,
    measured)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def contract_result(module: Any, contract: str) -> Any:
    """verify_rnn(module, contracts=[contract])'s one ContractResult, whether it held or not."""
    from rnn_contracts import ContractViolation, verify_rnn

    try:
        report = verify_rnn(module, contracts=[contract])
    except ContractViolation as exc:
        report = exc.report
    (result,) = report.results
    assert result.name == contract
    return result


class Fake(torch.nn.Module):
    """A recurrent-looking module whose result is ``make(x)``: a deliberately broken layer."""

    def __init__(self, make: Callable[[Any], Any]) -> None:
        super().__init__()
        self.make = make

    def forward(self, x, hx=None):
        return self.make(x)
