"""Feature-axis hints (rnn_contracts.diagnose._feature_hint), pinned whole on check_forward's message.

A hint that stops firing, or fires on the wrong mistake, still leaves a violation: the zoo and the
message table saw the failure and never read the hint. Each case here is one layout mistake a
person makes, with the whole paragraph they read, and a near miss that must get no hint.

Kills (mutation/README.md): the proj_size hint (output / h_0 / h_n holding hidden_size where
proj_size belongs) with its ``got ==`` made ``!=`` or its ``name in`` made ``not in``; the
state_stacks hint (a state whose first axis is not num_layers * D) with its ``got == want`` made
``!=``, its ``len(actual) >= 2`` made ``< 2``, or its ``actual[0] != stacks`` made ``==``.
"""
from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from rnn_contracts import ContractViolation, RNNSpec, check_forward
from zoo import Fake




def zeros(*shape: int) -> torch.Tensor:
    return torch.zeros(shape)


def message(module: nn.Module, x: torch.Tensor, hx: Any = None, spec: RNNSpec | None = None) -> str:
    with pytest.raises(ContractViolation) as caught:
        check_forward(module, x, hx, spec=spec)
    return str(caught.value)


LSTM_PROJ = RNNSpec("LSTM", 4, 7, proj_size=3)  # H_out 3, H_cell 7
BOUND_PROJ = "  bound: batch=3 seq=5 dim=4 hidden=3 cell=7 layers=1 directions=1"
PROJ_HINT = "  hint: with proj_size=3, output and h use proj_size while c uses hidden_size=7"


def test_output_and_h_n_sized_by_hidden_size_get_the_proj_size_hint(checker: str) -> None:
    # the layer forgot its projection: output and h_n carry hidden_size (7), not proj_size (3)
    layer = Fake(lambda x: (zeros(5, 3, 7), (zeros(1, 3, 7), zeros(1, 3, 7))))
    assert message(layer, zeros(5, 3, 4), spec=LSTM_PROJ) == (
        f"LSTM(4, 7, proj_size=3) broke its contract in its result on input (5, 3, 4) float32 on cpu [checker: {checker}]\n\n"
        "output: expected (seq=5, batch=3, directions*hidden=3), got (5, 3, 7)\n"
        f"{BOUND_PROJ}\n"
        f"{PROJ_HINT}\n\n"
        "h_n: expected (layers*directions=1, batch=3, hidden=3), got (1, 3, 7)\n"
        f"{BOUND_PROJ}\n"
        f"{PROJ_HINT}"
    )


def test_bidirectional_output_sized_by_hidden_size_gets_the_proj_size_hint(checker: str) -> None:
    # D * hidden_size (14) where D * proj_size (6) belongs: the hint scales by the directions
    layer = Fake(lambda x: (zeros(5, 3, 14), (zeros(2, 3, 7), zeros(2, 3, 7))))
    bound = "  bound: batch=3 seq=5 dim=4 hidden=3 cell=7 layers=1 directions=2"
    assert message(layer, zeros(5, 3, 4), spec=LSTM_PROJ.replace(bidirectional=True)) == (
        "LSTM(4, 7, bidirectional=True, proj_size=3) broke its contract in its result on input (5, 3, 4) "
        f"float32 on cpu [checker: {checker}]\n\n"
        "output: expected (seq=5, batch=3, directions*hidden=6), got (5, 3, 14)\n"
        f"{bound}\n"
        f"{PROJ_HINT}\n\n"
        "h_n: expected (layers*directions=2, batch=3, hidden=3), got (2, 3, 7)\n"
        f"{bound}\n"
        f"{PROJ_HINT}"
    )


def test_h_0_sized_by_hidden_size_gets_the_proj_size_hint(checker: str) -> None:
    torch.manual_seed(0)
    lstm = nn.LSTM(4, 7, proj_size=3)
    assert message(lstm, zeros(5, 3, 4), (zeros(1, 3, 7), zeros(1, 3, 7))) == (
        f"LSTM(4, 7, proj_size=3) broke its contract before the call on input (5, 3, 4) float32 on cpu [checker: {checker}]\n\n"
        "h_0: expected (layers*directions=1, batch=3, hidden=3), got (1, 3, 7)\n"
        f"{BOUND_PROJ}\n"
        f"{PROJ_HINT}"
    )


