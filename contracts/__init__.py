"""rnn-contracts: shape and semantic contracts for PyTorch recurrent layers.

Public surface (everything else is private)::

    from contracts import RNNSpec, check_forward, ContractViolation, SpecError
    from contracts import verify_rnn, ContractReport, checked
    from contracts import HiddenState, BatchFirstInput, ...   # jaxtyping aliases
"""
from __future__ import annotations

from contracts.aliases import (
    BatchFirstInput,
    BatchFirstOutput,
    CellState,
    HiddenState,
    PackedInputData,
    PackedOutputData,
    SeqFirstInput,
    SeqFirstOutput,
    UnbatchedCellState,
    UnbatchedHiddenState,
    UnbatchedInput,
    UnbatchedOutput,
)
from contracts.checks import check_forward, check_inputs
from contracts.probes import CONTRACT_NAMES
from contracts.engine import get_checker, set_checker
from contracts.errors import ContractViolation, SelfTestError, SpecError
from contracts.selftest import selftest
from contracts.report import ContractReport, ContractResult
from contracts.spec import NamedShape, RNNSpec
from contracts.verify import verify_rnn
from contracts.wrapper import CheckedModule, checked

__version__ = "0.1.0"

__all__ = [
    "CONTRACT_NAMES",
    "ContractReport",
    "ContractResult",
    "verify_rnn",
    "checked",
    "CheckedModule",
    "BatchFirstInput",
    "BatchFirstOutput",
    "CellState",
    "ContractViolation",
    "HiddenState",
    "NamedShape",
    "PackedInputData",
    "PackedOutputData",
    "RNNSpec",
    "SelfTestError",
    "SeqFirstInput",
    "SeqFirstOutput",
    "SpecError",
    "UnbatchedCellState",
    "UnbatchedHiddenState",
    "UnbatchedInput",
    "UnbatchedOutput",
    "check_forward",
    "check_inputs",
    "get_checker",
    "selftest",
    "set_checker",
]
