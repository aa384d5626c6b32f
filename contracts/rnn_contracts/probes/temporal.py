"""Contracts on information flow: causality in time and independence across the batch."""
from __future__ import annotations

from rnn_contracts.probes.base import Context, NotApplicable


def causality(ctx: Context) -> None:
    """Perturbing step t never changes earlier outputs of the forward direction nor later outputs
    of the backward direction; a prefix run equals the prefix of the full run (unidirectional).
    Single-layer for the bidirectional part: with num_layers > 1 and bidirectional every top-layer
    output sees every step, so the contract does not apply there."""
    spec, x, main = ctx.spec, ctx.x, ctx.main
    if spec.bidirectional and spec.num_layers > 1:
        raise NotApplicable(
            "bidirectional with num_layers > 1: every top-layer output depends on every step"
        )
    t, h = ctx.seq // 2, spec.h_out
    bumped = x.clone()
    bumped[t] = bumped[t] + ctx.randn(*bumped[t].shape) + 1.0
    moved = ctx.run(bumped, label=f"the main input with step {t} perturbed")
    why = f"perturbing step {t} must not change"
    ctx.assert_close(f"output[:{t}, :, :H_out]", moved.output[:t, :, :h], main.output[:t, :, :h],
                     f"{why} earlier outputs of the forward direction")
    if spec.bidirectional:
        ctx.assert_close(f"output[{t + 1}:, :, H_out:]", moved.output[t + 1:, :, h:],
                         main.output[t + 1:, :, h:], f"{why} later outputs of the backward direction")
        return
    # relu's dead zone: when step t's output is exactly zero on every unit of every sequence in
    # both runs, a correct relu layer (torch's own nn.RNN(4, 1, nonlinearity="relu") for some
    # seeds) passes nothing of x[t] on, so an unchanged later output is no evidence.
    blocked = bool((moved.output[t] == 0).all()) and bool((main.output[t] == 0).all())
    if not blocked:
        ctx.assert_differs(f"output[{t}:]", moved.output[t:], main.output[t:],
                           f"perturbing step {t} must change the output from step {t} on")
    prefix = ctx.run(x[:t], label=f"the first {t} steps", key="prefix")
    ctx.assert_close(f"output[:{t}]", prefix.output, main.output[:t],
                     f"a run on the first {t} steps must equal the first {t} steps of the full run")


def batch_independence(ctx: Context) -> None:
    """Changing one sequence of the batch leaves every other sequence's output and states
    unchanged (torch's recurrent layers process the sequences of a batch independently)."""
    spec, x, main = ctx.spec, ctx.x, ctx.main
    if ctx.batch < 2:  # pragma: no cover - pick_sizes never chooses batch < 3
        raise NotApplicable("a batch of one sequence")
    changed = x.clone()
    changed[:, 0] = ctx.randn(ctx.seq, spec.input_size) + 0.5
    moved = ctx.run(changed, label="the main input with sequence 0 replaced")
    why = "replacing sequence 0 must not change the other sequences"
    ctx.assert_close("output[:, 1:]", moved.output[:, 1:], main.output[:, 1:], why)
    for name in ("h_n", "c_n"):
        if getattr(main, name) is not None:
            ctx.assert_close(f"{name}[:, 1:]", getattr(moved, name)[:, 1:], getattr(main, name)[:, 1:], why)
    ctx.assert_differs("output[:, 0]", moved.output[:, 0], main.output[:, 0],
                       "replacing sequence 0 must change sequence 0's output")
