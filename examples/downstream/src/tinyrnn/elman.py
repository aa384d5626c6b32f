"""ElmanRNN: one tanh recurrent layer written out step by step, a drop-in for torch.nn.RNN.

    h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)

Inputs and outputs follow torch.nn.RNN with batch_first=False: x is (seq, batch, input_size),
h_0 and h_n are (1, batch, hidden_size). The parameters carry torch.nn.RNN's names, so the
module's state_dict loads into torch.nn.RNN (rnn-contracts' "reference" contract compares them).
The class attributes mode, num_layers, bidirectional, batch_first and nonlinearity are the
configuration rnn-contracts reads with RNNSpec.from_module.

The annotations are rnn-contracts' jaxtyping aliases: documentation that names the axes. They
are never checked on each call here (no @jaxtyped(typechecker=...) decorator: with typeguard 4
that decorator checks nothing, see rnn_contracts.aliases); the contracts are checked by the tests.
"""
import math

import torch
from torch import Tensor, nn

from rnn_contracts import HiddenState, SeqFirstInput, SeqFirstOutput


class ElmanRNN(nn.Module):
    """A single-layer, unidirectional tanh RNN.

    ``truncate_bptt=True`` detaches the state before every step (truncated backpropagation
    through time with a window of one step): training gets cheaper, but no gradient flows back
    through time any more, which breaks the "differentiability" contract of torch.nn.RNN.
    """

    mode = "RNN"
    num_layers = 1
    bidirectional = False
    batch_first = False
    nonlinearity = "tanh"

    def __init__(self, input_size: int, hidden_size: int, *, truncate_bptt: bool = False) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.truncate_bptt = truncate_bptt
        self.weight_ih_l0 = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih_l0 = nn.Parameter(torch.empty(hidden_size))
        self.bias_hh_l0 = nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as torch.nn.RNN initialises."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def forward(
        self, x: SeqFirstInput, hx: HiddenState | None = None
    ) -> tuple[SeqFirstOutput, HiddenState]:
        """Run the recurrence over x (seq, batch, input_size) from h_0 (zeros by default)."""
        h: Tensor = x.new_zeros(x.shape[1], self.hidden_size) if hx is None else hx[0]
        steps = []
        for x_t in x:
            if self.truncate_bptt:
                h = h.detach()
            h = torch.tanh(x_t @ self.weight_ih_l0.T + self.bias_ih_l0
                           + h @ self.weight_hh_l0.T + self.bias_hh_l0)
            steps.append(h)
        return torch.stack(steps), h.unsqueeze(0)
