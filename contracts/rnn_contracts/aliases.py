"""jaxtyping aliases for every tensor of the torch recurrent API.

Names follow the seed's vocabulary: batch, seq, dim (input features), hidden (H_out = proj_size if
proj_size > 0 else hidden_size), cell (H_cell = hidden_size), layers, directions (D). The symbolic
axes ``directions*hidden`` and ``layers*directions`` encode torch's rules for the output features
and the stacked states; they are evaluated against sizes bound earlier in the same
``jaxtyped("context")`` block, which :func:`rnn_contracts.engine.bind_spec` does from an RNNSpec.
Every dimension string is built from the one table in :mod:`rnn_contracts.layouts`.

Every alias is checked by :mod:`rnn_contracts.engine` (typeguard's ``check_type`` by default), never
by the ``@jaxtyped(typechecker=typechecked)`` decorator form, which typeguard 4 silently turns
into a no-op (patrick-kidger/jaxtyping#344).
"""
from __future__ import annotations

from jaxtyping import Float, Shaped
from torch import Tensor

from rnn_contracts.layouts import SPEC_DIMS, Layout, Role, axes, layout_of

_BY_AXES: dict[tuple[str, ...], type] = {}


def alias_for(role: Role, layout: Layout) -> type:
    """The alias of ``role`` ("input", "output", "h", "c") in ``layout``: one object per axis
    string (batched states share theirs whatever the layout)."""
    names = axes(role, layout)
    if names not in _BY_AXES:
        _BY_AXES[names] = Float[Tensor, " ".join(names)]
    return _BY_AXES[names]


#: The sizes an RNNSpec fixes; bound first in every check (see engine.bind_spec).
SpecDims = Shaped[Tensor, " ".join(SPEC_DIMS)]

#: input with batch_first=False (torch's default): (L, N, H_in).
SeqFirstInput = alias_for("input", "seq_first")
#: input with batch_first=True: (N, L, H_in) -- the seed note's (batch, seq, dim).
BatchFirstInput = alias_for("input", "batch_first")
#: unbatched input: (L, H_in).
UnbatchedInput = alias_for("input", "unbatched")
#: PackedSequence.data of the input: (sum of lengths, H_in).
PackedInputData = alias_for("input", "packed")

#: output with batch_first=False: (L, N, D * H_out).
SeqFirstOutput = alias_for("output", "seq_first")
#: output with batch_first=True: (N, L, D * H_out).
BatchFirstOutput = alias_for("output", "batch_first")
#: unbatched output: (L, D * H_out).
UnbatchedOutput = alias_for("output", "unbatched")
#: PackedSequence.data of the output: (sum of lengths, D * H_out).
PackedOutputData = alias_for("output", "packed")

#: h_0 / h_n: (D * num_layers, N, H_out), whatever batch_first is.
HiddenState = alias_for("h", "seq_first")
#: unbatched h_0 / h_n: (D * num_layers, H_out).
UnbatchedHiddenState = alias_for("h", "unbatched")
#: LSTM c_0 / c_n: (D * num_layers, N, H_cell), H_cell = hidden_size even with proj_size.
CellState = alias_for("c", "seq_first")
#: unbatched LSTM c_0 / c_n: (D * num_layers, H_cell).
UnbatchedCellState = alias_for("c", "unbatched")

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
    return alias_for("input", layout_of(batch_first=batch_first, unbatched=unbatched))


def output_alias(batch_first: bool, unbatched: bool = False) -> type:
    """The alias of the output for a layout."""
    return alias_for("output", layout_of(batch_first=batch_first, unbatched=unbatched))


def state_alias(which: str, unbatched: bool = False) -> type:
    """The alias of h (``which="h"``) or c (``which="c"``) states."""
    return alias_for("h" if which == "h" else "c", "unbatched" if unbatched else "seq_first")
