"""rnn-contracts: shape and semantic contracts for PyTorch recurrent layers.

Public surface (everything else is private)::

    from rnn_contracts import RNNSpec, check_forward, ContractViolation, SpecError
    from rnn_contracts import verify_rnn, ContractReport, checked
    from rnn_contracts import HiddenState, BatchFirstInput, ...   # jaxtyping aliases
"""
from __future__ import annotations

from rnn_contracts.aliases import (
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
from rnn_contracts.checks import check_forward, check_inputs
from rnn_contracts.probes import CONTRACT_NAMES
from rnn_contracts.engine import get_checker, set_checker
from rnn_contracts.errors import ContractViolation, SelfTestError, SpecError
from rnn_contracts.selftest import selftest
from rnn_contracts.report import ContractReport, ContractResult
from rnn_contracts.spec import NamedShape, RNNSpec
from rnn_contracts.verify import verify_rnn
from rnn_contracts.wrapper import CheckedModule, checked, unchecked

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
    "unchecked",
]
