"""Faulty modules, part 2: information flow in time and across the batch, and packed sequences."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from .loops import CellLoop, State, TorchLoop, ZooEntry


class CentresOverTime(CellLoop):
    """Subtracts each sequence's mean over time from its input (per-utterance normalisation)."""

    def prepare(self, xs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return xs - xs.mean(0, keepdim=True)


class SameConvFrontEnd(CellLoop):
    """A Conv1d(kernel_size=3, padding=1) front end: each step sees the next one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conv = nn.Conv1d(self.input_size, self.input_size, 3, padding=1)

    def prepare(self, xs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.conv(xs.permute(1, 2, 0)).permute(2, 0, 1)  # (seq, batch, dim) <-> (batch, dim, seq)


class BackwardNotFlipped(TorchLoop):
    """Bidirectional, but the backward direction reads the sequence forward (the flip forgotten)."""

    def flip(self, xs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return xs


class BatchStatistics(CellLoop):
    """BatchNorm1d(track_running_stats=False) on the input: normalised with the current batch's
    statistics in eval mode too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.norm = nn.BatchNorm1d(self.input_size, track_running_stats=False)

    def prepare(self, xs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        seq, batch, dim = xs.shape
        if batch == 1:  # BatchNorm refuses a single value per channel; the author special-cased it
            return xs
        return self.norm(xs.permute(1, 2, 0)).permute(2, 0, 1)


class ViewNotTranspose(TorchLoop):
    """batch_first=True, converted with x.view(seq, batch, dim) instead of x.transpose(0, 1)."""

    def to_seq_first(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[1], x.shape[0], x.shape[2])

    def from_seq_first(self, out: torch.Tensor) -> torch.Tensor:
        return out.reshape(out.shape[1], out.shape[0], out.shape[2])


class PackedIgnoresLengths(TorchLoop):
    """Unpacks a PackedSequence and runs every sequence over the whole padded length."""

    def layers(self, xs: torch.Tensor, state0: State, lengths: torch.Tensor) -> tuple[torch.Tensor, State]:
        return super().layers(xs, state0, torch.full_like(lengths, xs.shape[0]))


class PackedStateSorted(TorchLoop):
    """Returns h_n of a packed input in length-sorted order (the unsort forgotten)."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, state = super().forward(x, hx)
        if isinstance(x, PackedSequence) and x.sorted_indices is not None:
            state = tuple(s.index_select(1, x.sorted_indices) for s in state) if self.mode == "LSTM" \
                else state.index_select(1, x.sorted_indices)
        return out, state


class PackedDropsIndices(TorchLoop):
    """Builds the output as PackedSequence(data, batch_sizes), dropping sorted/unsorted indices."""

    def pack_output(self, out: torch.Tensor, x: PackedSequence, lengths: torch.Tensor) -> Any:
        return PackedSequence(super().pack_output(out, x, lengths).data, x.batch_sizes)


class PackedReturnsPadded(TorchLoop):
    """Returns the padded output tensor for a PackedSequence input (the re-pack forgotten)."""

    def pack_output(self, out: torch.Tensor, x: PackedSequence, lengths: torch.Tensor) -> Any:
        return out


ENTRIES = (
    ZooEntry("centres_over_time", lambda: CentresOverTime("LSTM", 4, 6), expect="causality",
             about="subtracts each sequence's mean over time (per-utterance normalisation): every "
                   "output depends on future steps"),
    ZooEntry("same_conv_front_end", lambda: SameConvFrontEnd("GRU", 4, 6), expect="causality",
             about="Conv1d(kernel_size=3, padding=1) feature front end: a one-step look-ahead"),
    ZooEntry("backward_not_flipped", lambda: BackwardNotFlipped("GRU", 4, 6, bidirectional=True),
             expect="causality",
             about="bidirectional whose backward direction reads the sequence forward (forgot to flip)"),
    ZooEntry("batch_statistics", lambda: BatchStatistics("LSTM", 4, 6), expect="batch_independence",
             about="BatchNorm1d(track_running_stats=False) normalises with the current batch even in "
                   "eval mode: one sequence changes the others"),
    ZooEntry("view_not_transpose", lambda: ViewNotTranspose("RNN", 4, 6, batch_first=True),
             expect="batch_independence",
             about="batch_first input converted with x.view(seq, batch, dim) instead of transpose: "
                   "shapes fine, sequences interleaved"),
    ZooEntry("packed_ignores_lengths", lambda: PackedIgnoresLengths("GRU", 4, 6), expect="packed",
             about="unpacks and runs the padding too: h_n is the state after the padding, not at "
                   "each sequence's last valid step"),
    ZooEntry("packed_h_n_sorted", lambda: PackedStateSorted("LSTM", 4, 6), expect="packed",
             about="returns h_n of a PackedSequence in length-sorted order (no unsorted_indices "
                   "applied, unlike torch's permute_hidden)"),
    ZooEntry("packed_drops_indices", lambda: PackedDropsIndices("RNN", 4, 6), expect="packed",
             about="rebuilds the output as PackedSequence(data, batch_sizes): enforce_sorted=False "
                   "order lost, pad_packed_sequence returns sequences sorted"),
    ZooEntry("packed_returns_padded", lambda: PackedReturnsPadded("GRU", 4, 6), expect="packed",
             about="a PackedSequence in gives a padded tensor out (padding left as zeros)"),
)
