"""Hints, pinned whole where their words are the contract (mutation/README.md).

Kills: the LSTM hx hint printing H_out where it means H_cell (they differ only with proj_size),
and the rank hints' conditions (an extra axis reported as nothing, or as a lost one; a lost size-1
axis reported as a merge).
"""
from __future__ import annotations

import pytest
import torch

from rnn_contracts import ContractViolation, RNNSpec, check_forward
from rnn_contracts.diagnose import _rank_hint


def test_lstm_given_one_tensor_hints_c_0_with_h_cell() -> None:
    lstm = torch.nn.LSTM(4, 6, proj_size=3)  # H_cell 6, H_out 3
    with pytest.raises(ContractViolation) as caught:
        check_forward(lstm, torch.zeros(5, 7, 4), torch.zeros(1, 7, 3))
    (v,) = [v for v in caught.value.violations if v.mistake == "lstm_hx_tensor"]
    assert v.hint == "pass (h_0, c_0), with c_0 of shape (layers*directions, batch, cell=6)"


def test_rank_hints() -> None:
    spec = RNNSpec(mode="GRU", input_size=4, hidden_size=6)
    batched, unbatched = spec.state_shape(7), spec.state_shape(None)
    lost = _rank_hint("h_n", batched, (1, 6))
    assert (lost.mistake, lost.text) == ("lost_axis", "h_n lost an axis: a batched call must keep the batch axis")
    extra = _rank_hint("h_n", unbatched, (1, 1, 6))
    assert (extra.mistake, extra.text) == (
        "extra_axis", "h_n has an extra axis: with unbatched (2-D) input, states have no batch axis")
    assert _rank_hint("h_n", batched, (1, 7, 6, 1, 1)) is None


def test_a_lost_axis_of_size_one_is_named_not_called_a_merge() -> None:
    """h_n returned as (batch, hidden) by a one-layer module: a size-1 axis "merges" into any
    other without a trace, and the hint said it merged its layers*directions and batch axes (a
    user-view review). Kills: the size-1 skip in _merged_hint; the unsqueeze advised whatever the
    axis's size."""
    spec = RNNSpec(mode="GRU", input_size=4, hidden_size=6)
    lost = _rank_hint("h_n", spec.state_shape(7), (7, 6))
    assert (lost.mistake, lost.text) == ("lost_axis", (
        "h_n lost its layers*directions axis (size 1): torch keeps h_n as (layers*directions, batch, "
        "hidden); put it back with h_n.unsqueeze(0)"))
    # two layers, one returned: no unsqueeze brings the other back (a review)
    one_of_two = _rank_hint("h_n", RNNSpec(mode="GRU", input_size=4, hidden_size=6, num_layers=2).state_shape(7), (7, 6))
    assert one_of_two.text == ("h_n lost its layers*directions axis (size 2): torch keeps h_n as (layers*directions, "
                               "batch, hidden); return every one of its 2, not one")
    # at batch 1 either size-1 axis may be the lost one: the general words
    either = _rank_hint("h_n", spec.state_shape(1), (1, 6))
    assert either.text == "h_n lost an axis: a batched call must keep the batch axis"
