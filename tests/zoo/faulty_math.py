"""Faulty modules, part 3: the cell's equations, and the hygiene of a forward call."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .loops import State, TorchLoop, ZooEntry


class SigmoidRNN(TorchLoop):
    """An Elman RNN with sigmoid where torch's RNN uses tanh."""

    def cell(self, x_t: torch.Tensor, state: State, layer: int, direction: int) -> State:
        gi, gh = self.linear(x_t, state[0], layer, direction)
        return (torch.sigmoid(gi + gh),)


class LSTMGatesIF(TorchLoop):
    """Chunks the LSTM gates as (f, i, g, o); torch's weight_ih_l0 rows are (i, f, g, o)."""

    def cell(self, x_t: torch.Tensor, state: State, layer: int, direction: int) -> State:
        gi, gh = self.linear(x_t, state[0], layer, direction)
        f, i, g, o = (gi + gh).chunk(4, -1)
        c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class GRUResetBefore(TorchLoop):
    """The paper's GRU: the reset gate scales h before W_hn, torch's scales (W_hn h + b_hn)."""

    def cell(self, x_t: torch.Tensor, state: State, layer: int, direction: int) -> State:
        w_ih, w_hh, b_ih, b_hh = self.weights(layer, direction)
        h = state[0]
        i_r, i_z, i_n = F.linear(x_t, w_ih, b_ih).chunk(3, -1)
        (w_hr, w_hz, w_hn), (b_hr, b_hz, b_hn) = w_hh.chunk(3, 0), b_hh.chunk(3, 0)
        r = torch.sigmoid(i_r + F.linear(h, w_hr, b_hr))
        z = torch.sigmoid(i_z + F.linear(h, w_hz, b_hz))
        n = torch.tanh(i_n + F.linear(r * h, w_hn, b_hn))
        return ((1 - z) * n + z * h,)


class GRUUpdateSwapped(TorchLoop):
    """h' = z * n + (1 - z) * h: the other papers' update convention with torch's weights."""

    def cell(self, x_t: torch.Tensor, state: State, layer: int, direction: int) -> State:
        gi, gh = self.linear(x_t, state[0], layer, direction)
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (z * n + (1 - z) * state[0],)


class ForgetsBiasHh(TorchLoop):
    """Declares bias_hh_l0 but computes tanh(x W_ih^T + b_ih + h W_hh^T)."""

    def cell(self, x_t: torch.Tensor, state: State, layer: int, direction: int) -> State:
        w_ih, w_hh, b_ih, _ = self.weights(layer, direction)
        return (torch.tanh(F.linear(x_t, w_ih, b_ih) + F.linear(state[0], w_hh)),)


class AlwaysDropout(TorchLoop):
    """F.dropout(output, 0.2, training=True): dropout that ignores module.eval()."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, state = super().forward(x, hx)
        if isinstance(out, torch.Tensor):
            out = F.dropout(out, 0.2, training=True)
        return out, state


class InputNoise(TorchLoop):
    """Adds Gaussian noise to the input in every mode (noise injection not gated by training)."""

    def prepare(self, xs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return xs + 0.05 * torch.randn_like(xs)


class KeepsHidden(TorchLoop):
    """Stateful: remembers h_n and uses it as h_0 of the next call when none is given."""

    def initial(self, hx: Any, batch: int, like: torch.Tensor) -> State:
        last = getattr(self, "_last", None)
        if hx is None and last is not None and last.shape[1] == batch:
            hx = last
        return super().initial(hx, batch, like)

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, h = super().forward(x, hx)
        self._last = h.detach() if h.dim() == 3 else None
        return out, h


class DetachEveryStep(TorchLoop):
    """h = cell(x_t, h.detach()): every step's output keeps its grad, nothing flows through time."""

    def cell(self, x_t: torch.Tensor, state: State, layer: int, direction: int) -> State:
        return super().cell(x_t, tuple(s.detach() for s in state), layer, direction)


