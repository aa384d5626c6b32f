"""The correct half of the zoo: modules of different construction that must pass every contract.

``torch_names=True`` marks modules whose state_dict loads into the torch layer their spec
describes: for them the ``reference`` contract must have run and passed. Modules are left in
training mode (the default of nn.Module) so the zoo also proves verify_rnn probes in eval mode.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rnn_contracts import RNNSpec

from .loops import CellLoop, TorchLoop, ZooEntry

F64 = torch.float64


class MinimalCellRNN(nn.Module):
    """What many people write first: an RNNCell in a loop, no spec attributes, no packing."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.step = nn.RNNCell(input_size, hidden_size, nonlinearity="relu")

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = x.new_zeros(x.shape[1], self.step.hidden_size) if hx is None else hx[0]
        outs = []
        for x_t in x:
            h = self.step(x_t, h)
            outs.append(h)
        return torch.stack(outs), h.unsqueeze(0)


class Encoder(nn.Module):
    """A torch layer wrapped in an encoder (state_dict keys gain an 'rnn.' prefix)."""

    def __init__(self, rnn: nn.RNNBase) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        return self.rnn(x, hx)


def _seeded(seed: int, make: Any) -> Any:
    """Build under another seed (ZooEntry.build has already forked the RNG)."""
    torch.manual_seed(seed)
    return make()


def _torch(about: str, make: Any, id: str) -> ZooEntry:
    return ZooEntry(id, make, about, torch_names=True)


CORRECT: tuple[ZooEntry, ...] = (
    _torch("torch.nn.RNN with every default", lambda: nn.RNN(4, 6), "torch_rnn"),
    _torch("torch.nn.RNN relu, bias=False, batch_first",
           lambda: nn.RNN(4, 6, nonlinearity="relu", bias=False, batch_first=True), "torch_rnn_relu_nobias_bf"),
    _torch("torch.nn.LSTM, 2 layers, bidirectional, batch_first",
           lambda: nn.LSTM(4, 6, num_layers=2, bidirectional=True, batch_first=True), "torch_lstm_2l_bidir_bf"),
    _torch("torch.nn.LSTM, 2 layers, proj_size=3, dropout=0.3 left in training mode",
           lambda: nn.LSTM(4, 6, num_layers=2, proj_size=3, dropout=0.3), "torch_lstm_proj_dropout_train"),
    _torch("torch.nn.GRU, bidirectional", lambda: nn.GRU(4, 6, bidirectional=True), "torch_gru_bidir"),
    _torch("torch.nn.GRU, 3 layers, dropout=0.5 left in training mode",
           lambda: nn.GRU(5, 6, num_layers=3, dropout=0.5), "torch_gru_3l_dropout_train"),
    _torch("torch.nn.LSTM in float64", lambda: nn.LSTM(4, 6, dtype=F64), "torch_lstm_f64"),
    _torch("torch.nn.RNN relu, 2 layers, bidirectional, float64",
           lambda: nn.RNN(4, 6, num_layers=2, nonlinearity="relu", bidirectional=True, dtype=F64),
           "torch_rnn_relu_2l_bidir_f64"),
    # relu with tiny hidden sizes: units inactive on the probe inputs give exact zeros (these
    # three seeds were flagged by differentiability / causality / initial_state before the
    # probes learnt that relu's dead zone is no evidence).
    _torch("torch.nn.RNN relu, hidden 2: dead units break every gradient path back to x[0]",
           lambda: _seeded(0, lambda: nn.RNN(4, 2, nonlinearity="relu")), "torch_rnn_relu_h2_dead_path"),
    _torch("torch.nn.RNN relu, hidden 2, 2 layers, bias=False: the top layer is dead throughout",
           lambda: _seeded(3, lambda: nn.RNN(4, 2, num_layers=2, nonlinearity="relu", bias=False)),
           "torch_rnn_relu_h2_2l_dead_top"),
    _torch("torch.nn.RNN relu, hidden 1: the perturbed step is dead in both runs",
           lambda: _seeded(7, lambda: nn.RNN(4, 1, nonlinearity="relu")), "torch_rnn_relu_h1_dead_step"),
    _torch("hand-written Elman loop with torch's parameter names (packed, unbatched)",
           lambda: TorchLoop("RNN", 4, 6), "loop_rnn"),
    _torch("hand-written LSTM loop, torch's names, bidirectional, batch_first, packed",
           lambda: TorchLoop("LSTM", 4, 6, bidirectional=True, batch_first=True), "loop_lstm_bidir_bf"),
    _torch("hand-written GRU loop, torch's names, 2 layers, dropout=0.3 in training mode, float64",
           lambda: TorchLoop("GRU", 4, 6, num_layers=2, dropout=0.3, dtype=F64), "loop_gru_2l_dropout_f64"),
    _torch("hand-written relu RNN loop, torch's names, 2 layers, bidirectional, bias=False",
           lambda: TorchLoop("RNN", 4, 6, num_layers=2, bidirectional=True, bias=False, nonlinearity="relu"),
           "loop_rnn_relu_2l_bidir_nobias"),
    ZooEntry("cell_lstm_2l", lambda: CellLoop("LSTM", 4, 6, num_layers=2),
             "stacked nn.LSTMCell loop (parameter names cells.0.weight_ih, ...)"),
    ZooEntry("cell_gru_bidir_bf", lambda: CellLoop("GRU", 4, 6, bidirectional=True, batch_first=True),
             "nn.GRUCell loop, bidirectional, batch_first, packed"),
    ZooEntry("cell_rnn_f64", lambda: CellLoop("RNN", 4, 6, num_layers=2, dropout=0.2, dtype=F64),
             "nn.RNNCell loop, 2 layers with dropout in training mode, float64"),
    ZooEntry("minimal_rnncell_explicit_spec", lambda: MinimalCellRNN(4, 6),
             "a bare RNNCell loop without spec attributes, checked against an explicit spec",
             spec=RNNSpec("RNN", 4, 6, nonlinearity="relu")),
    ZooEntry("encoder_wrapping_gru", lambda: Encoder(nn.GRU(4, 6, batch_first=True)),
             "torch.nn.GRU inside an encoder module (state_dict keys 'rnn.*'), explicit spec",
             spec=RNNSpec("GRU", 4, 6, batch_first=True, packed=True, unbatched=True)),
)
