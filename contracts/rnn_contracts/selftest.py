"""Session-start self-test: prove the contracts fire before trusting a green run."""
from __future__ import annotations

import torch

from rnn_contracts import engine
from rnn_contracts.checks import check_forward
from rnn_contracts.errors import ContractViolation, SelfTestError
from rnn_contracts.spec import RNNSpec


class _BatchFirstStates(torch.nn.Module):
    """A deliberately wrong layer: right output, h_n laid out (batch, layers, hidden)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seq, batch, _ = x.shape
        return x.new_zeros(seq, batch, 2), x.new_zeros(batch, 1, 2)


def selftest(checker: str | None = None) -> None:
    """Raise SelfTestError unless the engine and check_forward both reject deliberate mismatches.

    ``checker`` selects the checker for this run only ("typeguard" or "beartype"); by default the
    one in use.
    """
    engine.selftest(checker)
    previous = engine.get_checker()
    if checker is not None:
        engine.set_checker(checker)
    try:
        spec = RNNSpec(mode="RNN", input_size=4, hidden_size=2)
        try:
            check_forward(_BatchFirstStates(), torch.zeros(3, 5, 4), spec=spec)
        except ContractViolation:
            return
        raise SelfTestError(
            f"contract self-test failed: check_forward accepted an h_n of shape (5, 1, 2) for a "
            f"(seq=3, batch=5) input [checker: {engine.get_checker()}]; contracts would not be enforced"
        )
    finally:
        engine.set_checker(previous)
