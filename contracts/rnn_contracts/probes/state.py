"""Contracts on the recurrent state: the initial state is used, and the state carries over."""
from __future__ import annotations

import torch

from rnn_contracts.probes.base import (
    Context, KnownLimitation, NotApplicable, ProbeFailure, Result, require_states,
)
from rnn_contracts.probes.temporal import dead_zone, is_relu

#: torch's cuDNN kernels reject non-contiguous states with these messages (aten/src/ATen/native/
#: cudnn/RNN.cpp); the CPU path accepts them. harvardnlp/namedtensor#58, fastai/fastai2#141.
CUDNN_NONCONTIGUOUS = ("rnn: hx is not contiguous", "rnn: cx is not contiguous")


def _hx(ctx: Context, h: torch.Tensor, c: torch.Tensor | None) -> object:
    return (h, c) if ctx.spec.has_cell else h


def initial_state(ctx: Context) -> None:
    """h_0 defaults to zeros (an explicit zero h_0 equals no h_0); the h_0 (and, for LSTM, the
    c_0) of EVERY layer and direction is used: a random state in one stack alone changes the
    result; a non-contiguous h_0 is accepted and gives the result of its contiguous copy
    (torch.nn.RNN docs, "h_0 ... Defaults to zeros if not provided"; stacks ordered as
    h_0.view(num_layers, D, batch, H_out); non-contiguous hx: harvardnlp/namedtensor#58).
    torch's cuDNN path (CUDA) rejects a non-contiguous h_0 with "rnn: hx is not contiguous": that
    rejection, and only that one, is reported as a known limitation, not a failure."""
    require_states(ctx)
    spec, x, main = ctx.spec, ctx.x, ctx.main
    zeros_c = ctx.zero_state("c") if spec.has_cell else None
    zero = ctx.run(x, _hx(ctx, ctx.zero_state("h"), zeros_c), label="an explicit zero h_0")
    ctx.assert_close("output", zero.output, main.output, "an explicit zero h_0 must equal no h_0")
    unobservable = [_every_stack_is_used(ctx, "h")]
    if spec.has_cell:
        unobservable.append(_every_stack_is_used(ctx, "c"))
    h0 = ctx.cached("h0", lambda: ctx.state("h"))
    given = ctx.run(x, _hx(ctx, h0, zeros_c), label="a random h_0", key="given_h0")
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
        # torch's own error has no structured form: its text is the only signal (the module's
        # exception, never our rendering of it).
        if exc.cause is not None and any(text in str(exc.cause) for text in CUDNN_NONCONTIGUOUS):
            raise KnownLimitation(
                "every other check held; a non-contiguous h_0 was rejected with torch's cuDNN error "
                "'rnn: hx is not contiguous' (torch's own layers on CUDA do the same: "
                "harvardnlp/namedtensor#58). Call .contiguous() on states you slice or transpose"
            ) from exc
        raise
    ctx.assert_close("output", strided.output, given.output,
                     "a non-contiguous h_0 must give the result of its contiguous copy")
    if any(unobservable):
        raise NotApplicable("every other check held; " + "; ".join(r for r in unobservable if r))


#: Initial states tried per layer and direction: _TRIES // 2 random sign patterns of magnitude
#: _SCALE, each with its negation (see _every_stack_is_used). 1000: a relu unit whose recurrent weight is
#: 0.03 and whose input drives it to -1.5 at the first step (torch.nn.RNN(4, 1, "relu") under
#: seed 8 does) still comes alive; 10 did not. Safe in float16 (max 65504).
_TRIES = 8
_SCALE = 1000.0
#: Further probe inputs tried for a stack whose state changed nothing on the first one (relu
#: only, see _every_stack_is_used), at magnitudes cycling through _INPUT_SCALES. torch's own
#: nn.RNN(1, 1, num_layers=2, nonlinearity="relu") under seed 35 ignores h_0[0] on the first
#: input, although h_0 changes its result on 85 of 100 random length-1 inputs.
_INPUTS = 8
_INPUT_SCALES = (1.0, 10.0)


