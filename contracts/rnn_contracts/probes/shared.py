"""The module calls several contracts read, each made once per Context.

verify_rnn makes about a dozen module calls on a unidirectional module: contracts that need the
same call share it, and probes that need the same sequence length share one call, side by side
along the batch.

* ``main`` (the main probe input) and, right after it, the repeat (the same input again, watched
  for writes: :func:`repeat_call`): determinism compares the two, and a module that keeps a
  state from call to call starts the repeat from the main call's, whatever it keys it on.
* ``batch1`` (its first sequence, from the states call's random h_0 of that sequence where the
  module is given states), ``prefix`` (its first seq - 1 steps) and ``last step`` (its last step,
  from the prefix's final state): shapes checks each, and the two above (so batch 1 and seq 1
  are covered); the other contracts read them (the prefix and last step are state_carry's two
  chunks, the prefix is causality's and packed's shorter length, batch1 initial_state's h_0 at
  batch 1 and the batched partner of unbatched's call with h_0).
* the states call: the main probe input under several initial states, side by side
  (:class:`StatesInput`): an explicit zero, a random, a negative and a large h_0 (and c_0), then,
  for each layer and direction, copies of sequence 0 with zero states, and one more copy of
  sequence 0 from a zero state (batch_independence's). shapes checks it with hx,
  finite reads its random, negative and large groups, initial_state its zero group, reference
  and cell_equivalence its random group, unbatched that group's first sequence,
  inputs_untouched whether it wrote into its states.
* the stacks call (:func:`stacks_call`): the same input with h_0 laid out non-contiguously and
  each stack copy given a state in one layer and direction: initial_state compares it with the
  states call, exactly on the stack copies (the same call shape, so any difference is the
  state's effect) and within tolerance on the rest (a non-contiguous h_0 gives the result of its
  contiguous copy).

Reading a group's sequences out of a shared call as if they had run alone relies on the module
keeping the sequences of a batch apart: a probe does so only once batch_independence held
(:meth:`Context.merged`) and makes its own call otherwise. The one reading that needs no gate is
initial_state's per-stack check: it compares the stack copies of the stacks call with the same
copies of the states call, two calls of one shape that differ only in those copies' states
(and h_0's layout), so a difference is the states' effect whether or not the module mixes them.
Exact comparisons are only ever made between two calls of the same shape.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from rnn_contracts.probes.base import MAIN_LABEL, Context, Result, first_written, values_before

#: The labels the shared calls go by in evidence (the main call's is base.MAIN_LABEL).
STATES_LABEL = "the main probe input under several h_0 side by side"
REPEAT_LABEL = f"{MAIN_LABEL}, a second time"
NONCONTIGUOUS_LABEL = "a non-contiguous h_0"

#: finite's initial states besides none: an ordinary draw, its negative magnitude (a log-space scan
#: over log(h) breaks there), and a large one (saturation, overflow): (group, label, scale, negated).
FINITE_STATES = (("random", "a random h_0", 1.0, False), ("negative", "a negative h_0", 3.0, True),
                 ("large", "a large h_0", 30.0, False))

#: Initial states tried per layer and direction on a relu RNN: RELU_TRIES // 2 random sign
#: patterns of magnitude STACK_SCALE, each with its negation (state.py says why). 1000: a relu
#: unit whose recurrent weight is 0.03 and whose input drives it to -1.5 at the first step
#: (torch.nn.RNN(4, 1, "relu") under seed 8 does) still comes alive; 10 did not. Safe in float16
#: (max 65504).
RELU_TRIES = 8
#: tanh, GRU and LSTM have no dead zone: one sign pattern and its negation. At STACK_SCALE a tanh
#: or gate saturates one way for the pattern and the other way for its negation, so at least one
#: of the two moves every state it reaches away from the zero-state result.
TRIES = 2
STACK_SCALE = 1000.0


#: The states call's last group: a copy of sequence 0 from a zero state (see states_input).
SEQUENCE_0_AGAIN = "sequence 0 again"


def is_relu(ctx: Context) -> bool:
    """Whether the spec is an RNN with nonlinearity="relu", the only layer with a dead zone."""
    return ctx.spec.mode == "RNN" and ctx.spec.nonlinearity == "relu"


def tries(ctx: Context) -> int:
    """Stack copies per layer and direction: more for relu's dead zone."""
    return RELU_TRIES if is_relu(ctx) else TRIES


#: A check of a call's raw result before anything reads it (shapes passes one): see Context.run.
Check = Callable[[Any, Any, Any, str], None]


@dataclass(frozen=True)
class Repeat:
    """The repeat call: ``result``, and the tensor it got or the module holds that it changed in
    place first (None: none), by the names inputs_untouched reports."""

    result: Result
    written: str | None


