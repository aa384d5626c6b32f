"""Faulty modules, part 1: the recurrent state and the structure of a call.

Each class is a correct loop of zoo.loops with one realistic mistake in one overridden hook;
ENTRIES names the contract that must catch it.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from .loops import CellLoop, State, TorchLoop, ZooEntry


def _is_batched_tensor(out: Any) -> bool:
    return isinstance(out, torch.Tensor) and out.dim() == 3


class IgnoresH0(TorchLoop):
    """`h = self.init_hidden(batch)` at the top of forward: a given h_0 is never read."""

    def initial(self, hx: Any, batch: int, like: torch.Tensor) -> State:
        return super().initial(None, batch, like)


class IgnoresH0AtBatch1(TorchLoop):
    """Drops a given h_0 when the batch holds one sequence (a streaming server's single-request
    path that "resets" its state): every batched probe with an h_0 still sees it used."""

    def initial(self, hx: Any, batch: int, like: torch.Tensor) -> State:
        return super().initial(None if batch == 1 else hx, batch, like)


class PackedIgnoresH0(TorchLoop):
    """Its PackedSequence branch starts from zeros whatever h_0 it is given (the branch added
    later, ``self.run(padded)`` without the state); tensors take h_0 as they should."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        return super().forward(x, None if isinstance(x, PackedSequence) else hx)


class PackedH0InSortedOrder(TorchLoop):
    """Reads a PackedSequence's h_0 as if it were in the packed (longest-first) order: a loop
    over the sorted batch that forgot to permute h_0 by ``sorted_indices`` as torch's layers do,
    so sequence j starts from the state given to the sequence sorted j-th."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        if isinstance(x, PackedSequence) and hx is not None and x.unsorted_indices is not None:
            hx = hx.index_select(1, x.unsorted_indices)
        return super().forward(x, hx)


class PackedH0ByTheWrongIndices(TorchLoop):
    """A loop over the packed (sorted) batch that puts h_0 in that order with
    ``unsorted_indices`` where ``sorted_indices`` belongs: the two are the same only when the
    sort is its own inverse."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        if isinstance(x, PackedSequence) and hx is not None and x.sorted_indices is not None:
            wrong = hx.clone()
            wrong[:, x.sorted_indices] = hx[:, x.unsorted_indices]
            hx = wrong
        return super().forward(x, hx)


class FirstSequencesH0ForAll(TorchLoop):
    """Indexes the batch once too often, ``hx[:, 0]`` for ``hx``: sequence 0's h_0 broadcast to
    every sequence of the batch (a user-view review's double index)."""

    def initial(self, hx: Any, batch: int, like: torch.Tensor) -> State:
        return tuple(s[:, :1].expand(-1, batch, -1) for s in super().initial(hx, batch, like))


class IgnoresC0(TorchLoop):
    """Reads h_0 from hx but starts the cell state from zeros."""

    def initial(self, hx: Any, batch: int, like: torch.Tensor) -> State:
        h, c = super().initial(hx, batch, like)
        return h, torch.zeros_like(c)


class LogSpaceH0(TorchLoop):
    """Carries a given h_0 through log space, as parallel-scan min-GRU code does (log h_0, then
    exp after the scan): any negative entry of h_0 becomes NaN."""

    def initial(self, hx: Any, batch: int, like: torch.Tensor) -> State:
        state = super().initial(hx, batch, like)
        return state if hx is None else tuple(torch.exp(torch.log(s)) for s in state)


class LogSpaceDefaultState(TorchLoop):
    """A log-space scan whose default state is the log of zeros: without h_0 the scan starts at
    log(0) = -inf and every output is NaN; a given h_0 (positive or not) is read as it is."""

    def initial(self, hx: Any, batch: int, like: torch.Tensor) -> State:
        state = super().initial(hx, batch, like)
        return tuple(torch.log(s) for s in state) if hx is None else state


class SwapsHnCn(TorchLoop):
    """Returns (output, (c_n, h_n)): the LSTM state pair in the wrong order."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, (h, c) = super().forward(x, hx)
        return out, (c, h)


class HnBatchFirst(TorchLoop):
    """With batch_first=True, also returns h_n batch-first (batch, layers*D, hidden)."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, h = super().forward(x, hx)
        return out, (h.transpose(0, 1) if _is_batched_tensor(out) else h)


class LayersReversed(TorchLoop):
    """Stacks h_n top layer first (a loop that prepends each layer's final state)."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, h = super().forward(x, hx)
        return out, h.flip(0)


class BackwardStateFromLastStep(TorchLoop):
    """Bidirectional: builds h_n from output[-1], so the backward half is the state after ONE step."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, h = super().forward(x, hx)
        if isinstance(out, torch.Tensor):
            h = torch.stack(out[-1].split(self.hidden_size, -1))
        return out, h


