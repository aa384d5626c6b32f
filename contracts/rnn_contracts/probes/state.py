"""Contracts on the recurrent state: the initial state is used, and the state carries over."""
from __future__ import annotations

import torch

from rnn_contracts.probes import shared
from rnn_contracts.probes.base import (
    Context, KnownLimitation, NotApplicable, ProbeFailure, Result, require_hx,
)
from rnn_contracts.probes.temporal import dead_zone

#: torch's cuDNN kernels reject non-contiguous states with these messages (aten/src/ATen/native/
#: cudnn/RNN.cpp); the CPU path accepts them. harvardnlp/namedtensor#58, fastai/fastai2#141.
CUDNN_NONCONTIGUOUS = ("rnn: hx is not contiguous", "rnn: cx is not contiguous")


def initial_state(ctx: Context) -> None:
    """h_0 defaults to zeros (an explicit zero h_0 equals no h_0); the h_0 (and, for LSTM, the
    c_0) of EVERY layer and direction is used: a random state in one stack alone changes the
    result; a non-contiguous h_0 is accepted and gives the result of its contiguous copy
    (torch.nn.RNN docs, "h_0 ... Defaults to zeros if not provided"; stacks ordered as
    h_0.view(num_layers, D, batch, H_out); non-contiguous hx: harvardnlp/namedtensor#58).
    torch's cuDNN path (CUDA) rejects a non-contiguous h_0 with "rnn: hx is not contiguous": that
    rejection, and only that one, is reported as a known limitation, not a failure.

    The calls are shared (rnn_contracts.probes.shared): the states call holds the zero h_0 and
    the random one; the stacks call gives one stack copy after another its state, with h_0 laid
    out non-contiguously; shapes' batch-1 call has the random h_0 of that group's first sequence,
    and must equal that sequence (a module that drops h_0 at batch 1 passed everything else).
    Where batch_independence failed, the zero and non-contiguous h_0 run in calls of their own,
    and the batch-1 comparison is not made (the batched run is no run alone)."""
    require_hx(ctx)
    spec, x, main = ctx.spec, ctx.x, ctx.main
    given, merged = shared.states_input(ctx), ctx.merged()
    zero_hx = given.group_hx("zero")
    zero = shared.group(ctx, "zero") if merged else ctx.run(x, zero_hx, label="an explicit zero h_0")
    ctx.assert_close("output", zero.output, main.output, "an explicit zero h_0 must equal no h_0")
    if merged:  # shapes' batch-1 call, from the random h_0 of that sequence of the states call
        alone, within = shared.first_sequence(ctx), shared.group(ctx, "random").columns(slice(0, 1))
        ctx.assert_close("batch-1 output", alone.output, within.output,
                         "an h_0 must act at batch 1 as at any batch size")
    rejected = None
    try:
        stacks = shared.stacks_call(ctx)
    except ProbeFailure as exc:
        rejected = _cudnn_rejection(exc)
        stacks = shared.stacks_call(ctx, strided=False)  # the stacks still need checking
    states = shared.states_call(ctx)
    unobservable = [_every_stack_is_used(ctx, which, stacks, states) for which in given.stacks]
    if rejected is None and merged:
        # the stack copies differ between the two calls; every other sequence is the same
        cut = given.before_stacks()
        ctx.assert_close("output", stacks.output[:, cut], states.output[:, cut],
                         "a non-contiguous h_0 must give the result of its contiguous copy")
    elif rejected is None:
        hx = given.group_hx("random")
        contiguous = ctx.run(x, hx, label="a random h_0", key="given random")
        strided_hx = (shared.noncontiguous(hx[0]), hx[1]) if spec.has_cell else shared.noncontiguous(hx)
        try:
            strided = ctx.run(x, strided_hx, label=shared.NONCONTIGUOUS_LABEL)
        except ProbeFailure as exc:
            rejected = _cudnn_rejection(exc)
        else:
            ctx.assert_close("output", strided.output, contiguous.output,
                             "a non-contiguous h_0 must give the result of its contiguous copy")
    if rejected is not None:
        raise rejected
    if any(unobservable):
        raise NotApplicable("every other check held; " + "; ".join(r for r in unobservable if r))


def _cudnn_rejection(exc: ProbeFailure) -> KnownLimitation:
    """The known limitation when ``exc`` is torch's cuDNN rejecting a non-contiguous state;
    ``exc`` itself otherwise (raised). torch's own error has no structured form: its text is the
    only signal (the module's exception, never our rendering of it)."""
    if exc.cause is not None and any(text in str(exc.cause) for text in CUDNN_NONCONTIGUOUS):
        return KnownLimitation(
            "every other check held; a non-contiguous h_0 was rejected with torch's cuDNN error "
            "'rnn: hx is not contiguous' (torch's own layers on CUDA do the same: "
            "harvardnlp/namedtensor#58). Call .contiguous() on states you slice or transpose")
    raise exc


#: Further probe inputs tried for a stack whose state changed nothing on the first one (relu
#: only, see _every_stack_is_used), at magnitudes cycling through _INPUT_SCALES. torch's own
#: nn.RNN(1, 1, num_layers=2, nonlinearity="relu") under seed 35 ignores h_0[0] on the first
#: input, although h_0 changes its result on 85 of 100 random length-1 inputs.
_INPUTS = 8
_INPUT_SCALES = (1.0, 10.0)


