"""Dynamic shapes from the contract: what torch.export and the ONNX exporters need, read off a spec.

A recurrent module has two free sizes, the number of sequences (``batch``) and their length
(``seq``); everything else (dim, hidden, layers*directions) is fixed by the spec. Where those two
axes sit follows the torch.nn.RNN / LSTM / GRU "Inputs" documentation, as RNNSpec encodes it:

* input (seq, batch, dim), or (batch, seq, dim) with batch_first, or (seq, dim) unbatched;
* h_0 / c_0 (layers*directions, batch, H), batch at axis 1 whatever batch_first says, and no
  batch axis unbatched;
* outputs: output in the input's layout, h_n / c_n like h_0 / c_0.

``dynamic_shapes`` gives the structure ``torch.export.export(module, args, dynamic_shapes=...)``
takes (torch.export docs, "Expressing Dynamism"): one ``torch.export.Dim`` per named axis, shared
by every tensor that carries it, so export knows the batch of x and of h_0 are one size.
``dynamic_axes`` gives the same names for the TorchScript ONNX exporter
(``torch.onnx.export(..., dynamo=False, dynamic_axes=...)``), with the input and output names of
``onnx_names``.
"""
from __future__ import annotations

from typing import Any

from rnn_contracts.spec import RNNSpec

#: Names of the free axes, in the kit's vocabulary (spec.py's module docstring).
BATCH, SEQ, TOTAL = "batch", "seq", "total"


def axes(spec: RNNSpec, tensor: str, *, unbatched: bool = False) -> dict[int, str]:
    """The free axes of one tensor of a forward call, ``{position: name}``.

    ``tensor`` is one of input, output, h_0, c_0, h_n, c_n (the torch docs' names). Unbatched
    calls have no batch axis; states never have a seq axis.
    """
    if tensor in ("input", "output"):
        if unbatched:
            return {0: SEQ}
        return {0: BATCH, 1: SEQ} if spec.batch_first else {0: SEQ, 1: BATCH}
    if tensor in ("h_0", "h_n", "c_0", "c_n"):
        if tensor.startswith("c") and not spec.has_cell:
            raise ValueError(f"{spec.mode} has no cell state ({tensor})")
        return {} if unbatched else {1: BATCH}
    raise ValueError(f"unknown tensor {tensor!r}; expected input, output, h_0, c_0, h_n or c_n")


def dims(*, min_size: int = 2) -> dict[str, Any]:
    """One ``torch.export.Dim`` per free axis name (batch, seq, total).

    ``min_size=2``: torch.export specialises sizes 0 and 1 anyway (its "0/1 specialization"), so
    a range starting at 2 states what an export can promise."""
    from torch.export import Dim

    return {name: Dim(name, min=min_size) for name in (BATCH, SEQ, TOTAL)}


def _tensor_shapes(named: dict[int, str], by_name: dict[str, Any]) -> dict[int, Any] | None:
    return {axis: by_name[name] for axis, name in named.items()} or None


def dynamic_shapes(
    spec: RNNSpec, *, with_hx: bool = False, unbatched: bool = False, packed: bool = False
) -> tuple[Any, ...]:
    """The ``dynamic_shapes`` argument of ``torch.export.export`` for a call ``module(x)`` or,
    with ``with_hx``, ``module(x, hx)`` where hx is h_0, or (h_0, c_0) for an LSTM.

    One entry per positional argument: ``{axis: Dim}`` for a tensor with free axes, None for a
    tensor without (an unbatched h_0). The same Dim object stands for the same axis everywhere.

    ``packed``: x is a PackedSequence's four tensors in field order, (data, batch_sizes,
    sorted_indices, unsorted_indices): data (total, dim), batch_sizes (seq,), the indices
    (batch,). torch 2.13's export rejects a PackedSequence argument itself ("Did not expect type
    namedtuple"), so this form serves a module whose forward takes those tensors.
    """
    if packed and unbatched:
        raise ValueError("a PackedSequence is always batched: packed and unbatched exclude each other")
    by_name = dims()
    if packed:
        x: Any = ({0: by_name[TOTAL]}, {0: by_name[SEQ]}, {0: by_name[BATCH]}, {0: by_name[BATCH]})
    else:
        x = _tensor_shapes(axes(spec, "input", unbatched=unbatched), by_name)
    if not with_hx:
        return (x,)
    h = _tensor_shapes(axes(spec, "h_0", unbatched=unbatched), by_name)
    hx = (h, _tensor_shapes(axes(spec, "c_0", unbatched=unbatched), by_name)) if spec.has_cell else h
    return (x, hx)


def onnx_names(spec: RNNSpec, *, with_hx: bool = False) -> tuple[list[str], list[str]]:
    """Input and output names of an exported ONNX file: (x[, h_0[, c_0]]), (output, h_n[, c_n])."""
    inputs = ["x"] + (["h_0", "c_0"] if spec.has_cell else ["h_0"]) * with_hx
    outputs = ["output", "h_n"] + (["c_n"] if spec.has_cell else [])
    return inputs, outputs


def dynamic_axes(spec: RNNSpec, *, with_hx: bool = False, unbatched: bool = False) -> dict[str, dict[int, str]]:
    """The ``dynamic_axes`` argument of the TorchScript ONNX exporter, keyed by ``onnx_names``:
    ``{"x": {0: "seq", 1: "batch"}, "output": {...}, "h_n": {1: "batch"}, ...}``. Tensors without
    a free axis (unbatched states) are left out."""
    inputs, outputs = onnx_names(spec, with_hx=with_hx)
    role = {"x": "input", "output": "output", "h_0": "h_0", "c_0": "c_0", "h_n": "h_n", "c_n": "c_n"}
    found = {name: axes(spec, role[name], unbatched=unbatched) for name in inputs + outputs}
    return {name: named for name, named in found.items() if named}


__all__ = ["BATCH", "SEQ", "TOTAL", "axes", "dims", "dynamic_axes", "dynamic_shapes", "onnx_names"]