def test_features_that_are_neither_size_get_no_hint(checker: str) -> None:
    # 5 features (neither proj_size nor hidden_size) in output and h_n, and c_n holding
    # hidden_size * (hidden_size // proj_size) = 14: a wrong size, but no known mistake to name
    layer = Fake(lambda x: (zeros(5, 3, 5), (zeros(1, 3, 5), zeros(1, 3, 14))))
    assert message(layer, zeros(5, 3, 4), spec=LSTM_PROJ) == (
        f"LSTM(4, 7, proj_size=3) broke its contract in its result on input (5, 3, 4) float32 on cpu [checker: {checker}]\n\n"
        "output: expected (seq=5, batch=3, directions*hidden=3), got (5, 3, 5)\n"
        f"{BOUND_PROJ}\n\n"
        "h_n: expected (layers*directions=1, batch=3, hidden=3), got (1, 3, 5)\n"
        f"{BOUND_PROJ}\n\n"
        "c_n: expected (layers*directions=1, batch=3, cell=7), got (1, 3, 14)\n"
        f"{BOUND_PROJ}"
    )


def test_h_0_without_the_directions_in_its_first_axis_gets_the_state_stacks_hint(checker: str) -> None:
    torch.manual_seed(0)
    gru = nn.GRU(4, 7, num_layers=2, bidirectional=True)
    assert message(gru, zeros(5, 3, 4), zeros(2, 3, 7)) == (
        f"GRU(4, 7, num_layers=2, bidirectional=True) broke its contract before the call on input (5, 3, 4) "
        f"float32 on cpu [checker: {checker}]\n\n"
        "h_0: expected (layers*directions=4, batch=3, hidden=7), got (2, 3, 7)\n"
        "  bound: batch=3 seq=5 dim=4 hidden=7 layers=2 directions=2\n"
        "  hint: the first axis of h_0 stacks layers and directions: num_layers * D = 4, "
        "ordered as view(num_layers, D, batch, H_out)"
    )


def test_h_n_and_c_n_of_the_wrong_depth_get_the_state_stacks_hint(checker: str) -> None:
    # a two-layer LSTM returning only its last layer's states
    layer = Fake(lambda x: (zeros(5, 3, 7), (zeros(1, 3, 7), zeros(1, 3, 7))))
    hint = ("  hint: the first axis of {} stacks layers and directions: num_layers * D = 2, "
            "ordered as view(num_layers, D, batch, H_out)")
    bound = "  bound: batch=3 seq=5 dim=4 hidden=7 cell=7 layers=2 directions=1"
    assert message(layer, zeros(5, 3, 4), spec=RNNSpec("LSTM", 4, 7, num_layers=2)) == (
        f"LSTM(4, 7, num_layers=2) broke its contract in its result on input (5, 3, 4) float32 on cpu [checker: {checker}]\n\n"
        "h_n: expected (layers*directions=2, batch=3, hidden=7), got (1, 3, 7)\n"
        f"{bound}\n"
        f"{hint.format('h_n')}\n\n"
        "c_n: expected (layers*directions=2, batch=3, cell=7), got (1, 3, 7)\n"
        f"{bound}\n"
        f"{hint.format('c_n')}"
    )


def test_unbatched_h_0_of_the_wrong_depth_gets_the_state_stacks_hint(checker: str) -> None:
    torch.manual_seed(0)
    gru = nn.GRU(4, 7)
    assert message(gru, zeros(5, 4), zeros(2, 7)) == (
        f"GRU(4, 7) broke its contract before the call on input (5, 4) float32 on cpu [checker: {checker}]\n\n"
        "h_0: expected (layers*directions=1, hidden=7), got (2, 7)\n"
        "  bound: seq=5 dim=4 hidden=7 layers=1 directions=1\n"
        "  hint: the first axis of h_0 stacks layers and directions: num_layers * D = 1, "
        "ordered as view(num_layers, D, batch, H_out)"
    )


def test_initial_states_of_another_batch_get_no_state_stacks_hint(checker: str) -> None:
    # the first axis is right (num_layers * D = 1): the batch is wrong, and no hint may blame the stacks
    torch.manual_seed(0)
    lstm = nn.LSTM(4, 7)
    bound = "  bound: batch=3 seq=5 dim=4 hidden=7 cell=7 layers=1 directions=1"
    assert message(lstm, zeros(5, 3, 4), (zeros(1, 2, 7), zeros(1, 2, 7))) == (
        f"LSTM(4, 7) broke its contract before the call on input (5, 3, 4) float32 on cpu [checker: {checker}]\n\n"
        "h_0: expected (layers*directions=1, batch=3, hidden=7), got (1, 2, 7)\n"
        f"{bound}\n\n"
        "c_0: expected (layers*directions=1, batch=3, cell=7), got (1, 2, 7)\n"
        f"{bound}"
    )
