"""rnn-contracts' conformance suite, next to the project's own generic names."""
import pytest
import torch

from pytest_rnn_contracts import RNNContractTests


class TestTorchGRU(RNNContractTests):
    @pytest.fixture
    def rnn_module(self):
        return torch.nn.GRU(4, 3, num_layers=2)
