"""A GRU cell as the common tutorials write it: ``cell(x_t, h) -> h`` with
``x2h = nn.Linear(input_size, 3 * hidden_size)`` and ``h2h = nn.Linear(hidden_size, 3 * hidden_size)``,
gates in torch.nn.GRU's order and equations (r, z, n; n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))):

    h' = (1 - z) ⊙ n + z ⊙ h

Used with ``RNNSpec(convention="cell")``: the kit unrolls it over time. The broken variant is the
tutorials' frequent slip, the update gate the other way round, ``h' = (1 - z) ⊙ h + z ⊙ n``: a
GRU of its own kind, which every structural contract accepts and only a comparison with
torch.nn.GRU's values catches.
"""
from __future__ import annotations

import torch
from torch import nn

from .common import seeded


class GRUCell(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.x2h = nn.Linear(input_size, 3 * hidden_size, bias=bias)
        self.h2h = nn.Linear(hidden_size, 3 * hidden_size, bias=bias)

    def update(self, z: torch.Tensor, n: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return (1 - z) * n + z * h

    def forward(self, x: torch.Tensor, hidden: torch.Tensor | None = None) -> torch.Tensor:
        if hidden is None:
            hidden = x.new_zeros(x.shape[0], self.hidden_size)
        i_r, i_z, i_n = self.x2h(x).chunk(3, dim=1)
        h_r, h_z, h_n = self.h2h(hidden).chunk(3, dim=1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return self.update(z, n, hidden)


class SwappedGateGRUCell(GRUCell):
    def update(self, z: torch.Tensor, n: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return (1 - z) * h + z * n  # the slip: z and 1 - z swapped


def gru_cell() -> GRUCell:
    return seeded(16, lambda: GRUCell(4, 6))


def gru_cell_swapped_gate() -> SwappedGateGRUCell:
    return seeded(16, lambda: SwappedGateGRUCell(4, 6))