def repeat_call(ctx: Context, check: Check | None = None) -> Repeat:
    """The call determinism and inputs_untouched read (made once per Context, by shapes right
    after the main call): the main probe input once more, no h_0, as a fresh tensor, watched: x,
    and the module's parameters and buffers (buffers only when the spec does not declare
    ``updates_buffers``), by value and version counter."""
    def make() -> Repeat:
        x = ctx.feed(ctx.x)
        tensors = {"x": x}
        if isinstance(ctx.module, torch.nn.Module):  # verify_rnn accepts any callable
            tensors.update({f"parameter {n}": p for n, p in ctx.module.named_parameters()})
            if not ctx.spec.updates_buffers:
                tensors.update({f"buffer {n}": b for n, b in ctx.module.named_buffers()})
        saved = getattr(ctx, "saved", None)
        before = {name: values_before(t, saved if name != "x" else None) for name, t in tensors.items()}
        label = REPEAT_LABEL
        raw = ctx.call(x, label=label)
        if check is not None:
            check(x, None, raw, label)
        return Repeat(ctx.split(raw), first_written(tensors, before))

    return ctx.cached("repeat", make)


def prefix_length(ctx: Context) -> int:
    """The prefix's length: all steps but the last (pick_sizes never chooses seq < 4)."""
    return ctx.seq - 1


def first_sequence(ctx: Context, check: Check | None = None) -> Result:
    """The main probe input's first sequence, (seq, 1, input_size), from the states call's random
    h_0 (and c_0) of its first sequence where the module is given states (``spec.gives_hx``):
    initial_state compares it with that sequence of the states call (a module that drops h_0 at
    batch 1 shows), unbatched with its call from the same unbatched h_0."""
    hx = states_input(ctx).first_hx("random") if ctx.spec.gives_hx else None
    label = "batch 1 with a random h_0" if hx is not None else "batch 1"
    return ctx.run(ctx.x[:, :1], hx, label=label, key="batch1", check=check)


def prefix(ctx: Context, check: Check | None = None) -> Result:
    """The main probe input's first seq - 1 steps, no h_0."""
    t = prefix_length(ctx)
    return ctx.run(ctx.x[:t], label=f"the first {t} steps", key="prefix", check=check)


def last_step(ctx: Context, check: Check | None = None) -> Result:
    """The main probe input's last step (seq 1), from the prefix's final states (no h_0 for a
    module that returns none)."""
    t, first = prefix_length(ctx), prefix(ctx)
    carried = None
    if ctx.spec.gives_hx:
        carried = ctx.as_hx(first.h_n, first.c_n)
    label = f"step {t} with the carried state" if carried is not None else f"step {t} alone"
    return ctx.run(ctx.x[t:], carried, label=label, key="last step", check=check)


