"""One table: the named axes of every tensor of the torch recurrent API, per layout.

It encodes the "Inputs" and "Outputs" sections of the torch.nn.RNN / LSTM / GRU documentation in
the kit's vocabulary:

* input: (L, N, H_in) with batch_first=False, (N, L, H_in) with batch_first=True, (L, H_in)
  unbatched, (sum of lengths, H_in) as a PackedSequence's data;
* output: the input's layout with D * H_out features;
* h_0 / h_n: (D * num_layers, N, H_out) whatever batch_first is; (D * num_layers, H_out) unbatched;
* c_0 / c_n (LSTM): the same with H_cell;

with the names batch, seq, dim (H_in), hidden (H_out = proj_size if > 0 else hidden_size),
cell (H_cell = hidden_size), layers, directions (D) and total (rows of a PackedSequence). A name
``a*b`` is the product of two sizes. Both the jaxtyping aliases (:mod:`rnn_contracts.aliases`)
and RNNSpec's named shapes (:mod:`rnn_contracts.spec`) are derived from this table.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

Role = Literal["input", "output", "h", "c"]
Layout = Literal["seq_first", "batch_first", "unbatched", "packed"]

#: The sizes an RNNSpec fixes, in the order the engine binds them in one scope.
SPEC_DIMS: tuple[str, ...] = ("layers", "directions", "hidden", "cell", "dim")

_FEATURES = {"input": "dim", "output": "directions*hidden"}
_STATE_FEATURES = {"h": "hidden", "c": "cell"}


def _axes(role: Role, layout: Layout) -> tuple[str, ...]:
    if role in _STATE_FEATURES:  # states never follow batch_first; packed calls have batched states
        batch = () if layout == "unbatched" else ("batch",)
        return ("layers*directions", *batch, _STATE_FEATURES[role])
    leading = {"seq_first": ("seq", "batch"), "batch_first": ("batch", "seq"),
               "unbatched": ("seq",), "packed": ("total",)}[layout]
    return (*leading, _FEATURES[role])


#: (role, layout) -> axis names: the table itself.
AXES: dict[tuple[Role, Layout], tuple[str, ...]] = {
    (role, layout): _axes(role, layout)
    for role in ("input", "output", "h", "c")
    for layout in ("seq_first", "batch_first", "unbatched", "packed")
}


def layout_of(*, batch_first: bool, unbatched: bool = False, packed: bool = False) -> Layout:
    """The layout of one call: packed and unbatched first, then batch_first."""
    if packed:
        return "packed"
    if unbatched:
        return "unbatched"
    return "batch_first" if batch_first else "seq_first"


def axes(role: Role, layout: Layout) -> tuple[str, ...]:
    """The axis names of ``role`` ("input", "output", "h", "c") in ``layout``."""
    return AXES[(role, layout)]


def size_of(name: str, sizes: Mapping[str, int]) -> int:
    """The size of an axis name, ``a*b`` being the product of two bound sizes."""
    return math.prod(sizes[part] for part in name.split("*"))
