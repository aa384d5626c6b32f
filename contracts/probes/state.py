"""Contracts on the recurrent state: the initial state is used, and the state carries over."""
from __future__ import annotations

import torch

from contracts.probes.base import Context, NotApplicable


def _hx(ctx: Context, h: torch.Tensor, c: torch.Tensor | None) -> object:
    return (h, c) if ctx.spec.has_cell else h


def initial_state(ctx: Context) -> None:
    """h_0 defaults to zeros (an explicit zero h_0 equals no h_0); a given h_0 (and, for LSTM, a
    given c_0) changes the result; a non-contiguous h_0 is accepted and gives the same result as
    its contiguous copy (torch.nn.RNN docs, "h_0 ... Defaults to zeros if not provided";
    non-contiguous hx: harvardnlp/namedtensor#58)."""
    spec, x, main = ctx.spec, ctx.x, ctx.main
    zeros_h = ctx.zero_state("h")
    zeros_c = ctx.zero_state("c") if spec.has_cell else None
    zero = ctx.run(x, _hx(ctx, zeros_h, zeros_c), label="an explicit zero h_0")
    ctx.assert_close("output", zero.output, main.output, "an explicit zero h_0 must equal no h_0")
    h0 = ctx.cached("h0", lambda: ctx.state("h"))
    given = ctx.run(x, _hx(ctx, h0, zeros_c), label="a random h_0", key="given_h0")
    ctx.assert_differs("output[0]", given.output[0], main.output[0], "a given h_0 must change the result")
    if spec.has_cell:
        c0 = ctx.state("c")
        with_c = ctx.run(x, (zeros_h, c0), label="a random c_0")
        ctx.assert_differs("output[0]", with_c.output[0], main.output[0], "a given c_0 must change the result")
    # The same values laid out (batch, stacks, H) in memory, viewed as (stacks, batch, H).
    strided_h = h0.transpose(0, 1).contiguous().transpose(0, 1)
    if strided_h.is_contiguous() and h0.shape[0] > 1 and h0.shape[1] > 1:  # pragma: no cover
        raise AssertionError("internal: the non-contiguous h_0 probe built a contiguous tensor")
    strided = ctx.run(x, _hx(ctx, strided_h, zeros_c), label="a non-contiguous h_0")
    ctx.assert_close("output", strided.output, given.output,
                     "a non-contiguous h_0 must give the result of its contiguous copy")


def state_carry(ctx: Context) -> None:
    """Running a sequence in two chunks, passing (h_n[, c_n]) on, equals one run: output and
    final states (the recurrence of the torch docs, h_t = f(x_t, h_{t-1})). Unidirectional only:
    a backward direction starts from the end of the whole sequence."""
    spec = ctx.spec
    if spec.bidirectional:
        raise NotApplicable("bidirectional: the backward direction cannot be resumed from a chunk")
    x, main, t = ctx.x, ctx.main, ctx.seq // 2
    first = ctx.run(x[:t], label=f"the first {t} steps", key="prefix")
    carried = _hx(ctx, first.h_n, first.c_n)
    second = ctx.run(x[t:], carried, label=f"steps {t}.. with the carried state")
    why = f"two chunks (steps :{t} then {t}: with the state passed on) must equal one run"
    ctx.assert_close("output", torch.cat([first.output, second.output]), main.output, why)
    ctx.assert_close("h_n", second.h_n, main.h_n, why)
    if spec.has_cell:
        ctx.assert_close("c_n", second.c_n, main.c_n, why)


