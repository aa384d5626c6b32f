"""Weight-drop LSTM: DropConnect on the hidden-to-hidden weight (Wan et al. 2013, as used by
AWD-LSTM, Merity et al. 2017, "Regularizing and Optimizing LSTM Language Models").

The module keeps the raw recurrent weight as its own parameter (``weight_hh_raw``) and, in training
mode only, drops entries of it once per forward call; the same dropped weight serves every time
step. Equations of torch.nn.LSTM (gates i, f, g, o). Seq-first, hx = (h_0, c_0) of shape
(1, batch, hidden).

The broken variant is the "variational" form as it is often written: a mask over the rows of the
weight (one per gate unit) drawn with ``F.dropout(..., training=True)``, so a new mask is sampled
on every call in eval mode too (Monte-Carlo DropConnect left on at inference): two eval-mode calls
on the same input disagree.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .common import seeded


class WeightDropLSTM(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, weight_dropout: float = 0.5) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_dropout = weight_dropout
        bound = 1.0 / math.sqrt(hidden_size)

        def uniform(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))

        self.weight_ih = uniform(4 * hidden_size, input_size)
        self.weight_hh_raw = uniform(4 * hidden_size, hidden_size)
        self.bias_ih = uniform(4 * hidden_size)
        self.bias_hh = uniform(4 * hidden_size)

    def recurrent_weight(self) -> torch.Tensor:
        """DropConnect: entries of the raw weight dropped (and the rest rescaled) when training."""
        return F.dropout(self.weight_hh_raw, self.weight_dropout, training=self.training)

    def forward(self, x: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None):
        if hx is None:
            zeros = x.new_zeros(x.shape[1], self.hidden_size)
            h, c = zeros, zeros
        else:
            h, c = hx[0][0], hx[1][0]
        w_hh = self.recurrent_weight()
        from_input = F.linear(x, self.weight_ih, self.bias_ih)  # every step at once
        outputs = []
        for t in range(x.shape[0]):
            gates = from_input[t] + F.linear(h, w_hh, self.bias_hh)
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs), (h.unsqueeze(0), c.unsqueeze(0))


class VariationalWeightDropLSTM(WeightDropLSTM):
    """One mask per row of the recurrent weight, drawn on every call, in eval mode too."""

    def recurrent_weight(self) -> torch.Tensor:
        mask = self.weight_hh_raw.new_ones(self.weight_hh_raw.shape[0], 1)
        mask = F.dropout(mask, self.weight_dropout, training=True)  # the bug: always on
        return mask * self.weight_hh_raw


def weight_drop_lstm() -> WeightDropLSTM:
    return seeded(11, lambda: WeightDropLSTM(4, 6))


def variational_weight_drop_lstm() -> VariationalWeightDropLSTM:
    return seeded(11, lambda: VariationalWeightDropLSTM(4, 6))