class OutputLagsOneStep(TorchLoop):
    """Appends h to the outputs before updating it: output[t] is the state before step t."""

    def run_direction(self, xs: torch.Tensor, state: State, mask: torch.Tensor,
                      layer: int, direction: int) -> tuple[torch.Tensor, State]:
        outs = []
        for t in range(xs.shape[0]):
            keep = mask[t].unsqueeze(-1)
            outs.append(state[0] * keep)
            new = self.cell(xs[t], state, layer, direction)
            state = tuple(torch.where(keep, n, s) for n, s in zip(new, state))
        return torch.stack(outs), state


class StepFeatureFromCallStart(CellLoop):
    """Adds a sinusoidal time-step feature counted from the start of each call."""

    def prepare(self, xs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(xs.shape[0], device=xs.device, dtype=xs.dtype)
        return xs + torch.sin(steps / 2).view(-1, 1, 1)


class BridgesEveryH0(CellLoop):
    """Passes every given h_0 through tanh(W h_0), an encoder->decoder bridge put inside the layer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bridge = nn.Linear(self.hidden_size, self.hidden_size, bias=False)

    def initial(self, hx: Any, batch: int, like: torch.Tensor) -> State:
        if hx is None:
            return super().initial(hx, batch, like)
        return (torch.tanh(self.bridge(hx)),)


class ViewsH0(TorchLoop):
    """Splits h_0 per layer with hx.view(layers * batch, hidden).split(batch)."""

    def initial(self, hx: Any, batch: int, like: torch.Tensor) -> State:
        if hx is None:
            return super().initial(hx, batch, like)
        per_layer = hx.view(self.num_layers * batch, self.hidden_size).split(batch)
        return (torch.stack(per_layer),)


class SqueezesOutput(CellLoop):
    """Returns output.squeeze(), which also drops the batch (or seq) axis when it is 1."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, state = super().forward(x, hx)
        return (out.squeeze() if isinstance(out, torch.Tensor) else out), state


class IgnoresBatchFirst(CellLoop):
    """Declares batch_first=True but reads the input seq-first (no transpose)."""

    def to_seq_first(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def from_seq_first(self, out: torch.Tensor) -> torch.Tensor:
        return out


class UnbatchedAsBatch(TorchLoop):
    """Adds the batch axis of an unbatched input with x.unsqueeze(0) in a seq-first layer."""

    def unbatch_in(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(0)


class UnbatchedInitHiddenFromDim1(TorchLoop):
    """Builds its default h_0 as ``init_hidden(x.size(1))`` before looking at the input's rank: for
    a 2-D (seq, dim) input that is a batch of ``dim`` states, (layers * D, dim, H)."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        if hx is None and isinstance(x, torch.Tensor):
            hx = x.new_zeros(self.num_layers * self.num_directions, x.shape[1], self.hidden_size)
        return super().forward(x, hx)


class UnbatchedH0Mishandled(TorchLoop):
    """The unbatched branch runs the sequence as a batch of one but mishandles a given 2-D h_0:
    ``how="dropped"`` leaves it behind (``self.forward(x.unsqueeze(1))``), ``how="last axis"``
    adds its batch axis last (``hx.unsqueeze(-1)``: (layers * D, H, 1))."""

    def __init__(self, *args: Any, how: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.how = how

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        if isinstance(x, torch.Tensor) and x.dim() == 2 and hx is not None:
            out, h = super().forward(x.unsqueeze(1), None if self.how == "dropped" else hx.unsqueeze(-1))
            return out.squeeze(1), h.squeeze(1)
        return super().forward(x, hx)


ENTRIES = (
    ZooEntry("ignores_h0", lambda: IgnoresH0("GRU", 4, 6), expect="initial_state",
             about="calls init_hidden() inside forward, so a given h_0 is silently ignored "
                   "(the stateless-tutorial pattern)"),
    ZooEntry("ignores_h0_at_batch_1", lambda: IgnoresH0AtBatch1("GRU", 4, 6), expect="initial_state",
             about="drops a given h_0 when the batch holds one sequence: no batched probe with an "
                   "h_0 had batch 1, and it passed every contract (a user-view review)"),
    ZooEntry("packed_ignores_h0", lambda: PackedIgnoresH0("GRU", 4, 6), expect="packed",
             about="the PackedSequence branch drops the h_0 it is given (tensors take it): no packed "
                   "probe passed an h_0, and it passed every contract (a review of the packed probe)"),
    ZooEntry("packed_h0_in_sorted_order", lambda: PackedH0InSortedOrder("GRU", 4, 6), expect="packed",
             about="reads a packed batch's h_0 in sorted (longest-first) order, without torch's "
                   "permutation by sorted_indices"),
    ZooEntry("packed_h0_by_the_wrong_indices", lambda: PackedH0ByTheWrongIndices("GRU", 4, 6), expect="packed",
             about="puts a packed batch's h_0 in sorted order with unsorted_indices: it passed while the "
                   "probe's sort was its own inverse (a review)"),
    ZooEntry("first_sequences_h0_for_all", lambda: FirstSequencesH0ForAll("GRU", 4, 6),
             expect="batch_independence",
             about="sequence 0's h_0 broadcast to every sequence: the batch mixes through it alone, "
                   "and sequence 0's h_0 was zero in every batched probe that compared the others"),
    ZooEntry("ignores_c0", lambda: IgnoresC0("LSTM", 4, 6), expect="initial_state",
             about="LSTM reads h_0 but starts c from zeros: a decoder loses the encoder's cell state"),
    ZooEntry("log_space_h0", lambda: LogSpaceH0("GRU", 4, 6), expect="finite",
             about="takes log(h_0) for a log-space scan: a negative h_0 gives NaN outputs and states "
                   "(the min-GRU reference code's pattern)"),
    ZooEntry("log_space_default_state", lambda: LogSpaceDefaultState("GRU", 4, 6), expect="finite",
             about="a log-space scan whose default state is log(0) = -inf: without h_0 every output "
                   "is NaN, with any h_0 all is finite"),
    ZooEntry("lstm_state_swapped", lambda: SwapsHnCn("LSTM", 4, 6), expect="final_state",
             about="returns (output, (c_n, h_n)) instead of (output, (h_n, c_n))"),
    ZooEntry("h_n_batch_first", lambda: HnBatchFirst("GRU", 4, 6, batch_first=True), expect="shapes",
             about="h_n laid out batch-first like the output; torch keeps h_n (layers*D, batch, H) "
                   "whatever batch_first is (pytorch/pytorch#4145)"),
    ZooEntry("h_n_layers_reversed", lambda: LayersReversed("RNN", 4, 6, num_layers=2), expect="final_state",
             about="h_n stacked top layer first; torch orders h_n.view(layers, D, batch, H) from the "
                   "bottom layer (OpenNMT/OpenNMT-py#61)"),
    ZooEntry("bidir_h_n_from_last_step", lambda: BackwardStateFromLastStep("GRU", 4, 6, bidirectional=True),
             expect="final_state",
             about="h_n taken from output[-1]: the backward half is the state after one step, not "
                   "the summary at output[0] (pytorch/pytorch#3587, yunjey/pytorch-tutorial#149)"),
    ZooEntry("output_lags_one_step", lambda: OutputLagsOneStep("RNN", 4, 6), expect="final_state",
             about="appends h to the outputs before the update (off by one): output[t] is h_{t-1}"),
    ZooEntry("step_feature_from_call_start", lambda: StepFeatureFromCallStart("GRU", 4, 6),
             expect="state_carry",
             about="adds a sin(t) time feature counted from each call's first step: one run is fine, "
                   "a stream fed in chunks restarts the clock"),
    ZooEntry("bridge_on_every_h0", lambda: BridgesEveryH0("RNN", 4, 6), expect="state_carry",
             about="applies an encoder->decoder bridge tanh(W h_0) to every given h_0 inside the layer, "
                   "so carrying h_n into the next chunk transforms it again"),
    ZooEntry("h0_view_needs_contiguous", lambda: ViewsH0("RNN", 4, 6, num_layers=2), expect="initial_state",
             about="hx.view(layers * batch, H) crashes on a non-contiguous h_0 that torch accepts "
                   "(crash case; cuDNN once refused it too: harvardnlp/namedtensor#58)"),
    ZooEntry("squeeze_drops_batch", lambda: SqueezesOutput("LSTM", 4, 6), expect="shapes",
             about="output.squeeze() also drops the batch (or seq) axis when it has size 1"),
    ZooEntry("ignores_batch_first", lambda: IgnoresBatchFirst("RNN", 4, 6, batch_first=True), expect="shapes",
             about="declares batch_first=True but reads (seq, batch, dim): silent when shapes line up "
                   "(huyanxin/phasen#13, Cadene/vqa.pytorch#40; the seed note's nn.RNN(4, 2))"),
    ZooEntry("unbatched_unsqueeze_0", lambda: UnbatchedAsBatch("GRU", 4, 6), expect="unbatched",
             about="adds the batch axis of a 2-D (seq, dim) input with unsqueeze(0) in a seq-first "
                   "layer: every step becomes its own sequence (unbatched input: pytorch/pytorch PR #70442)"),
    ZooEntry("unbatched_init_hidden_from_dim1", lambda: UnbatchedInitHiddenFromDim1("GRU", 4, 6),
             expect="unbatched",
             about="builds the default h_0 as init_hidden(x.size(1)) whatever the input's rank: a 2-D "
                   "(seq, dim) input gets a batch of dim states (right with h_0, and batched)"),
    ZooEntry("unbatched_drops_h0", lambda: UnbatchedH0Mishandled("GRU", 4, 6, how="dropped"), expect="unbatched",
             about="the unbatched branch re-enters forward with x.unsqueeze(1) alone: a given 2-D h_0 "
                   "is dropped and the sequence starts from zeros (right without h_0)"),
    ZooEntry("unbatched_h0_last_axis", lambda: UnbatchedH0Mishandled("GRU", 4, 6, how="last axis"), expect="unbatched",
             about="the unbatched branch adds h_0's batch axis with unsqueeze(-1): (layers * D, H, 1), "
                   "a crash with any given h_0 (right without one)"),
)
