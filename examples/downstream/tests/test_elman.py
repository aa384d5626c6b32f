"""tinyrnn's tests: the conformance suite of rnn-contracts, plus one test on the seed's batch.

The fixtures ``rnn_device`` and ``hello_batch`` come from the rnn-contracts pytest plugin, which
registers itself when rnn-contracts is installed (no conftest.py, no pytest_plugins needed).
``rnn_device`` runs each test on every device the machine offers (cpu, cuda:N, mps).
"""
import typing

import pytest
import torch

import rnn_contracts
from pytest_rnn_contracts import RNNContractTests
from tinyrnn import ElmanRNN


class TestElmanContracts(RNNContractTests):
    """Every contract of torch.nn.RNN, one test item per contract and device.

    ElmanRNN takes no PackedSequence and no unbatched (2-D) input: those two contracts are
    skipped with the reason.
    """

    @pytest.fixture
    def rnn_module(self):
        return ElmanRNN(input_size=4, hidden_size=3)


def test_hello_batch_passes_check_forward(hello_batch: torch.Tensor, rnn_device: str) -> None:
    """The seed's one-hot batch, (3, 5, 4), read seq-first: 5 sequences of 3 steps."""
    rnn = ElmanRNN(input_size=4, hidden_size=3).to(rnn_device)
    output, h_n = rnn_contracts.check_forward(rnn, hello_batch)
    assert (tuple(output.shape), tuple(h_n.shape)) == ((3, 5, 3), (1, 5, 3))
    assert output.device == hello_batch.device


def test_forward_is_annotated_with_the_contract_aliases() -> None:
    hints = typing.get_type_hints(ElmanRNN.forward)
    assert hints["x"] is rnn_contracts.SeqFirstInput
    assert hints["return"] == tuple[rnn_contracts.SeqFirstOutput, rnn_contracts.HiddenState]
