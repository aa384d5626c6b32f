"""jaxtyping aliases for every tensor of the torch recurrent API.

Names follow the seed's vocabulary: batch, seq, dim (input features), hidden (H_out = proj_size if
proj_size > 0 else hidden_size), cell (H_cell = hidden_size), layers, directions (D). The symbolic
axes ``directions*hidden`` and ``layers*directions`` encode torch's rules for the output features
and the stacked states; they are evaluated against sizes bound earlier in the same
``jaxtyped("context")`` block, which :func:`rnn_contracts.engine.bind_spec` does from an RNNSpec.

Every alias is checked by :mod:`rnn_contracts.engine` (typeguard's ``check_type`` by default), never
by the ``@jaxtyped(typechecker=typechecked)`` decorator form, which typeguard 4 silently turns
into a no-op (patrick-kidger/jaxtyping#344).
"""
from __future__ import annotations

from jaxtyping import Float, Shaped
from torch import Tensor

#: The sizes an RNNSpec fixes; bound first in every check (see engine.bind_spec).
SpecDims = Shaped[Tensor, "layers directions hidden cell dim"]

#: input with batch_first=False (torch's default): (L, N, H_in).
SeqFirstInput = Float[Tensor, "seq batch dim"]
#: input with batch_first=True: (N, L, H_in) -- the seed note's (batch, seq, dim).
BatchFirstInput = Float[Tensor, "batch seq dim"]
#: unbatched input: (L, H_in).
UnbatchedInput = Float[Tensor, "seq dim"]
#: PackedSequence.data of the input: (sum of lengths, H_in).
PackedInputData = Float[Tensor, "total dim"]

#: output with batch_first=False: (L, N, D * H_out).
SeqFirstOutput = Float[Tensor, "seq batch directions*hidden"]
#: output with batch_first=True: (N, L, D * H_out).
BatchFirstOutput = Float[Tensor, "batch seq directions*hidden"]
#: unbatched output: (L, D * H_out).
UnbatchedOutput = Float[Tensor, "seq directions*hidden"]
#: PackedSequence.data of the output: (sum of lengths, D * H_out).
PackedOutputData = Float[Tensor, "total directions*hidden"]

#: h_0 / h_n: (D * num_layers, N, H_out), whatever batch_first is.
HiddenState = Float[Tensor, "layers*directions batch hidden"]
#: unbatched h_0 / h_n: (D * num_layers, H_out).
UnbatchedHiddenState = Float[Tensor, "layers*directions hidden"]
#: LSTM c_0 / c_n: (D * num_layers, N, H_cell), H_cell = hidden_size even with proj_size.
CellState = Float[Tensor, "layers*directions batch cell"]
#: unbatched LSTM c_0 / c_n: (D * num_layers, H_cell).
UnbatchedCellState = Float[Tensor, "layers*directions cell"]

ALIASES = {
    "SeqFirstInput": SeqFirstInput,
    "BatchFirstInput": BatchFirstInput,
    "UnbatchedInput": UnbatchedInput,
    "PackedInputData": PackedInputData,
    "SeqFirstOutput": SeqFirstOutput,
    "BatchFirstOutput": BatchFirstOutput,
    "UnbatchedOutput": UnbatchedOutput,
    "PackedOutputData": PackedOutputData,
    "HiddenState": HiddenState,
    "UnbatchedHiddenState": UnbatchedHiddenState,
    "CellState": CellState,
    "UnbatchedCellState": UnbatchedCellState,
}


def input_alias(batch_first: bool, unbatched: bool = False) -> type:
    """The alias of the input for a layout."""
    if unbatched:
        return UnbatchedInput
    return BatchFirstInput if batch_first else SeqFirstInput


def output_alias(batch_first: bool, unbatched: bool = False) -> type:
    """The alias of the output for a layout."""
    if unbatched:
        return UnbatchedOutput
    return BatchFirstOutput if batch_first else SeqFirstOutput


def state_alias(which: str, unbatched: bool = False) -> type:
    """The alias of h (``which="h"``) or c (``which="c"``) states."""
    if which == "h":
        return UnbatchedHiddenState if unbatched else HiddenState
    return UnbatchedCellState if unbatched else CellState
