"""verify_rnn in half precision: torch's own layers pass, and the bug zoo is still caught.

Half-precision comparisons use atol one ulp at 1.0 (the run-vs-run rows of rnn_contracts.precision say why); these
tests are the evidence that this is loose enough for correct layers and tight enough for bugs.
"""
from __future__ import annotations

import pytest
import torch

from rnn_contracts import ContractViolation, verify_rnn
from zoo import FAULTY

HALF = [pytest.param(torch.float16, id="float16"), pytest.param(torch.bfloat16, id="bfloat16")]
LAYERS = {
    "rnn": lambda: torch.nn.RNN(4, 6),
    "rnn_relu_bi": lambda: torch.nn.RNN(3, 5, nonlinearity="relu", bidirectional=True),
    "lstm_2l_bi": lambda: torch.nn.LSTM(4, 6, num_layers=2, bidirectional=True),
    "lstm_proj": lambda: torch.nn.LSTM(4, 6, proj_size=3),
    "gru_bf": lambda: torch.nn.GRU(4, 6, batch_first=True),
    "gru_3l": lambda: torch.nn.GRU(5, 7, num_layers=3),
}


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")  # torch's CPU note
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", list(LAYERS))
def test_torch_layers_pass_in_half_precision(name: str, seed: int, dtype: torch.dtype) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = LAYERS[name]()
    report = verify_rnn(module, dtype=dtype)
    assert report.dtype == str(dtype).removeprefix("torch.")
    assert next(p for p in module.parameters()).dtype == torch.float32  # a copy was moved


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("entry", FAULTY, ids=lambda e: e.id)
def test_the_zoo_is_caught_in_half_precision(entry, dtype: torch.dtype) -> None:
    """Each bug is caught by its own contract in half precision. Only that contract runs: the
    claim is about its tolerance, and tests/test_zoo.py runs every contract on every entry (in
    float32); the whole battery here cost ~3 s of the suite's CPU for no other verdict."""
    with pytest.raises(ContractViolation) as caught:
        verify_rnn(entry.build(), entry.spec, dtype=dtype, contracts=[entry.expect])
    assert [r.name for r in caught.value.report.failures] == [entry.expect]
