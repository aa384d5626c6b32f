"""An observed GRU, as quantization calibration writes it: an observer records the running min and
max of the layer's inputs in buffers (``input_observer.min_val`` / ``max_val``, as
torch.ao.quantization's MinMaxObserver names them) on every forward call, in eval mode too: that
is calibration. The GRU itself is torch's (nn.GRU, so PackedSequence and unbatched input work).

The module updates its buffers by design: declared (``RNNSpec(updates_buffers=True)``) verify_rnn
restores them and reports the update; undeclared, ``inputs_untouched`` fails naming the buffer.
Either way the module's buffers are as they were after verify_rnn.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from .common import seeded


class MinMaxObserver(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("min_val", torch.tensor(float("inf")))
        self.register_buffer("max_val", torch.tensor(float("-inf")))

    @torch.no_grad()
    def forward(self, v: torch.Tensor) -> torch.Tensor:
        self.min_val.copy_(torch.minimum(self.min_val, v.detach().amin()))
        self.max_val.copy_(torch.maximum(self.max_val, v.detach().amax()))
        return v


class ObservedGRU(nn.Module):
    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.input_observer = MinMaxObserver()
        self.gru = nn.GRU(input_size, hidden_size)

    def forward(self, x, hx=None):
        self.input_observer(x.data if isinstance(x, PackedSequence) else x)
        return self.gru(x, hx)


def observed_gru() -> ObservedGRU:
    return seeded(15, lambda: ObservedGRU(4, 6))
