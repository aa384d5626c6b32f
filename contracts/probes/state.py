"""Contracts on the recurrent state: the initial state is used, and the state carries over."""
from __future__ import annotations

import torch

from contracts.probes.base import Context, KnownLimitation, NotApplicable, ProbeFailure

#: torch's cuDNN kernels reject non-contiguous states with these messages (aten/src/ATen/native/
#: cudnn/RNN.cpp); the CPU path accepts them. harvardnlp/namedtensor#58, fastai/fastai2#141.
CUDNN_NONCONTIGUOUS = ("rnn: hx is not contiguous", "rnn: cx is not contiguous")


def _hx(ctx: Context, h: torch.Tensor, c: torch.Tensor | None) -> object:
    return (h, c) if ctx.spec.has_cell else h


def initial_state(ctx: Context) -> None:
    """h_0 defaults to zeros (an explicit zero h_0 equals no h_0); a given h_0 (and, for LSTM, a
    given c_0) changes the result; a non-contiguous h_0 is accepted and gives the same result as
    its contiguous copy (torch.nn.RNN docs, "h_0 ... Defaults to zeros if not provided";
    non-contiguous hx: harvardnlp/namedtensor#58). torch's cuDNN path (CUDA) rejects a
    non-contiguous h_0 with "rnn: hx is not contiguous": that rejection, and only that one, is
    reported as a known limitation, not a failure."""
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
    # The same values laid out batch-major in memory AND with a stride of 2 on the last axis:
    # the transpose alone is still contiguous when an axis has size 1; the stride never is.
    stacks, batch, size = h0.shape
    wide = torch.zeros(batch, stacks, 2 * size, dtype=h0.dtype, device=h0.device)
    wide[..., ::2] = h0.transpose(0, 1)
    strided_h = wide.transpose(0, 1)[..., ::2]
    if strided_h.is_contiguous():  # pragma: no cover - a stride-2 view never is
        raise AssertionError("internal: the non-contiguous h_0 probe built a contiguous tensor")
    try:
        strided = ctx.run(x, _hx(ctx, strided_h, zeros_c), label="a non-contiguous h_0")
    except ProbeFailure as exc:
        if any(text in str(exc) for text in CUDNN_NONCONTIGUOUS):
            raise KnownLimitation(
                "every other check held; a non-contiguous h_0 was rejected with torch's cuDNN error "
                "'rnn: hx is not contiguous' (torch's own layers on CUDA do the same: "
                "harvardnlp/namedtensor#58). Call .contiguous() on states you slice or transpose"
            ) from exc
        raise
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


