"""IndRNN (Li et al. 2018, "Independently Recurrent Neural Network"):
h_t = relu(W x_t + u ⊙ h_{t-1} + b), with an elementwise recurrent weight u (one scalar per
unit, kept in [0, 1) here so the recurrence cannot explode).

Batch-first, hx = h_0 of shape (1, batch, hidden), as torch.nn.RNN(batch_first=True). Its
parameters are ``input_weights.weight``, ``input_weights.bias`` and ``recurrent_weight``: the
(hidden,) recurrent weight has no place in torch.nn.RNN, whose weight_hh_l0 is (hidden, hidden).

The broken variant accepts hx for API compatibility but always starts from zeros (written for
training from scratch on independent sequences): a given h_0 changes nothing.
"""
from __future__ import annotations

import torch
from torch import nn

from .common import seeded


class IndRNN(nn.Module):
    batch_first = True

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.input_weights = nn.Linear(input_size, hidden_size)
        self.recurrent_weight = nn.Parameter(torch.rand(hidden_size))

    def initial_hidden(self, x: torch.Tensor, hx: torch.Tensor | None) -> torch.Tensor:
        return x.new_zeros(x.shape[0], self.hidden_size) if hx is None else hx[0]

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None):
        h = self.initial_hidden(x, hx)
        from_input = self.input_weights(x)  # (batch, seq, hidden)
        outputs = []
        for t in range(x.shape[1]):
            h = torch.relu(from_input[:, t] + self.recurrent_weight * h)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h.unsqueeze(0)


class IndRNNFromZeros(IndRNN):
    def initial_hidden(self, x: torch.Tensor, hx: torch.Tensor | None) -> torch.Tensor:
        return x.new_zeros(x.shape[0], self.hidden_size)  # the bug: hx is ignored


def indrnn() -> IndRNN:
    return seeded(12, lambda: IndRNN(4, 6))


def indrnn_ignores_h0() -> IndRNNFromZeros:
    return seeded(12, lambda: IndRNNFromZeros(4, 6))
