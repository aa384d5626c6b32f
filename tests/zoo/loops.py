"""Hand-written recurrent layers for the zoo, written from the torch.nn.RNN / LSTM / GRU docs.

``Loop`` is the whole calling convention of torch's layers, time step by time step: seq-first or
batch-first input, unbatched (2-D) input, PackedSequence input (any lengths, sorted or not),
h_0 / (h_0, c_0) defaulting to zeros, stacked layers with dropout between them in training mode,
and a backward direction that reads each sequence from its last valid step. Subclasses supply
``cell`` (one step of one layer and direction).

* ``TorchLoop`` holds torch's own parameter names (weight_ih_l0, bias_hh_l1_reverse, ...) and the
  doc equations, so its state_dict loads into torch.nn.RNN/LSTM/GRU and the ``reference``
  contract applies.
* ``CellLoop`` runs nn.RNNCell / LSTMCell / GRUCell per layer and direction (parameter names
  ``cells.0.weight_ih`` ...): the ``reference`` contract does not apply.

Each faulty module of the zoo is one of these with one realistic mistake, in one overridden hook.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnn_contracts import RNNSpec

State = tuple[torch.Tensor, ...]  # (h,) or, for LSTM, (h, c)
GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


@dataclass(frozen=True)
class ZooEntry:
    """One module of the zoo.

    ``expect``: the contract that must be among the failures (faulty), None for a correct module.
    ``torch_names``: a correct module whose state_dict loads into the torch layer, so the
    ``reference`` contract must have run and passed. ``about``: the real-world mistake or
    construction, with a reference where one exists.
    """

    id: str
    make: Callable[[], Any]
    about: str
    expect: str | None = None
    spec: RNNSpec | None = None
    torch_names: bool = False

    def build(self) -> Any:
        """The module, initialised from seed 0 without touching the caller's global RNG."""
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return self.make()