class DetachesOneState(TorchLoop):
    """An LSTM that detaches one of its two states at each step (``c = c.detach()`` where a
    truncated-BPTT change went in): the other still carries x[0]'s gradient to the last step."""

    def __init__(self, *args: Any, state: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.detached = state

    def cell(self, x_t: torch.Tensor, state: State, layer: int, direction: int) -> State:
        h, c = state
        h, c = (h.detach(), c) if self.detached == "h" else (h, c.detach())
        return super().cell(x_t, (h, c), layer, direction)


class BackwardDirectionDetaches(TorchLoop):
    """Detaches the state at each step of the backward direction only (its loop written apart
    from the forward one): the forward direction's gradient through time is intact."""

    def cell(self, x_t: torch.Tensor, state: State, layer: int, direction: int) -> State:
        return super().cell(x_t, tuple(s.detach() for s in state) if direction else state, layer, direction)


class DetachedState(TorchLoop):
    """Returns h_n.detach() (meant for the next batch, returned to the caller as well)."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, (h, c) = super().forward(x, hx)
        return out, (h.detach(), c.detach())


class ClampsInputInPlace(TorchLoop):
    """Clips outliers with x.clamp_(-1, 1): the caller's tensor is changed."""

    def prepare(self, xs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return xs.clamp_(-1.0, 1.0)


class WritesIntoH0(TorchLoop):
    """Reuses the caller's h_0 as the h_n buffer (hx.copy_(h_n)) to save an allocation."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, h = super().forward(x, hx)
        if hx is None:
            return out, h
        with torch.no_grad():
            hx.copy_(h)
        return out, hx


ENTRIES = (
    ZooEntry("rnn_sigmoid", lambda: SigmoidRNN("RNN", 4, 6), expect="reference",
             about="sigmoid instead of tanh in an Elman cell with torch's parameter names"),
    ZooEntry("lstm_gates_i_f_swapped", lambda: LSTMGatesIF("LSTM", 4, 6), expect="reference",
             about="LSTM gates chunked (f, i, g, o); torch lays weight_ih rows out as (i, f, g, o), "
                   "so weights ported from torch compute something else"),
    ZooEntry("gru_reset_before_matmul", lambda: GRUResetBefore("GRU", 4, 6), expect="reference",
             about="the GRU paper's n = tanh(W_in x + W_hn (r * h)) (Cho et al. 2014; Keras "
                   "reset_after=False); torch computes r * (W_hn h + b_hn)"),
    ZooEntry("gru_update_swapped", lambda: GRUUpdateSwapped("GRU", 4, 6, batch_first=True),
             expect="reference",
             about="h' = z * n + (1 - z) * h (the convention of Chung et al. 2014 and many blog "
                   "posts); torch's is (1 - z) * n + z * h"),
    ZooEntry("forgets_bias_hh", lambda: ForgetsBiasHh("RNN", 4, 6), expect="differentiability",
             about="declares bias_hh_l0 but leaves it out of the equation: a dead parameter"),
    ZooEntry("dropout_in_eval", lambda: AlwaysDropout("LSTM", 4, 6), expect="determinism",
             about="F.dropout(output, p, training=True): dropout stays on after model.eval()"),
    ZooEntry("input_noise_in_eval", lambda: InputNoise("GRU", 4, 6), expect="determinism",
             about="Gaussian noise injection on the input not gated by self.training"),
    ZooEntry("keeps_hidden_between_calls", lambda: KeepsHidden("RNN", 4, 6), expect="determinism",
             about="stateful tutorial layer: self.hidden from the previous call becomes the next "
                   "call's h_0 when none is given"),
    ZooEntry("detach_every_step", lambda: DetachEveryStep("GRU", 4, 6), expect="differentiability",
             about="h = h.detach() inside the time loop (truncated BPTT gone wrong): no gradient "
                   "flows through time"),
    ZooEntry("relu_detach_every_step",
             lambda: DetachEveryStep("RNN", 4, 6, nonlinearity="relu", batch_first=True),
             expect="differentiability",
             about="the same detach in a relu loop: relu's exact zeros must not excuse a cut graph"),
    ZooEntry("detaches_c_every_step", lambda: DetachesOneState("LSTM", 4, 6, state="c"),
             expect="differentiability",
             about="c = c.detach() at each step of an LSTM: h still carries x[0]'s gradient to the end, "
                   "and it passed every contract until the gradient to c_0 was followed (a user-view review)"),
    ZooEntry("detaches_h_every_step", lambda: DetachesOneState("LSTM", 4, 6, num_layers=2, state="h"),
             expect="differentiability",
             about="h = h.detach() at each step of a two-layer LSTM, c left alone: the same, through h_0"),
    ZooEntry("backward_direction_detaches", lambda: BackwardDirectionDetaches("GRU", 4, 6, bidirectional=True),
             expect="differentiability",
             about="the backward direction's loop detaches its state at each step: only the forward "
                   "direction's gradient through time was followed, and it passed (a review)"),
    ZooEntry("detached_state", lambda: DetachedState("LSTM", 4, 6), expect="differentiability",
             about="returns (h_n.detach(), c_n.detach()): a decoder fed h_n cannot train the encoder"),
    ZooEntry("clamps_input_in_place", lambda: ClampsInputInPlace("RNN", 4, 6), expect="inputs_untouched",
             about="x.clamp_(-1, 1) to clip outliers changes the caller's input tensor"),
    ZooEntry("writes_into_h0", lambda: WritesIntoH0("GRU", 4, 6), expect="inputs_untouched",
             about="hx.copy_(h_n) reuses the caller's h_0 as the output buffer"),
)