def one_stack_states(ctx: Context, which: str, copies: int) -> torch.Tensor:
    """``which``_0 for ``copies`` sequences per layer and direction: sequence ``copies * k + i`` is
    zero in every stack but k, where it holds sign pattern i // 2 of magnitude STACK_SCALE (odd i:
    its negation)."""
    stacks = ctx.spec.num_layers * ctx.spec.num_directions
    patterns = ctx.state(which, batch=stacks * copies // 2).sign() * STACK_SCALE
    states = ctx.zero_state(which, stacks * copies)
    for k in range(stacks):
        for t in range(copies // 2):
            pattern = patterns[k, k * copies // 2 + t]
            states[k, copies * k + 2 * t] = pattern
            states[k, copies * k + 2 * t + 1] = -pattern
    return states


def noncontiguous(state: torch.Tensor) -> torch.Tensor:
    """The same values laid out batch-major in memory AND with a stride of 2 on the last axis:
    the transpose alone is still contiguous when an axis has size 1; the stride never is."""
    stacks, batch, size = state.shape
    wide = torch.zeros(batch, stacks, 2 * size, dtype=state.dtype, device=state.device)
    wide[..., ::2] = state.transpose(0, 1)
    strided = wide.transpose(0, 1)[..., ::2]
    if strided.is_contiguous():  # pragma: no cover - a stride-2 view never is
        raise AssertionError("internal: the non-contiguous h_0 probe built a contiguous tensor")
    return strided


@dataclass(frozen=True)
class StatesInput:
    """The states call's input, seq-first: ``xs`` (seq, N, input_size), ``h``/``c`` (stacks, N, H)
    with zero states on the stack copies; ``groups`` names each group's sequences (the main
    probe input's groups first, then the stack copies: :meth:`before_stacks`); ``stacks``
    holds, per state (``"h"``, ``"c"``), the one-stack states the stacks call gives its copies."""

    xs: torch.Tensor
    h: torch.Tensor
    c: torch.Tensor | None
    groups: dict[str, slice]
    stacks: dict[str, torch.Tensor]

    def hx(self, h: torch.Tensor | None = None, c: torch.Tensor | None = None) -> object:
        """(h, c) for an LSTM, h otherwise: these, or the states call's own."""
        h = self.h if h is None else h
        return h if self.c is None else (h, self.c if c is None else c)

    def before_stacks(self) -> slice:
        """The sequences of the main probe input's groups (every group but the stack copies)."""
        return slice(0, min(cut.start for name, cut in self.groups.items() if name.startswith("stacks")))

    def group_hx(self, group: str) -> object:
        """One group's initial state, as if it had run alone: contiguous (a slice of the batch
        axis is not, where there are several stacks, and cuDNN rejects a non-contiguous h_0)."""
        return self._columns_hx(self.groups[group])

    def first_hx(self, group: str) -> object:
        """The initial state of one group's first sequence, as a batch of one (contiguous)."""
        start = self.groups[group].start
        return self._columns_hx(slice(start, start + 1))

    def _columns_hx(self, cut: slice) -> object:
        return self.hx(self.h[:, cut].contiguous(), None if self.c is None else self.c[:, cut].contiguous())


def states_input(ctx: Context) -> StatesInput:
    """The states call's input (built once; draws from the probe generator)."""
    def make() -> StatesInput:
        spec, x, batch = ctx.spec, ctx.x, ctx.batch
        # the zero group first: batch_independence replaces its sequence 0's input, which then
        # runs as without h_0 (rnn_contracts.probes.temporal)
        hs, cs = [ctx.zero_state("h")], [ctx.zero_state("c") if spec.has_cell else None]
        groups = {"zero": slice(0, batch)}
        for group, _, scale, negated in FINITE_STATES:
            h = ctx.state("h", scale=scale)
            hs.append(-h.abs() if negated else h)
            cs.append(ctx.state("c", scale=scale) if spec.has_cell else None)
            groups[group] = slice(batch * len(groups), batch * (len(groups) + 1))
        start, copies, stacks = batch * len(groups), tries(ctx), {}
        for which in ("h", "c") if spec.has_cell else ("h",):
            stacks[which] = one_stack_states(ctx, which, copies)
            n = stacks[which].shape[1]
            groups[f"stacks {which}"] = slice(start, start + n)
            start += n
            hs.append(ctx.zero_state("h", n))
            cs.append(ctx.zero_state("c", n) if spec.has_cell else None)
        # last, sequence 0 once more from a zero state: batch_independence replaces sequence 0's
        # initial state with its input, and this copy's input alone (its "must change" half)
        groups[SEQUENCE_0_AGAIN] = slice(start, start + 1)
        start += 1
        hs.append(ctx.zero_state("h", 1))
        cs.append(ctx.zero_state("c", 1) if spec.has_cell else None)
        main_groups = 1 + len(FINITE_STATES)
        xs = torch.cat([x] * main_groups + [x[:, :1].expand(-1, start - batch * main_groups, -1)], dim=1)
        h = torch.cat(hs, dim=1)
        c = torch.cat(cs, dim=1) if spec.has_cell else None  # type: ignore[arg-type]
        return StatesInput(xs, h, c, groups, stacks)

    return ctx.cached("states input", make)


def states_call(ctx: Context, check: Check | None = None) -> Result:
    """The states call, on copies of the states (made once per Context); whether it wrote into
    them is kept for inputs_untouched (:func:`states_written`)."""
    def make() -> Result:
        given = states_input(ctx)
        states = {"h_0": given.h.clone()}
        if given.c is not None:
            states["c_0"] = given.c.clone()
        before = {name: values_before(t) for name, t in states.items()}
        result = ctx.run(given.xs, given.hx(states["h_0"], states.get("c_0")), label=STATES_LABEL,
                         check=check, own_hx=True)  # its own copies: read for writes afterwards
        ctx.cached("states written", lambda: first_written(states, before))
        return result

    return ctx.cached("states", make)


def states_written(ctx: Context) -> str | None:
    """The state the states call changed in place ("h_0", "c_0"), or None."""
    states_call(ctx)
    return ctx.cached("states written", lambda: None)


def stacks_call(ctx: Context, *, strided: bool = True) -> Result:
    """The states call's input with each stack copy given its one-stack state, and h_0 laid out
    non-contiguously (``strided=False``: contiguous, where the device rejects that layout)."""
    given = states_input(ctx)
    h, c = given.h.clone(), None if given.c is None else given.c.clone()
    for which, states in given.stacks.items():
        target = h if which == "h" else c
        assert target is not None
        target[:, given.groups[f"stacks {which}"]] = states
    hx = given.hx(noncontiguous(h) if strided else h, c)
    label = NONCONTIGUOUS_LABEL if strided else "one layer's state at a time"
    return ctx.run(given.xs, hx, label=label, key=f"stacks:{strided}")


def group(ctx: Context, name: str) -> Result:
    """One group of the states call, as if it had run alone (see Context.merged)."""
    return states_call(ctx).columns(states_input(ctx).groups[name])


def random_state_run(ctx: Context, label: str = "a random h_0") -> tuple[Result, object]:
    """The main probe input with the states call's random h_0 (and c_0), and that state: its group
    of the states call once batch_independence held, else a call of its own."""
    hx = states_input(ctx).group_hx("random")
    if ctx.merged():
        return group(ctx, "random"), hx
    return ctx.run(ctx.x, hx, label=label, key="given random"), hx
