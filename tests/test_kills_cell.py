"""The cell contract (rnn_contracts.probes.cell) and Contract.doc, pinned where the zoo cannot see them.

cell_equivalence is opt-in (verify_rnn(layer, cell=...)): no zoo module is given a cell, so its
guards and comparisons were unwatched. Here a layer that unrolls its cell correctly passes, a
layer that differs from its cell only in the output, only in h_n or only in c_n fails with that
tensor as evidence, and a layer a cell cannot unroll (two layers, two directions, a cell itself)
or a probe run with no cell is "not applicable" with its whole reason.

Kills (mutation/README.md): the ``cell is None`` guard deleted or negated; the one-layer,
one-direction guard deleted or with any of its three conditions negated; the output comparison
deleted; Contract.doc's ``or ""`` made ``and ""`` (every contract's doc empty).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from rnn_contracts import ContractViolation, RNNSpec, verify_rnn
from rnn_contracts.probes import CELL_CONTRACT, CONTRACTS, Context, Contract, NotApplicable

WHY = "with no h_0 the layer must equal its cell unrolled over time"


class GRULayer(nn.Module):
    """A one-layer GRU whose loop calls its GRUCell; ``fault`` breaks one returned tensor only."""

    mode, input_size, hidden_size = "GRU", 4, 3

    def __init__(self, fault: str | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.cell, self.fault = nn.GRUCell(4, 3), fault

    def forward(self, x, hx=None):
        h, outs = (x.new_zeros(x.shape[1], 3) if hx is None else hx[0]), []
        for t in range(x.shape[0]):
            h = self.cell(x[t], h)
            outs.append(h)
        output = torch.stack(outs)
        if self.fault == "output":  # a stray affine map on the output; h_n is still the cell's
            output = output * 1.01 + 0.01
        h_n = outs[0] if self.fault == "h_n" else h  # h_n: the first step's state, not the last
        return output, h_n[None]


class LSTMLayer(nn.Module):
    """A one-layer LSTM whose loop calls its LSTMCell; fault="c_n" halves the returned c_n only."""

    mode, input_size, hidden_size = "LSTM", 4, 3

    def __init__(self, fault: str | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.cell, self.fault = nn.LSTMCell(4, 3), fault

    def forward(self, x, hx=None):
        if hx is None:
            h = c = x.new_zeros(x.shape[1], 3)
        else:
            h, c = hx[0][0], hx[1][0]
        outs = []
        for t in range(x.shape[0]):
            h, c = self.cell(x[t], (h, c))
            outs.append(h)
        c_n = c * 0.5 if self.fault == "c_n" else c
        return torch.stack(outs), (h[None], c_n[None])


def cell_result(layer: nn.Module, cell: nn.Module):
    try:
        report = verify_rnn(layer, cell=cell, contracts=["cell_equivalence"])
    except ContractViolation as exc:
        report = exc.report
    (result,) = report.results
    assert result.name == "cell_equivalence"
    return result


@pytest.mark.parametrize("layer_type", [GRULayer, LSTMLayer])
def test_a_layer_that_unrolls_its_cell_passes(layer_type: type[nn.Module]) -> None:
    layer = layer_type()
    result = cell_result(layer, layer.cell)
    assert (result.status, result.detail, result.evidence) == ("passed", "", None)


@pytest.mark.parametrize(("layer", "tensor"), [
    (lambda: GRULayer("output"), "output"),
    (lambda: GRULayer("h_n"), "h_n"),
    (lambda: LSTMLayer("c_n"), "c_n"),
])
def test_a_layer_that_differs_from_its_cell_in_one_tensor_fails_on_it(layer, tensor: str) -> None:
    layer = layer()
    result = cell_result(layer, layer.cell)
    assert result.status == "failed"
    evidence = result.evidence
    assert (evidence.kind, evidence.tensor, evidence.detail, evidence.contract) == (
        "value", tensor, WHY, "cell_equivalence")
    rtol, atol = evidence.tolerance
    assert evidence.difference == pytest.approx(abs(evidence.actual - evidence.expected))
    assert evidence.difference > atol + rtol * abs(evidence.expected)
    assert result.detail.startswith(f"{WHY}: {tensor}[")


@pytest.mark.parametrize(("layer", "reason"), [
    (lambda: nn.GRU(4, 3, num_layers=2),
     "GRU(4, 3, num_layers=2) is not one layer in one direction: a cell unrolls one"),
    (lambda: nn.GRU(4, 3, bidirectional=True),
     "GRU(4, 3, bidirectional=True) is not one layer in one direction: a cell unrolls one"),
    (lambda: nn.GRUCell(4, 3),
     "GRUCell(4, 3) is not one layer in one direction: a cell unrolls one"),
])
def test_what_a_cell_cannot_unroll_is_not_applicable(layer, reason: str) -> None:
    torch.manual_seed(0)
    layer, cell = layer(), nn.GRUCell(4, 3)
    result = cell_result(layer, cell)
    assert (result.status, result.detail, result.evidence) == ("not applicable", reason, None)


def test_the_probe_without_a_cell_is_not_applicable() -> None:
    layer = GRULayer()
    ctx = Context(layer, RNNSpec("GRU", 4, 3), torch.device("cpu"), torch.float32)
    with pytest.raises(NotApplicable) as caught:
        CELL_CONTRACT.probe(ctx)
    assert str(caught.value) == "no cell given: verify_rnn(layer, cell=...)"


def test_contract_doc_is_the_probe_docstring_on_one_line() -> None:
    assert CELL_CONTRACT.doc.startswith(
        "The layer equals its cell unrolled over time (the cell given as ``verify_rnn(layer, cell=...)``, "
        "typically the cell the layer's loop calls): output and final states, with and without h_0 ")
    for contract in (*CONTRACTS, CELL_CONTRACT):
        assert contract.doc == " ".join(contract.probe.__doc__.split()) != ""


def test_contract_doc_of_a_probe_without_a_docstring_is_empty() -> None:
    assert Contract("bare", lambda ctx: None).doc == ""
