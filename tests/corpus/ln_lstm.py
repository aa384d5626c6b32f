"""Layer-normalized LSTM (Ba, Kiros and Hinton 2016, "Layer Normalization", sec. 3.1 and A):

    gates = LN(W_ih x_t) + LN(W_hh h_{t-1}) + b        (i, f, g, o as in torch.nn.LSTM)
    c_t = sigmoid(f) ⊙ c_{t-1} + sigmoid(i) ⊙ tanh(g),  h_t = sigmoid(o) ⊙ tanh(LN(c_t))

Seq-first, hx = (h_0, c_0) of shape (1, batch, hidden). The module carries torch's attribute names
(mode, input_size, hidden_size), so it needs no spec; its LayerNorm parameters have no place in
torch.nn.LSTM.

The broken variant normalizes each gate pre-activation over the batch axis (dim 0 of a
(batch, features) tensor) instead of the features: a batch norm in disguise, so one sequence's
values change every other sequence's result.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import seeded


class LayerNormLSTM(nn.Module):
    mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.ih = nn.Linear(input_size, 4 * hidden_size, bias=False)
        self.hh = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(4 * hidden_size))
        self.ln_ih = nn.LayerNorm(4 * hidden_size)
        self.ln_hh = nn.LayerNorm(4 * hidden_size)
        self.ln_c = nn.LayerNorm(hidden_size)

    def norm(self, ln: nn.LayerNorm, v: torch.Tensor) -> torch.Tensor:
        return ln(v)

    def forward(self, x: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None):
        if hx is None:
            h = c = x.new_zeros(x.shape[1], self.hidden_size)
        else:
            h, c = hx[0][0], hx[1][0]
        outputs = []
        for x_t in x:
            gates = self.norm(self.ln_ih, self.ih(x_t)) + self.norm(self.ln_hh, self.hh(h)) + self.bias
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(self.norm(self.ln_c, c))
            outputs.append(h)
        return torch.stack(outputs), (h.unsqueeze(0), c.unsqueeze(0))


class BatchAxisNormLSTM(LayerNormLSTM):
    def norm(self, ln: nn.LayerNorm, v: torch.Tensor) -> torch.Tensor:
        mean = v.mean(dim=0, keepdim=True)  # the bug: dim 0 is the batch
        var = v.var(dim=0, keepdim=True, unbiased=False)
        return (v - mean) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias


def ln_lstm() -> LayerNormLSTM:
    return seeded(14, lambda: LayerNormLSTM(4, 6))


def ln_lstm_batch_axis() -> BatchAxisNormLSTM:
    return seeded(14, lambda: BatchAxisNormLSTM(4, 6))
