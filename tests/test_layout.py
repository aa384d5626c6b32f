"""batch_first: what it changes (the input and output layout) and what it never changes (h_n, c_n).

Then the seed's own call: nn.RNN(4, 2) with the default batch_first=False on the (3, 5, 4)
"hello" batch reads it as 5 sequences of length 3, which only a contract binding batch across
input and h_n can see.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from rnn_contracts.errors import render_violation
from rnn_contracts import ContractViolation, RNNSpec, check_forward
from rnn_contracts.hello import WORDS

BATCH, SEQ, INPUT, HIDDEN, PROJ = 3, 5, 4, 6, 5  # num_layers * D in {1, 2, 4}: no collision

LAYERS = [
    pytest.param(nn.RNN, {}, id="RNN"),
    pytest.param(nn.LSTM, {}, id="LSTM"),
    pytest.param(nn.LSTM, {"proj_size": PROJ}, id="LSTM-proj"),
    pytest.param(nn.GRU, {}, id="GRU"),
]


def _states(state) -> tuple[torch.Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


def _assert_same(actual: torch.Tensor, expected: torch.Tensor, device: str) -> None:
    # Bitwise on the CPU (verified); elsewhere a backend may pick another kernel per layout.
    exact = {"rtol": 0.0, "atol": 0.0} if device == "cpu" else {}
    torch.testing.assert_close(actual, expected, **exact)


# torch notes "LSTM with projections is not supported with oneDNN" for some proj_size dtypes: its
# fallback notice, not a defect of the layer under test.
@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning")
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("cls, extra", LAYERS)
def test_batch_first_is_a_transpose_of_input_and_output_only(cls, extra, bidirectional, num_layers, device, rnn_seeded):
    kwargs = dict(num_layers=num_layers, bidirectional=bidirectional, **extra)
    batch_first = cls(INPUT, HIDDEN, batch_first=True, **kwargs)
    seq_first = cls(INPUT, HIDDEN, batch_first=False, **kwargs)
    seq_first.load_state_dict(batch_first.state_dict())
    batch_first, seq_first = batch_first.to(device), seq_first.to(device)
    x = torch.randn(BATCH, SEQ, INPUT).to(device)

    out_bf, state_bf = batch_first(x)
    out_sf, state_sf = seq_first(x.transpose(0, 1))

    d = 2 if bidirectional else 1
    assert out_bf.shape == (BATCH, SEQ, d * extra.get("proj_size", HIDDEN))
    _assert_same(out_bf, out_sf.transpose(0, 1), device)
    widths = (extra.get("proj_size", HIDDEN), HIDDEN)  # h uses H_out, c uses H_cell
    for h_bf, h_sf, width in zip(_states(state_bf), _states(state_sf), widths):
        assert h_bf.shape == h_sf.shape == (num_layers * d, BATCH, width)  # never batch-first
        _assert_same(h_bf, h_sf, device)


# -- the seed's call ------------------------------------------------------------------------------
def test_seed_columns_2_and_3_are_the_same_sequence():
    """Read seq-first, column j of the (3, 5, 4) batch is letter j of each word: "hel", "eol", ..."""
    columns = ["".join(word[j] for word in WORDS) for j in range(5)]
    assert columns == ["hel", "eol", "lle", "lle", "oll"]


def test_seed_call_reads_five_sequences_of_length_three(hello_batch, device, rnn_seeded):
    rnn = nn.RNN(4, 2).to(device)  # built on the CPU under seed 0, then moved
    assert rnn.batch_first is False
    output, h_n = rnn(hello_batch)

    assert output.shape == (3, 5, 2)  # the seed's printed size: looks like (batch, seq, hidden)...
    assert h_n.shape == (1, 5, 2)  # ...but the batch is 5
    torch.testing.assert_close(h_n[0], output[-1], rtol=0, atol=0)  # h_n is step 3 of 5 sequences
    # columns 2 and 3 are both "l l e": the same sequence, the same outputs at every step
    assert torch.equal(hello_batch[:, 2], hello_batch[:, 3])
    assert torch.equal(output[:, 2], output[:, 3])
    # columns 0 ("h e l") and 1 ("e o l") differ: the equality above is not a constant output
    assert not torch.equal(output[:, 0], output[:, 1])


def test_seed_call_breaks_the_batch_seq_dim_contract(hello_batch, device, rnn_seeded):
    rnn = nn.RNN(4, 2).to(device)
    declared = RNNSpec.from_module(rnn).replace(batch_first=True)  # the note's (batch, seq, dim)
    with pytest.raises(ContractViolation) as info:
        check_forward(rnn, hello_batch, spec=declared)
    (violation,) = info.value.violations
    assert (violation.kind, violation.tensor, violation.actual, violation.mistake) == (
        "shape", "h_n", (1, 5, 2), "batch_first")
    assert render_violation(violation).startswith(
        "h_n: expected (layers*directions=1, batch=3, hidden=2), got (1, 5, 2)")
    assert "Check batch_first (spec: True, module: False)" in violation.hint


def test_seed_call_meets_torch_default_contract(hello_batch, device, rnn_seeded):
    """The same call is fine as torch documents it: 5 sequences of length 3."""
    rnn = nn.RNN(4, 2).to(device)
    output, h_n = check_forward(rnn, hello_batch)
    assert h_n.shape == (1, 5, 2)


def test_seed_with_batch_first_meets_the_notes_contract(hello_batch, device, rnn_seeded):
    rnn = nn.RNN(4, 2, batch_first=True).to(device)
    output, h_n = check_forward(rnn, hello_batch, spec=RNNSpec.from_module(rnn))
    assert output.shape == (3, 5, 2)
    assert h_n.shape == (1, 3, 2)
    torch.testing.assert_close(h_n[0], output[:, -1], rtol=0, atol=0)
