"""The fast path of the shape contract: a direct comparison that passes a conforming call.

The engine (jaxtyping aliases, checked by typeguard or beartype: rnn_contracts.engine) stays the
judge of record for every call that does not conform: it decides, and rnn_contracts.checks turns
its verdict into the diagnosis. For a conforming call the engine's answer is known in advance,
and asking it costs ~25 us per tensor (six check_type calls and four evals of symbolic dims on a
new signature). Here the sizes the spec fixes are compared with the call's shapes as plain
tuples, the dtypes and devices with the input's: :func:`read_inputs` gives the input's facts
only when the engine would accept x and hx, and :func:`result_ok` is True only when it would
accept every tensor of the result; only then is the engine skipped. Anything this module does
not recognise (a PackedSequence, a module that returns no states, a list instead of a tuple, a
dtype outside the four floating ones, a size of 0) gives None / False and goes to the engine,
which is never wrong for being asked.

That a fast pass implies the engine's acceptance is a property tested against the engine itself
over random specs and calls (tests/test_fastpath.py), and the engine's self-test still runs when
the kit activates in a session.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

import torch

from rnn_contracts.spec import RNNSpec

#: The dtypes the engine's Float aliases accept that torch's recurrent layers compute in.
_FLOATS = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64})


class _Sizes(NamedTuple):
    """What a spec fixes: input features, output features (D * H_out), the states' leading size
    (num_layers * D), h's and c's features; the layout and which states the mode has."""

    dim: int
    out: int
    stacks: int
    h: int
    cell: int
    batch_first: bool
    unbatched: bool
    lstm: bool


@lru_cache(maxsize=256)
def _sizes(spec: RNNSpec) -> _Sizes | None:
    """The spec's sizes, or None for a spec the fast path leaves to the engine (no states
    returned, or the cell convention, whose result is built by the kit)."""
    if not spec.returns_states or spec.convention != "layer":
        return None
    d = spec.num_directions
    return _Sizes(spec.input_size, d * spec.h_out, spec.num_layers * d, spec.h_out, spec.hidden_size,
                  spec.batch_first, spec.unbatched, spec.has_cell)


def _batch_seq(sizes: _Sizes, x: Any) -> tuple[int | None, int] | None:
    """(batch, seq) of a conforming input tensor (batch None when unbatched), else None."""
    if type(x) is not torch.Tensor or x.is_nested or x.dtype not in _FLOATS:
        return None
    shape = x.shape
    if len(shape) == 3:
        a, b, dim = shape
        batch, seq = (a, b) if sizes.batch_first else (b, a)
    elif len(shape) == 2 and sizes.unbatched:
        batch, (seq, dim) = None, shape
    else:
        return None
    if dim != sizes.dim or seq < 1 or batch == 0:
        return None
    return batch, seq


def _state_ok(t: Any, stacks: int, batch: int | None, features: int, x: torch.Tensor) -> bool:
    if type(t) is not torch.Tensor or t.dtype is not x.dtype or t.device != x.device:
        return False
    return t.shape == ((stacks, features) if batch is None else (stacks, batch, features))


def _states_ok(sizes: _Sizes, state: Any, batch: int | None, x: torch.Tensor) -> bool:
    if not sizes.lstm:
        return _state_ok(state, sizes.stacks, batch, sizes.h, x)
    return (type(state) is tuple and len(state) == 2
            and _state_ok(state[0], sizes.stacks, batch, sizes.h, x)
            and _state_ok(state[1], sizes.stacks, batch, sizes.cell, x))


def first_float_parameter(module: Any) -> torch.Tensor | None:
    """The first floating-point parameter of ``module`` in ``module.parameters()`` order (the
    module's own, then each submodule's, depth first), found without building
    ``parameters()``'s generators (3 us on a layer with one submodule); None for a module with
    none, or for anything that is not an nn.Module."""
    if not isinstance(module, torch.nn.Module):
        return None
    for p in module._parameters.values():
        if p is not None and p.is_floating_point():
            return p
    for child in module._modules.values():
        found = first_float_parameter(child) if child is not None else None
        if found is not None:
            return found
    return None


class Facts(NamedTuple):
    """What a conforming input fixes for the result: the spec's sizes, batch (None: unbatched)
    and seq."""

    sizes: _Sizes
    batch: int | None
    seq: int


def read_inputs(spec: RNNSpec, x: Any, hx: Any = None, module: Any = None) -> Facts | None:
    """The facts of x and hx when the engine would accept them for ``spec`` (and the module's
    first floating-point parameter has x's dtype and device: checks' check_against_parameters,
    without autocast's exception, where the engine decides); None means "ask the engine"."""
    sizes = _sizes(spec)
    if sizes is None:
        return None
    found = _batch_seq(sizes, x)
    if found is None:
        return None
    reference = first_float_parameter(module)
    if reference is not None and (reference.dtype is not x.dtype or reference.device != x.device):
        return None
    if hx is not None and (not spec.takes_hx or not _states_ok(sizes, hx, found[0], x)):
        return None
    return Facts(sizes, *found)


def result_ok(facts: Facts, x: torch.Tensor, result: Any) -> bool:
    """True when the engine would accept the result of a call on ``x`` whose inputs gave
    ``facts`` (:func:`read_inputs`): (output, h_n) or (output, (h_n, c_n)) of the sizes they fix,
    in x's dtype and on x's device; False means "ask the engine"."""
    if type(result) is not tuple or len(result) != 2:
        return False
    sizes, batch, seq = facts
    out, state = result
    if type(out) is not torch.Tensor or out.dtype is not x.dtype or out.device != x.device:
        return False
    if batch is None:
        expected: tuple[int, ...] = (seq, sizes.out)
    else:
        expected = (batch, seq, sizes.out) if sizes.batch_first else (seq, batch, sizes.out)
    return out.shape == expected and _states_ok(sizes, state, batch, x)
