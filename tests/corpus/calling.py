"""Two calling conventions people write that differ from torch's ``module(x, hx=None) -> (output,
state)``, declared in the spec, with no adapter:

* ``GRUEncoder`` returns only the output (the final state thrown away, as sequence encoders that
  feed a pooling or attention layer do): ``RNNSpec(returns_states=False)``.
* ``OutputOnlyGRU`` is the same habit as a subclass of nn.GRU: torch's parameter names, so the
  ``reference`` contract compares its output with torch.nn.GRU's (it has no states to compare).
* ``ElmanRNN`` has no default for hx (``forward(self, x, hx)``, a stateful-streaming habit):
  ``RNNSpec(requires_hx=True)``. It keeps torch.nn.RNN's parameter names (weight_ih_l0, ...), so
  the ``reference`` contract compares it with torch.nn.RNN.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .common import seeded


class GRUEncoder(nn.Module):
    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, batch_first=True)

    def forward(self, x, hx=None):
        output, _ = self.gru(x, hx)
        return output


class OutputOnlyGRU(nn.GRU):
    def forward(self, x, hx=None):
        return super().forward(x, hx)[0]


class ElmanRNN(nn.Module):
    mode = "RNN"

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        bound = 1.0 / math.sqrt(hidden_size)
        self.weight_ih_l0 = nn.Parameter(torch.empty(hidden_size, input_size).uniform_(-bound, bound))
        self.weight_hh_l0 = nn.Parameter(torch.empty(hidden_size, hidden_size).uniform_(-bound, bound))
        self.bias_ih_l0 = nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound))
        self.bias_hh_l0 = nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, hx: torch.Tensor):
        h = hx[0]
        outputs = []
        for x_t in x:
            h = torch.tanh(x_t @ self.weight_ih_l0.T + self.bias_ih_l0 + h @ self.weight_hh_l0.T + self.bias_hh_l0)
            outputs.append(h)
        return torch.stack(outputs), h.unsqueeze(0)


def gru_encoder() -> GRUEncoder:
    return seeded(17, lambda: GRUEncoder(4, 6))


def output_only_gru() -> OutputOnlyGRU:
    return seeded(19, lambda: OutputOnlyGRU(4, 6))


def elman_rnn() -> ElmanRNN:
    return seeded(18, lambda: ElmanRNN(4, 6))
