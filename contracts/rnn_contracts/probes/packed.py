"""Packed sequences: torch.nn.utils.rnn.pack_padded_sequence in, PackedSequence out."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnn_contracts.probes.base import Context, NotApplicable, ProbeFailure, Result
from rnn_contracts.probes.shared import group, prefix, prefix_length, states_input

#: Padding for pad_packed_sequence: a value no real output takes, so a padded position read as
#: data by mistake would stand out in the evidence.
PADDING_VALUE = -7.0


def longest(ctx: Context) -> int:
    """The sequence the packed call makes the longest (the others are one step shorter): the
    last, so that enforce_sorted=False moves it first and every other one place on, a
    permutation that is not its own inverse (placed second, sorted_indices equalled
    unsorted_indices, and an h_0 reordered by the wrong one of them passed: a review)."""
    return ctx.batch - 1


def _initial_state(ctx: Context) -> object:
    """The packed call's h_0 (and c_0), in the batch's original order, for a module given states:
    the longest sequence's from the states call's random group (its own sequence there), zeros
    for the others; None for a module given none."""
    if not ctx.spec.gives_hx:
        return None
    given, at = states_input(ctx), longest(ctx)
    states = []
    for which, source in (("h", given.h), ("c", given.c)):
        if source is not None:
            state = ctx.zero_state(which)
            state[:, at] = source[:, given.groups["random"].start + at]
            states.append(state)
    return ctx.as_hx(states[0], states[1] if len(states) > 1 else None)


def _zero_h0_is_none(ctx: Context) -> bool:
    """Whether the module gives an explicit zero h_0 the result of none (initial_state's first
    check, read off the shared calls, within tolerance): only then may the prefix run, which has
    no h_0, stand for the packed call's short sequences, which have zeros. A module that starts
    from a learned state without h_0 fails initial_state for that, and packed must not as well."""
    zero, main = group(ctx, "zero"), ctx.main
    try:  # the kit's one rule of closeness (Context.assert_close), its failure read as "no"
        for name in ("output", "h_n", "c_n"):
            if getattr(zero, name) is not None:
                ctx.assert_close(name, getattr(zero, name), getattr(main, name), "zero h_0 against none")
    except ProbeFailure:
        return False
    return True


def _columns(ctx: Context, hx: object, idx: list[int]) -> object:
    """The sequences ``idx`` of an initial state (contiguous), or None."""
    if hx is None:
        return None
    parts = hx if isinstance(hx, tuple) else (hx,)
    cut = [p[:, idx].contiguous() for p in parts]
    return ctx.as_hx(cut[0], cut[1] if len(cut) > 1 else None)


def packed(ctx: Context) -> None:
    """Packed in gives packed out (same batch_sizes and sorted/unsorted indices); h_n (and c_n) is
    the state at each sequence's last valid step; each sequence's outputs equal running it alone,
    compared in the original order after pad_packed_sequence (torch.nn.utils.rnn docs; lengths
    are a CPU int64 tensor, pytorch/pytorch#43227). A module given states gets an h_0 (and c_0)
    with the packed input, in the batch's original order, as torch's layers take it (they
    permute it by sorted_indices): random for the longest sequence, which enforce_sorted=False
    moves first, zero for the others, so a packed branch that drops h_0 or forgets to reorder it
    shows. That padded positions hold padding_value and that enforce_sorted=False restores the
    order follow from the batch_sizes and index checks: pad_packed_sequence does both itself.
    Sequences of equal length run alone together: once batch_independence held, the lengths are
    those of calls other contracts make anyway (the prefix, and the main probe input or its
    random-h_0 group of the states call, rnn_contracts.probes.shared), read there."""
    spec, x = ctx.spec, ctx.x
    if not spec.packed:
        raise NotApplicable("the spec declares no PackedSequence support (RNNSpec.packed=False)")
    # Unsorted lengths, the longest last, so enforce_sorted=False must reorder (see longest).
    short, at = prefix_length(ctx), longest(ctx)
    lengths = [ctx.seq if b == at else short for b in range(ctx.batch)]
    hx = _initial_state(ctx)
    whole: Callable[[Context], Result] = (lambda c: c.main) if hx is None else (lambda c: group(c, "random"))
    shared_runs: dict[int, Callable[[Context], Result]] = {}
    if ctx.merged():
        shared_runs[ctx.seq] = whole
        if hx is None or _zero_h0_is_none(ctx):
            shared_runs[short] = prefix
    lengths_t = torch.tensor(lengths, dtype=torch.int64)
    packed_in = pack_padded_sequence(ctx.feed(x), lengths_t, batch_first=spec.batch_first,
                                     enforce_sorted=False)
    given = "" if hx is None else f", sequence {at} from a random h_0"
    raw = ctx.call(packed_in, hx, label=f"a PackedSequence with lengths {lengths}{given}")
    got = ctx.split(raw, batched=False)
    if not isinstance(got.output, PackedSequence):
        raise ProbeFailure(f"a PackedSequence in must give a PackedSequence out, got {type(got.output).__name__}")
    for attr in ("batch_sizes", "sorted_indices", "unsorted_indices"):
        a, b = getattr(got.output, attr), getattr(packed_in, attr)
        if (a is None) != (b is None) or (a is not None and not torch.equal(a.cpu(), b.cpu())):
            raise ProbeFailure(f"the output PackedSequence's {attr} differ from the input's")
    # With batch_sizes and both index tensors equal to the input's (checked above),
    # pad_packed_sequence itself writes padding_value after each length and restores the
    # original order: asserting either here could never fail (a review mutation-tested it).
    padded, _ = pad_packed_sequence(got.output, batch_first=spec.batch_first,
                                    padding_value=PADDING_VALUE, total_length=ctx.seq)
    padded = padded.transpose(0, 1) if spec.batch_first else padded
    same = "" if hx is None else " from the same h_0"
    for n in sorted(set(lengths)):
        idx = [b for b, m in enumerate(lengths) if m == n]
        alone = (shared_runs[n](ctx).columns(idx) if n in shared_runs
                 else ctx.run(x[:n, idx], _columns(ctx, hx, idx), label=f"the sequences of length {n} alone"))
        why = f"sequences {idx} (length {n}) packed must equal running them alone{same}"
        ctx.assert_close(f"output[:{n}, {idx}]", padded[:n, idx], alone.output, why)
        if got.h_n is not None:
            ctx.assert_close(f"h_n[:, {idx}]", got.h_n[:, idx], alone.h_n,
                             why + "; h_n is the state at each sequence's last valid step")
        if got.c_n is not None:
            ctx.assert_close(f"c_n[:, {idx}]", got.c_n[:, idx], alone.c_n, why)
