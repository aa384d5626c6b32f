"""A zoo of recurrent modules for verify_rnn, as data (torch's common_modules style).

``FAULTY``: realistic mistakes, each with the contract that must catch it.
``CORRECT``: modules of different construction that must pass every contract.
Both are tuples of :class:`ZooEntry`; tests/test_zoo.py runs one generic test body over each.
Importable as ``zoo`` because pytest's default "prepend" import mode puts tests/ (a directory
without __init__.py) on sys.path for the test modules in it.
"""
from __future__ import annotations

from .correct import CORRECT
from .faulty import FAULTY
from .faulty_subchecks import ENTRIES as _SUBCHECKS
from .loops import ZooEntry

FAULTY = FAULTY + _SUBCHECKS  # negative controls for sub-checks (tests/test_subchecks.py)

__all__ = ["CORRECT", "FAULTY", "ZooEntry"]