def flip_padded(xs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of a (seq, batch, ...) tensor within its length; padding stays put."""
    steps = torch.arange(xs.shape[0]).unsqueeze(1)
    n = lengths.unsqueeze(0)
    index = torch.where(steps < n, n - 1 - steps, steps).to(xs.device)
    return xs.gather(0, index.view(*index.shape, 1).expand_as(xs))


class Loop(nn.Module):
    """torch's recurrent calling convention around a per-step ``cell``."""

    packed = True
    unbatched = True

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, *,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, nonlinearity: str = "tanh") -> None:
        super().__init__()
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.nonlinearity = dropout, bidirectional, nonlinearity

    def extra_repr(self) -> str:
        flags = [f"{k}={getattr(self, k)!r}" for k, default in
                 (("num_layers", 1), ("bidirectional", False), ("batch_first", False), ("bias", True))
                 if getattr(self, k) != default]
        return ", ".join([self.mode, str(self.input_size), str(self.hidden_size), *flags])

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def layer_input_size(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.hidden_size * self.num_directions

    # -- hooks a faulty module overrides -----------------------------------------------------------
    def cell(self, x_t: torch.Tensor, state: State, layer: int, direction: int) -> State:
        raise NotImplementedError

    def to_seq_first(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(0, 1) if self.batch_first else x

    def from_seq_first(self, out: torch.Tensor) -> torch.Tensor:
        return out.transpose(0, 1) if self.batch_first else out

    def unbatch_in(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1)  # (seq, dim) -> (seq, 1, dim)

    def prepare(self, xs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Seq-first input before the first layer (a hook for input transforms)."""
        return xs

    def flip(self, xs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The backward direction's view of a layer input (and of its output, flipped back)."""
        return flip_padded(xs, lengths)

    def initial(self, hx: Any, batch: int, like: torch.Tensor) -> State:
        """h_0 (and c_0) as (num_layers * D, batch, hidden) tensors; zeros when hx is None."""
        n = 2 if self.mode == "LSTM" else 1
        if hx is None:
            zeros = like.new_zeros(self.num_layers * self.num_directions, batch, self.hidden_size)
            return (zeros,) * n
        return tuple(hx) if n == 2 else (hx,)

    def run_direction(self, xs: torch.Tensor, state: State, mask: torch.Tensor,
                      layer: int, direction: int) -> tuple[torch.Tensor, State]:
        """One layer and direction over seq-first xs; a sequence's state freezes after its end."""
        outs = []
        for t in range(xs.shape[0]):
            new = self.cell(xs[t], state, layer, direction)
            keep = mask[t].unsqueeze(-1)
            state = tuple(torch.where(keep, n, s) for n, s in zip(new, state))
            outs.append(state[0] * keep)  # padded steps output zeros
        return torch.stack(outs), state

    def pack_output(self, out: torch.Tensor, x: PackedSequence, lengths: torch.Tensor) -> Any:
        """The padded output (original batch order) as a PackedSequence laid out like x."""
        order = x.sorted_indices if x.sorted_indices is not None else torch.arange(out.shape[1])
        data = pack_padded_sequence(out.index_select(1, order.to(out.device)), lengths[order.cpu()]).data
        return PackedSequence(data, x.batch_sizes, x.sorted_indices, x.unsorted_indices)

    # -- the calling convention ---------------------------------------------------------------------
    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        is_packed = isinstance(x, PackedSequence)
        is_unbatched = not is_packed and x.dim() == 2
        if is_packed:
            xs, lengths = pad_packed_sequence(x)  # original batch order
        else:
            xs = self.unbatch_in(x) if is_unbatched else self.to_seq_first(x)
            lengths = torch.full((xs.shape[1],), xs.shape[0], dtype=torch.int64)
        if is_unbatched and hx is not None:
            hx = tuple(h.unsqueeze(1) for h in hx) if self.mode == "LSTM" else hx.unsqueeze(1)
        state0 = self.initial(hx, xs.shape[1], xs)
        out, finals = self.layers(self.prepare(xs, lengths), state0, lengths)
        state = finals if self.mode == "LSTM" else finals[0]
        if is_packed:
            return self.pack_output(out, x, lengths), state
        if is_unbatched:
            state = tuple(s.squeeze(1) for s in state) if self.mode == "LSTM" else state.squeeze(1)
            return out.squeeze(1), state
        return self.from_seq_first(out), state

    def layers(self, xs: torch.Tensor, state0: State, lengths: torch.Tensor) -> tuple[torch.Tensor, State]:
        mask = (torch.arange(xs.shape[0]).unsqueeze(1) < lengths.unsqueeze(0)).to(xs.device)
        finals: list[State] = []
        inp = xs
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                k = layer * self.num_directions + d
                start = tuple(s[k] for s in state0)
                seq = inp if d == 0 else self.flip(inp, lengths)
                out, final = self.run_direction(seq, start, mask, layer, d)
                outs.append(out if d == 0 else self.flip(out, lengths))
                finals.append(final)
            inp = torch.cat(outs, -1)
            if self.dropout and layer < self.num_layers - 1:
                inp = F.dropout(inp, self.dropout, self.training)
        return inp, tuple(torch.stack([f[i] for f in finals]) for i in range(len(state0)))


class TorchLoop(Loop):
    """A Python loop with torch's parameter names and equations (the reference contract applies)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, *,
                 dtype: torch.dtype | None = None, **kwargs: Any) -> None:
        super().__init__(mode, input_size, hidden_size, num_layers, **kwargs)
        gates, k = GATES[mode] * hidden_size, 1.0 / math.sqrt(hidden_size)
        for layer in range(num_layers):
            for d in range(self.num_directions):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                shapes = {"weight_ih": (gates, self.layer_input_size(layer)), "weight_hh": (gates, hidden_size)}
                if self.bias:
                    shapes.update(bias_ih=(gates,), bias_hh=(gates,))
                for name, shape in shapes.items():
                    p = nn.Parameter(torch.empty(shape, dtype=dtype).uniform_(-k, k))
                    self.register_parameter(name + sfx, p)

    def weights(self, layer: int, direction: int) -> tuple[torch.Tensor, ...]:
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if self.bias else ("weight_ih", "weight_hh")
        return tuple(getattr(self, n + sfx) for n in names)

    def linear(self, x_t: torch.Tensor, h: torch.Tensor, layer: int, direction: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(x W_ih^T + b_ih, h W_hh^T + b_hh)."""
        w = self.weights(layer, direction)
        b_ih, b_hh = (w[2], w[3]) if self.bias else (None, None)
        return F.linear(x_t, w[0], b_ih), F.linear(h, w[1], b_hh)

    def cell(self, x_t: torch.Tensor, state: State, layer: int, direction: int) -> State:
        gi, gh = self.linear(x_t, state[0], layer, direction)
        if self.mode == "RNN":
            act = torch.tanh if self.nonlinearity == "tanh" else torch.relu
            return (act(gi + gh),)
        if self.mode == "LSTM":
            i, f, g, o = (gi + gh).chunk(4, -1)
            c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
            return torch.sigmoid(o) * torch.tanh(c), c
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return ((1 - z) * n + z * state[0],)


class CellLoop(Loop):
    """Stacked nn.RNNCell / LSTMCell / GRUCell, one per layer and direction (other parameter names)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, *,
                 dtype: torch.dtype | None = None, **kwargs: Any) -> None:
        super().__init__(mode, input_size, hidden_size, num_layers, **kwargs)
        cells = []
        for layer in range(num_layers):
            for _ in range(self.num_directions):
                size = self.layer_input_size(layer)
                if mode == "RNN":
                    cell = nn.RNNCell(size, hidden_size, self.bias, self.nonlinearity, dtype=dtype)
                else:
                    cell = getattr(nn, f"{mode}Cell")(size, hidden_size, self.bias, dtype=dtype)
                cells.append(cell)
        self.cells = nn.ModuleList(cells)

    def cell(self, x_t: torch.Tensor, state: State, layer: int, direction: int) -> State:
        cell = self.cells[layer * self.num_directions + direction]
        if self.mode == "LSTM":
            return cell(x_t, state)
        return (cell(x_t, state[0]),)
