"""minGRU computed by a parallel scan in log space (Feng et al. 2024, "Were RNNs All We Needed?").

    z_t = sigmoid(Linear_z(x_t)),  h~_t = g(Linear_h(x_t)),  h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h~_t

with g(v) = v + 0.5 for v >= 0, sigmoid(v) otherwise (so h~ > 0). Neither gate reads h_{t-1}, so
h_t = A_t ⊙ h_0 + B_t with A_t = prod_{s<=t} (1 - z_s) and B_t the recurrence run from zero; both
come from cumulative sums over time (cumsum / logcumsumexp), never a Python loop over steps.
Batch-first, hx = h_0 of shape (1, batch, hidden); the output is h itself.

The correct module scans the positive part (B_t) in log space and adds h_0's share linearly, so
any sign of h_0 works. The broken variant is the scan as community ports of the paper's
reference code write it: h_0 enters the scan as ``h_0.log()``, which is NaN wherever h_0 < 0
(half of a random h_0), and the NaN spreads over every step of that unit.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import seeded


def log_g(v: torch.Tensor) -> torch.Tensor:
    """log(g(v)): log(v + 0.5) for v >= 0, log(sigmoid(v)) = -softplus(-v) otherwise."""
    return torch.where(v >= 0, torch.log(F.relu(v) + 0.5), -F.softplus(-v))


def parallel_scan_log(log_coeffs: torch.Tensor, log_values: torch.Tensor) -> torch.Tensor:
    """h_t = a_t h_{t-1} + b_t over dim 1 (Heinsen 2023), from log a (batch, T, H) and log b
    (batch, T + 1, H) whose first step is log h_0; returns h_1..h_T."""
    a_star = F.pad(torch.cumsum(log_coeffs, dim=1), (0, 0, 1, 0))
    log_h = a_star + torch.logcumsumexp(log_values - a_star, dim=1)
    return torch.exp(log_h)[:, 1:]


class MinGRU(nn.Module):
    batch_first = True

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.linear_z = nn.Linear(input_size, hidden_size)
        self.linear_h = nn.Linear(input_size, hidden_size)

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None):
        k = self.linear_z(x)
        log_coeffs = -F.softplus(k)   # log(1 - z)
        log_z = -F.softplus(-k)       # log z
        log_values = log_z + log_g(self.linear_h(x))
        h = self.scan(log_coeffs, log_values, None if hx is None else hx[0])
        return h, h[:, -1].unsqueeze(0)

    def scan(self, log_coeffs: torch.Tensor, log_values: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
        a_star = torch.cumsum(log_coeffs, dim=1)
        from_zero = torch.exp(a_star + torch.logcumsumexp(log_values - a_star, dim=1))
        if h0 is None:
            return from_zero
        return from_zero + torch.exp(a_star) * h0.unsqueeze(1)


class LogH0MinGRU(MinGRU):
    def scan(self, log_coeffs: torch.Tensor, log_values: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
        if h0 is None:
            return parallel_scan_log(log_coeffs, F.pad(log_values, (0, 0, 1, 0), value=float("-inf")))
        return parallel_scan_log(log_coeffs, torch.cat([h0.unsqueeze(1).log(), log_values], dim=1))


def min_gru() -> MinGRU:
    return seeded(13, lambda: MinGRU(4, 6))


def min_gru_log_h0() -> LogH0MinGRU:
    return seeded(13, lambda: LogH0MinGRU(4, 6))
