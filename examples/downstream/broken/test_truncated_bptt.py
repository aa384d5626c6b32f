"""A deliberately broken variant: truncated BPTT detaches the state between steps.

Run ``pytest broken``: one test per device fails, test_contract[<device>-differentiability],
with the evidence "no gradient flows back through time". A project that accepts the break
declares it once, and the item becomes a strict xfail::

    known_failures = {"differentiability": "truncated BPTT: no gradient through time"}
"""
import pytest

from pytest_rnn_contracts import RNNContractTests
from tinyrnn import ElmanRNN


class TestTruncatedBPTT(RNNContractTests):
    @pytest.fixture
    def rnn_module(self):
        return ElmanRNN(input_size=4, hidden_size=3, truncate_bptt=True)