def _every_stack_is_used(ctx: Context, which: str, stacks: Result, states: Result) -> str | None:
    """For every stack k (layer k // D, direction k % D), at least one of the shared.tries(ctx)
    copies of sequence 0 whose ``which``_0 is non-zero in stack k only (``stacks``, the stacks
    call) must differ from the same copy with zero states (``states``, the states call): the same
    call shape, so an exact comparison (Context.shows_change: any difference counts, zeros in
    both are no evidence) never reads another batch size's rounding as a change. Large states of both signs because a relu
    layer's dead zone can swallow a state: relu(a + u.v) == relu(a) == 0 when u.v <= -a; a sign
    pattern and its negation of magnitude shared.STACK_SCALE escape it unless u.v is near 0, and
    a relu RNN gets several patterns to make that unlikely too. tanh and sigmoid saturate at this
    scale but still move away from the zero-state result.

    A relu layer's dead zone can also sit above the stack (a later layer inactive on the probe
    input), so for a relu RNN a stack that changed nothing is tried again on _INPUTS more probe
    inputs, each in a pair of calls of its own. When none of them shows the dependence either,
    and every run of every try shows the dead zone (a layer or direction exactly 0 on every
    unit, probes.temporal.dead_zone), the property is not observable for this module: the reason
    is returned (initial_state reports it as NotApplicable once its other checks held). Anything
    else is a ProbeFailure: a tanh, GRU or LSTM module never gets a second chance, and never
    exact zeros."""
    spec = ctx.spec
    directions = spec.num_directions
    stack_count = spec.num_layers * directions
    copies = shared.tries(ctx)
    n = copies * stack_count
    one_stack = shared.states_input(ctx).stacks[which]  # the stacks call's own states

    def states_for(zero: bool) -> object:
        h, c = ctx.zero_state("h", n), (ctx.zero_state("c", n) if spec.has_cell else None)
        if not zero and which == "h":
            h = one_stack
        elif not zero:
            c = one_stack
        return ctx.as_hx(h, c)

    def runs(xs: torch.Tensor, name: str) -> tuple[Result, Result]:
        """(a state in one stack per sequence, zero states) on n copies of the one sequence xs."""
        batch = xs.repeat(1, n, 1)
        return (ctx.run(batch, states_for(False), label=f"a {which}_0 in one layer and direction per "
                        f"sequence, on {name}"),
                ctx.run(batch, states_for(True), label=f"zero states, {n} copies of {name}"))

    def flat(result: Result, j: int) -> torch.Tensor:
        """Sequence j's output and final states, as one vector."""
        parts = [t[:, j] for t in (result.output, result.h_n, result.c_n) if t is not None]
        return torch.cat([p.flatten() for p in parts])

    def changed(got: Result, zero: Result, k: int) -> bool:
        return any(ctx.shows_change(flat(got, j), flat(zero, j)) for j in range(copies * k, copies * (k + 1)))

    cut = shared.states_input(ctx).groups[f"stacks {which}"]
    tried = [(stacks.columns(cut), states.columns(cut))]
    unchanged = [k for k in range(stack_count) if not changed(*tried[0], k)]
    if unchanged and shared.is_relu(ctx):
        more = ctx.randn(ctx.seq, _INPUTS, spec.input_size)
        for i in range(_INPUTS):
            if not unchanged:
                break
            xs = more[:, i:i + 1] * _INPUT_SCALES[i % len(_INPUT_SCALES)]
            tried.append(runs(xs, f"probe input {i + 2}"))
            unchanged = [k for k in unchanged if not changed(*tried[-1], k)]
    reasons = []
    for k in unchanged:
        layer, direction = divmod(k, directions)
        where = f"layer {layer}" + (", backward direction" if direction else "") * (directions > 1)
        dead = shared.is_relu(ctx) and all(
            dead_zone(ctx, r, j) for pair in tried for r in pair
            for j in range(copies * k, copies * (k + 1)))
        if not dead:
            why = f"a given {which}_0 in {where} ({which}_0[{k}], {copies} tries) must change the result"
            raise ProbeFailure(f"{why}: output and final states did not change at any position")
        reasons.append(
            f"not observable: a {which}_0 in {where} ({which}_0[{k}]) changed nothing on "
            f"{len(tried)} probe inputs x {copies} states, and every run showed relu's dead zone "
            f"(a layer or direction exactly 0 on every unit) blocking its path")
    return "; ".join(reasons) or None


def state_carry(ctx: Context) -> None:
    """Running a sequence in two chunks, passing (h_n[, c_n]) on, equals one run: output and
    final states (the recurrence of the torch docs, h_t = f(x_t, h_{t-1})). Unidirectional only:
    a backward direction starts from the end of the whole sequence."""
    require_hx(ctx)
    spec = ctx.spec
    if spec.bidirectional:
        raise NotApplicable("bidirectional: the backward direction cannot be resumed from a chunk")
    main, t = ctx.main, shared.prefix_length(ctx)
    first, second = shared.prefix(ctx), shared.last_step(ctx)  # shapes' calls: the chunks
    why = f"two chunks (steps :{t} then {t}: with the state passed on) must equal one run"
    ctx.assert_close("output", torch.cat([first.output, second.output]), main.output, why)
    ctx.assert_close("h_n", second.h_n, main.h_n, why)
    if spec.has_cell:
        ctx.assert_close("c_n", second.c_n, main.c_n, why)


