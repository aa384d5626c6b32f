"""Contracts on information flow: causality in time and independence across the batch."""
from __future__ import annotations

from collections.abc import Callable

import torch

from rnn_contracts.probes import shared
from rnn_contracts.probes.base import Context, NotApplicable, ProbeFailure, Result
from rnn_contracts.probes.shared import is_relu, prefix, prefix_length

#: Further inputs tried when a "must change" check saw no change on the main probe input: _TRIES
#: sign patterns, each with its negation, at magnitudes cycling through _SCALES. A relu layer's
#: dead zone can swallow a change (torch's own nn.RNN(5, 1, num_layers=3, nonlinearity="relu")
#: under seed 481 changed nothing at scale 1 and 35.5 at scale 1000), and in half precision a
#: change can round away in the upper layers of a deep LSTM (nn.LSTM(1, 1, num_layers=3) in
#: bfloat16, seed 99). 1000 is safe in float16 (max 65504) and matches shared.STACK_SCALE.
_TRIES = 8
_SCALES = (1.0, 10.0, 100.0, 1000.0)


def dead_zone(ctx: Context, result: Result, j: int) -> bool:
    """Evidence that relu's dead zone blocks a path in sequence ``j`` of ``result``: a relu RNN,
    and a layer or direction whose units are all exactly 0 (at some step of the output, or in
    h_n). Only relu layers qualify: tanh / sigmoid outputs are never exactly 0 by chance, so a
    tanh, GRU or LSTM module that ignores a change never counts as "not observable"."""
    if not is_relu(ctx):
        return False
    h = ctx.spec.h_out
    out = result.output[:, j].unflatten(-1, (-1, h))  # (seq, D, H_out)
    if bool((out == 0).all(dim=-1).any()):
        return True
    return result.h_n is not None and bool((result.h_n[:, j] == 0).all(dim=-1).any())


