"""Contracts on the structure of a call: shapes, final states, unbatched input."""
from __future__ import annotations

from functools import partial

import torch

from rnn_contracts.checks import check_call
from rnn_contracts.errors import ContractViolation, Violation
from rnn_contracts.probes import shared
from rnn_contracts.probes.base import Context, NotApplicable, ProbeFailure, require_states


def shapes(ctx: Context) -> None:
    """Shapes, dtype and device of the output and every state (torch.nn.RNN/LSTM/GRU "Inputs" and
    "Outputs"), checked by check_call on the calls the other contracts read
    (rnn_contracts.probes.shared): the main probe input, where no two dimensions coincide, its
    first sequence (batch 1), the states call (a larger batch, with h_0), its first seq - 1
    steps and its last step from their final states (seq 1, with h_0)."""
    check = partial(_check, ctx)
    ctx.main_call(check)
    shared.first_sequence(ctx, check)
    if ctx.spec.returns_states:  # a module that returns only its output may take no hx either
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
    """2-D (seq, dim) input with a 2-D (num_layers*D, H_out) h_0 (and c_0) gives 2-D (seq, D*H_out)
    output and (num_layers*D, H_out) states, equal to the batched run of the same sequence from
    the same state (torch.nn.RNN docs: unbatched input and h_0, pytorch/pytorch PR #70442). The
    call carries a state, the random one of the states call's first sequence: an unbatched branch
    that forgets to add the batch axis to h_0, or drops it, fails here. An unbatched call without
    h_0 is not made as well: it would be a thirteenth module call on a unidirectional module
    (verify_rnn makes twelve), so a branch that is wrong only when h_0 defaults to zeros passes
    this contract. A module that returns no states (and may take no hx) gets none, and is
    compared with the batched run of its first sequence."""
    spec = ctx.spec
    if not spec.unbatched:
        raise NotApplicable("the spec declares no unbatched support (RNNSpec.unbatched=False)")
    single = ctx.x[:, 0]
    if spec.returns_states:
        whole, hx = shared.random_state_run(ctx)
        batched = whole.columns(slice(0, 1))
        h, c = hx if spec.has_cell else (hx, None)
        # contiguous, as the batched call's (cuDNN rejects a non-contiguous h_0)
        given = ctx.as_hx(h[:, 0].contiguous(), None if c is None else c[:, 0].contiguous())
        raw = ctx.call(single, given, label="unbatched input (seq, dim) with an unbatched h_0")
    else:
        batched = shared.first_sequence(ctx)
        raw = ctx.call(single, label="unbatched input (seq, dim)")
    got = ctx.split(raw, batched=False)
    want = {"output": spec.output_shape(None, ctx.seq).sizes}
    if spec.returns_states:
        want["h_n"] = spec.state_shape(None).sizes
    if spec.returns_states and spec.has_cell:
        want["c_n"] = spec.state_shape(None, "c").sizes
    for name, shape in want.items():
        value = getattr(got, name)
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            actual = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ProbeFailure(f"unbatched {name} has shape {actual}, expected {shape}")
    why = "an unbatched run must equal the batched run with batch 1"
    if spec.returns_states:
        why += " from the same h_0"
    ctx.assert_close("unbatched output", got.output, batched.output[:, 0], why)
    for name in ("h_n", "c_n"):
        if name in want:
            ctx.assert_close(f"unbatched {name}", getattr(got, name), getattr(batched, name)[:, 0], why)
