"""Contracts on the structure of a call: shapes, final states, unbatched input."""
from __future__ import annotations

from functools import partial

import torch

from rnn_contracts.checks import check_call
from rnn_contracts.errors import ContractViolation, Violation
from rnn_contracts.probes import shared
from rnn_contracts.probes.base import Context, NotApplicable, ProbeFailure, Result, require_states


def shapes(ctx: Context) -> None:
    """Shapes, dtype and device of the output and every state (torch.nn.RNN/LSTM/GRU "Inputs" and
    "Outputs"), checked by check_call on the calls the other contracts read
    (rnn_contracts.probes.shared): the main probe input, where no two dimensions coincide, and
    right after it the same input again (the repeat), its first sequence (batch 1), the states
    call (a larger batch, with h_0), its first seq - 1 steps and its last step from their final
    states (seq 1, with h_0)."""
    check = partial(_check, ctx)
    ctx.main_call(check)
    shared.repeat_call(ctx, check)
    shared.first_sequence(ctx, check)
    if ctx.spec.gives_hx:  # a module that takes no hx, or returns only its output, gets none
        shared.states_call(ctx, check)
    shared.prefix(ctx, check)
    shared.last_step(ctx, check)


def _check(ctx: Context, fed: object, hx: object, raw: object, label: str) -> None:
    """A call's result checked against the contract before anything reads it."""
    try:
        check_call(ctx.spec, fed, hx, raw, ctx.module)
    except ContractViolation as exc:
        raise ProbeFailure(Violation("evidence", detail=f"on {label}: {exc.title}",
                                     causes=tuple(exc.violations))) from exc


def final_state(ctx: Context) -> None:
    """h_n of the last layer equals the output at the last step (forward direction) and at the
    FIRST step (backward direction); LSTM returns (h_n, c_n) in that order; states are ordered as
    h_n.view(num_layers, D, batch, H_out) (pytorch/pytorch#3587, PR #7669)."""
    require_states(ctx)
    spec, main = ctx.spec, ctx.main
    h = spec.h_out
    out = main.output
    expected_shape = spec.state_shape(ctx.batch).sizes
    if tuple(main.h_n.shape) != expected_shape:
        raise ProbeFailure(
            f"h_n has shape {tuple(main.h_n.shape)}, expected {expected_shape} "
            f"(num_layers * D, batch, H_out); LSTM must return (h_n, c_n) in that order"
        )
    top = main.h_n.view(spec.num_layers, spec.num_directions, ctx.batch, h)[-1]
    why = "the last layer's forward final state h_n.view(num_layers, D, batch, H_out)[-1, 0] must equal output[-1, :, :H_out]"
    ctx.assert_close("h_n[-1 layer, forward]", top[0], out[-1, :, :h], why)
    if spec.bidirectional:
        why = ("the last layer's backward final state h_n.view(num_layers, D, batch, H_out)[-1, 1] must "
               "equal output[0, :, H_out:] (the backward direction ends at the FIRST step)")
        ctx.assert_close("h_n[-1 layer, backward]", top[1], out[0, :, h:], why)


def unbatched(ctx: Context) -> None:
    """2-D (seq, dim) input gives 2-D (seq, D*H_out) output and (num_layers*D, H_out) states,
    equal to the batched run of the same sequence (torch.nn.RNN docs: unbatched input and h_0,
    pytorch/pytorch PR #70442), on two calls: without h_0 (against the batched run with batch 1),
    and with a 2-D (num_layers*D, H_out) h_0 (and c_0), the states call's random state of its first
    sequence (against the batch-1 call from that state, shapes' ``batch1``). Without h_0 the
    batched partner is the main call's first sequence once batch_independence held, else a
    batch-1 call of its own. The two are distinct paths in hand-written modules: a default
    state built with a batch axis (``init_hidden(x.size(1))``) breaks only the first, an h_0 left
    without its batch axis (or dropped) only the second. A module that takes no h_0, or returns
    no states (and may take no hx), gets the first call only (its ``batch1`` has no h_0)."""
    spec = ctx.spec
    if not spec.unbatched:
        raise NotApplicable("the spec declares no unbatched support (RNNSpec.unbatched=False)")
    single = ctx.x[:, 0]
    if not spec.gives_hx:
        alone = shared.first_sequence(ctx)
    elif ctx.merged():
        alone = ctx.main.columns(slice(0, 1))
    else:  # a module that mixes sequences: the batched partner runs alone
        alone = ctx.run(ctx.x[:, :1], label="batch 1")
    _compare_unbatched(ctx, ctx.call(single, label="unbatched input (seq, dim)"), alone, with_h0=False)
    if spec.gives_hx:
        first = shared.states_input(ctx).first_hx("random")  # batch1's state, contiguous (cuDNN)
        h_0 = tuple(t[:, 0] for t in first) if spec.has_cell else first[:, 0]  # its batch axis dropped
        raw = ctx.call(single, h_0, label="unbatched input (seq, dim) with an unbatched h_0")
        _compare_unbatched(ctx, raw, shared.first_sequence(ctx), with_h0=True)


def _compare_unbatched(ctx: Context, raw: object, batched: Result, *, with_h0: bool) -> None:
    """An unbatched call's result against the batched run of batch 1 (``with_h0``: both from the
    same h_0): shapes first, then values."""
    spec = ctx.spec
    got = ctx.split(raw, batched=False)
    want = {"output": spec.output_shape(None, ctx.seq).sizes}
    if spec.returns_states:
        want["h_n"] = spec.state_shape(None).sizes
    if spec.returns_states and spec.has_cell:
        want["c_n"] = spec.state_shape(None, "c").sizes
    given = " given an unbatched h_0" if with_h0 else ""
    for name, shape in want.items():
        value = getattr(got, name)
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            actual = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ProbeFailure(f"unbatched {name}{given} has shape {actual}, expected {shape}")
    why = "an unbatched run must equal the batched run with batch 1" + (" from the same h_0" if with_h0 else "")
    ctx.assert_close(f"unbatched output{given}", got.output, batched.output[:, 0], why)
    for name in ("h_n", "c_n"):
        if name in want:
            ctx.assert_close(f"unbatched {name}{given}", getattr(got, name), getattr(batched, name)[:, 0], why)