def sign_patterns(ctx: Context, shape: tuple[int, ...], stream: str) -> torch.Tensor:
    """_TRIES perturbations of ``shape``: random sign patterns and their negations, of magnitude
    cycling through _SCALES (pattern i and its negation share a magnitude)."""
    signs = ctx.randn(_TRIES // 2, *shape, stream=stream).sign()
    signs[signs == 0] = 1
    scales = torch.tensor([_SCALES[i % len(_SCALES)] for i in range(_TRIES // 2)], dtype=signs.dtype,
                          device=signs.device).view(-1, *[1] * len(shape))
    half = signs * scales
    return torch.stack([half, -half], dim=1).flatten(0, 1)


def _must_change(ctx: Context, what: str, why: str, select: Callable[[Result], torch.Tensor], *,
                 main: Result, moved: Result, seqs: range,
                 variant: Callable[[int], torch.Tensor | tuple[torch.Tensor, object]], label: str,
                 reached: Callable[[Result], torch.Tensor] | None = None) -> str | None:
    """The "must change" half of a contract: ``select(moved)`` (the changed input's output)
    against ``select(main)``, then, only when that showed no change, _TRIES more changed inputs
    ``variant(i)`` (an input, or an input and its initial state), each compared with the main
    call the same way. Every comparison is between two
    calls of the same shape: a different batch size may run other kernels whose rounding differs,
    which an exact comparison would read as a change. ``seqs``: the sequences the change reaches.
    ``reached``: where else a try's change counts (causality: the top layer's c_n, see there).

    Returns None when some input changed the output; the not-observable reason when none did and
    relu's dead zone shows (Context-free evidence: :func:`dead_zone`) in every run tried, for
    every sequence in ``seqs``; raises the first comparison's ProbeFailure otherwise."""
    try:
        ctx.assert_differs(what, select(moved), select(main), why)
        return None
    except ProbeFailure as failure:
        runs = [main, moved]
        for i in range(_TRIES):
            tried = variant(i)
            xs, hx = tried if isinstance(tried, tuple) else (tried, None)
            got = ctx.run(xs, hx, label=f"{label} (try {i + 1} of {_TRIES})")
            # a try counts when it shows a change: one that gives zeros only is no evidence
            if any(ctx.shows_change(part(got), part(main))
                   for part in ((select,) if reached is None else (select, reached))):
                return None
            runs.append(got)
        if not all(dead_zone(ctx, r, j) for r in runs for j in seqs):
            raise failure
        return (f"every other check held; not observable: {why} (relu's dead zone): no change on "
                f"the main probe input nor on {_TRIES} more inputs (magnitudes up to "
                f"{max(_SCALES):g}), and every run had a layer or direction exactly 0 on every "
                f"unit, which blocks the path")


def causality(ctx: Context) -> None:
    """Perturbing step t never changes earlier outputs of the forward direction nor later outputs
    of the backward direction; a run on the first seq - 1 steps equals those steps of the full run
    (unidirectional).
    Single-layer for the bidirectional part: with num_layers > 1 and bidirectional every top-layer
    output sees every step, so the contract does not apply there.

    Unidirectional, perturbing step t must also change the output from step t on: any difference
    counts (Context.assert_differs says why). When the main perturbation changes nothing, _TRIES
    larger ones are tried; when none changes anything and relu's dead zone shows in every run,
    the property is not observable for this module (NotApplicable, after the other checks held).
    For an LSTM a larger perturbation also counts when it changes the top layer's final cell state
    c_n: the step did reach the top layer, and only the output's rounding hides it (torch's own
    nn.LSTM(2, 5, num_layers=3, proj_size=1) in bfloat16, seed 739: float64 moves the output by
    3e-5 for a perturbation of 1000, bfloat16's ulp there is 5e-4, while c_n[-1] moves by 2.4e-4)."""
    spec, x, main = ctx.spec, ctx.x, ctx.main
    if spec.bidirectional and spec.num_layers > 1:
        raise NotApplicable(
            "bidirectional with num_layers > 1: every top-layer output depends on every step"
        )
    t, h = ctx.seq // 2, spec.h_out
    bumped = x.clone()
    bumped[t] = bumped[t] + ctx.randn(*bumped[t].shape, stream="causality") + 1.0
    moved = ctx.run(bumped, label=f"the main input with step {t} perturbed")
    why = f"perturbing step {t} must not change"
    ctx.assert_close(f"output[:{t}, :, :H_out]", moved.output[:t, :, :h], main.output[:t, :, :h],
                     f"{why} earlier outputs of the forward direction")
    if spec.bidirectional:
        ctx.assert_close(f"output[{t + 1}:, :, H_out:]", moved.output[t + 1:, :, h:],
                         main.output[t + 1:, :, h:], f"{why} later outputs of the backward direction")
        return
    def variant(i: int) -> torch.Tensor:
        more = x.clone()
        more[t] = more[t] + patterns()[i]
        return more

    patterns = lambda: ctx.cached("causality_patterns", lambda: sign_patterns(ctx, (ctx.batch, spec.input_size), "causality"))  # noqa: E731
    unobservable = _must_change(
        ctx, f"output[{t}:]", f"perturbing step {t} must change the output from step {t} on",
        lambda r: r.output[t:], main=main, moved=moved, seqs=range(ctx.batch),
        variant=variant, label=f"the main input with step {t} perturbed more",
        reached=(lambda r: r.c_n[-1]) if spec.has_cell and main.c_n is not None else None)
    first, p = prefix(ctx), prefix_length(ctx)  # shapes' call
    ctx.assert_close(f"output[:{p}]", first.output, main.output[:p],
                     f"a run on the first {p} steps must equal the first {p} steps of the full run")
    if unobservable:
        raise NotApplicable(unobservable)


#: batch_independence's own random stream (Context.randn): its replacements do not depend on what
#: other contracts drew before it.
_STREAM = "batch_independence"


#: batch_independence's name for the states call's copy of sequence 0 from a zero state.
COPY_OUTPUT = "the output of sequence 0's copy (the call's last sequence)"


def kept(ctx: Context) -> slice:
    """The sequences batch_independence requires unchanged: 1 .. batch - 1 of the main probe
    input, or, in the states call, those of its zero group and its whole random group (a nonzero
    h_0: a module that rescales the states by a statistic over the batch changes it)."""
    if not ctx.spec.gives_hx:
        return slice(1, ctx.batch)
    return slice(1, shared.states_input(ctx).groups["random"].stop)


def replaced_call(ctx: Context) -> tuple[Result, Result]:
    """(the call batch_independence compares with, that call with sequence 0's input replaced),
    made once per Context. For a module that takes and returns states the call is the states call
    (rnn_contracts.probes.shared), whose first ``ctx.batch`` sequences have a zero h_0, and every
    sequence after the :func:`kept` ones is replaced too, input and initial state, so a module
    that mixes sequences through their states shows, whatever it computes over the batch (a norm,
    a maximum), and its effect on the kept sequences is not diluted by the size of the states
    call. For a module that returns no states or takes no h_0, the main probe input."""
    def make() -> tuple[Result, Result]:
        spec = ctx.spec
        base = shared.states_call(ctx) if spec.gives_hx else ctx.main
        given = shared.states_input(ctx) if spec.gives_hx else None
        xs = (ctx.x if given is None else given.xs).clone()
        xs[:, 0] = ctx.randn(ctx.seq, spec.input_size, stream=_STREAM) + 0.5
        hx = None
        if given is not None:
            start, again = kept(ctx).stop, given.groups[shared.SEQUENCE_0_AGAIN]
            tail = slice(start, again.start)
            more = again.start - start
            xs[:, tail] = ctx.randn(ctx.seq, more, spec.input_size, stream=_STREAM)
            h = given.h.clone()
            h[:, tail] = ctx.state("h", batch=more, stream=_STREAM)
            c = None
            if given.c is not None:
                c = given.c.clone()
                c[:, tail] = ctx.state("c", batch=more, stream=_STREAM)
            # sequence 0's own initial state (zero in the states call: a module that reads one
            # sequence's h_0 for all, hx[0][0] for hx[0], mixes them through it alone); its new
            # input goes to the copy from a zero state too, which keeps that state
            xs[:, again] = xs[:, :1]
            h[:, :1] = ctx.state("h", batch=1, stream=_STREAM)
            if c is not None:
                c[:, :1] = ctx.state("c", batch=1, stream=_STREAM)
            hx = given.hx(h, c)
        label = ("the main input with sequence 0 replaced" if given is None else
                 f"{shared.STATES_LABEL}, sequence 0 and every sequence from {kept(ctx).stop} "
                 f"on (input and initial state) replaced, the last with sequence 0's new input "
                 f"from its zero state")
        return base, ctx.run(xs, hx, label=label)

    return ctx.cached("replaced", make)


def batch_independence(ctx: Context) -> None:
    """Changing one sequence of the batch leaves every other sequence's output and states
    unchanged (torch's recurrent layers process the sequences of a batch independently), and
    changes that sequence's output (any difference counts; when the main replacement changes
    nothing, _TRIES larger ones are tried, and relu's dead zone in every run makes the property
    not observable, as in causality). For a module that takes and returns states the batch is
    the states call (rnn_contracts.probes.shared), whose sequences carry many kinds of initial
    state, and sequence 0 is replaced together with every sequence after its random group
    (inputs and initial states: sequence 0's own h_0 is zero there, and a module that reads one
    sequence's h_0 for all mixes them through it alone): the zero group's other sequences and the
    random group must not change. The "must change" half reads the states call's last sequence,
    a copy of sequence 0 from a zero state given the same new input and keeping its state: the
    input's own effect. Where this contract holds, the other contracts read the states call's
    groups as if each had run alone."""
    spec, rest = ctx.spec, kept(ctx)
    base, moved = replaced_call(ctx)
    also = f" (and every sequence from {rest.stop} on)" if spec.gives_hx else ""
    why = f"replacing sequence 0{also} must not change the other sequences"
    where = f"[:, 1:{rest.stop}]"
    ctx.assert_close(f"output{where}", moved.output[:, rest], base.output[:, rest], why)
    for name in ("h_n", "c_n"):
        if getattr(base, name) is not None:
            ctx.assert_close(f"{name}{where}", getattr(moved, name)[:, rest], getattr(base, name)[:, rest], why)
    patterns = lambda: ctx.cached("batch_patterns", lambda: sign_patterns(ctx, (ctx.seq, spec.input_size), _STREAM))  # noqa: E731
    given = shared.states_input(ctx) if spec.gives_hx else None

    # sequence 0 must change; where its initial state was replaced too, so must its copy from a
    # zero state, which got the same new input and kept its state: the input's own effect
    slots = [0] if given is None else [0, given.groups[shared.SEQUENCE_0_AGAIN].start]
    for at in slots:
        def variant(i: int, at: int = at) -> tuple[torch.Tensor, object]:
            more = (ctx.x if given is None else given.xs).clone()
            more[:, at] = more[:, at] + patterns()[i]
            return more, None if given is None else given.hx()

        what, why = (("output[:, 0]", "replacing sequence 0 must change sequence 0's output") if at == 0 else
                     (COPY_OUTPUT, "replacing sequence 0's input must change its output from the same state"))
        unobservable = _must_change(
            ctx, what, why, lambda r, at=at: r.output[:, at], main=base, moved=moved,
            seqs=range(at, at + 1), variant=variant, label="sequence 0 changed more")
        if unobservable:
            raise NotApplicable(unobservable)