def _every_stack_is_used(ctx: Context, which: str) -> str | None:
    """One batched call: each group of _TRIES sequences is sequence 0 of the probe input, with a
    ``which``_0 that is non-zero in stack k only (layer k // D, direction k % D). For every stack,
    at least one try must differ from the same batch run with zero initial states: the same call
    shape, so an exact comparison (Context.assert_differs: any difference counts) never reads
    another batch size's rounding as a change. Several large tries because a relu layer's dead
    zone can swallow a state: relu(a + u.v) == relu(a) == 0 when u.v <= -a; a sign pattern and
    its negation of magnitude _SCALE escape it unless u.v is near 0, and several patterns make
    that unlikely too. tanh and sigmoid saturate at this scale but still move away from the
    zero-state result.

    A relu layer's dead zone can also sit above the stack (a later layer inactive on the probe
    input), so for a relu RNN a stack that changed nothing is tried again on _INPUTS more probe
    inputs. When none of them shows the dependence either, and every run of every try shows the
    dead zone (a layer or direction exactly 0 on every unit, probes.temporal.dead_zone), the
    property is not observable for this module: the reason is returned (initial_state reports it
    as NotApplicable once its other checks held). Anything else is a ProbeFailure: a tanh, GRU or
    LSTM module never gets a second chance, and never exact zeros."""
    spec = ctx.spec
    directions = spec.num_directions
    stacks = spec.num_layers * directions
    n = _TRIES * stacks
    patterns = ctx.state(which, batch=stacks * _TRIES // 2).sign() * _SCALE

    def states(zero: bool) -> object:
        h, c = ctx.zero_state("h", n), (ctx.zero_state("c", n) if spec.has_cell else None)
        target = h if which == "h" else c
        assert target is not None
        if not zero:
            for k in range(stacks):
                for t in range(_TRIES // 2):
                    pattern = patterns[k, k * _TRIES // 2 + t]
                    target[k, _TRIES * k + 2 * t] = pattern
                    target[k, _TRIES * k + 2 * t + 1] = -pattern
        return _hx(ctx, h, c)

    def runs(xs: torch.Tensor, name: str) -> tuple[Result, Result]:
        """(a state in one stack per sequence, zero states) on n copies of the one sequence xs."""
        batch = xs.repeat(1, n, 1)
        return (ctx.run(batch, states(False), label=f"a {which}_0 in one layer and direction per "
                        f"sequence, on {name}"),
                ctx.run(batch, states(True), label=f"zero states, {n} copies of {name}",
                        key=f"stacks_zero:{name}"))

    def flat(result: Result, j: int) -> torch.Tensor:
        """Sequence j's output and final states, as one vector."""
        parts = [t[:, j] for t in (result.output, result.h_n, result.c_n) if t is not None]
        return torch.cat([p.flatten() for p in parts])

    def changed(got: Result, zero: Result, k: int) -> bool:
        for j in range(_TRIES * k, _TRIES * (k + 1)):
            try:
                ctx.assert_differs("output and final states", flat(got, j), flat(zero, j), "")
                return True
            except ProbeFailure:
                continue
        return False

    tried = [runs(ctx.x[:, :1], "sequence 0 of the probe input")]
    unchanged = [k for k in range(stacks) if not changed(*tried[0], k)]
    if unchanged and is_relu(ctx):
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
        dead = is_relu(ctx) and all(
            dead_zone(ctx, r, j) for pair in tried for r in pair
            for j in range(_TRIES * k, _TRIES * (k + 1)))
        if not dead:
            why = f"a given {which}_0 in {where} ({which}_0[{k}], {_TRIES} tries) must change the result"
            raise ProbeFailure(f"{why}: output and final states did not change at any position")
        reasons.append(
            f"not observable: a {which}_0 in {where} ({which}_0[{k}]) changed nothing on "
            f"{len(tried)} probe inputs x {_TRIES} states, and every run showed relu's dead zone "
            f"(a layer or direction exactly 0 on every unit) blocking its path")
    return "; ".join(reasons) or None


def state_carry(ctx: Context) -> None:
    """Running a sequence in two chunks, passing (h_n[, c_n]) on, equals one run: output and
    final states (the recurrence of the torch docs, h_t = f(x_t, h_{t-1})). Unidirectional only:
    a backward direction starts from the end of the whole sequence."""
    require_states(ctx)
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


