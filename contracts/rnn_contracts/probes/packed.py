"""Packed sequences: torch.nn.utils.rnn.pack_padded_sequence in, PackedSequence out."""
from __future__ import annotations

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnn_contracts.probes.base import Context, NotApplicable, ProbeFailure
from rnn_contracts.probes.shared import prefix, prefix_length

#: Padding for pad_packed_sequence: a value no real output takes, so a padded position read as
#: data by mistake would stand out in the evidence.
PADDING_VALUE = -7.0


def packed(ctx: Context) -> None:
    """Packed in gives packed out (same batch_sizes and sorted/unsorted indices); h_n (and c_n) is
    the state at each sequence's last valid step; each sequence's outputs equal running it alone,
    compared in the original order after pad_packed_sequence (torch.nn.utils.rnn docs; lengths
    are a CPU int64 tensor, pytorch/pytorch#43227). That padded positions hold padding_value and
    that enforce_sorted=False restores the order follow from the batch_sizes and index checks:
    pad_packed_sequence does both itself. Sequences of equal length run alone together: once
    batch_independence held, the lengths are those of calls other contracts make anyway (the
    prefix and the whole main probe input, rnn_contracts.probes.shared), read there."""
    spec, x = ctx.spec, ctx.x
    if not spec.packed:
        raise NotApplicable("the spec declares no PackedSequence support (RNNSpec.packed=False)")
    # Unsorted lengths, longest in the middle, so enforce_sorted=False must reorder.
    short = prefix_length(ctx)
    lengths = [short, ctx.seq] + [short] * (ctx.batch - 2)
    shared_runs = {short: prefix, ctx.seq: lambda c: c.main} if ctx.merged() else {}
    lengths_t = torch.tensor(lengths, dtype=torch.int64)
    packed_in = pack_padded_sequence(ctx.feed(x), lengths_t, batch_first=spec.batch_first,
                                     enforce_sorted=False)
    raw = ctx.call(packed_in, label=f"a PackedSequence with lengths {lengths}")
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
    for n in sorted(set(lengths)):
        idx = [b for b, m in enumerate(lengths) if m == n]
        alone = (shared_runs[n](ctx).columns(idx) if n in shared_runs
                 else ctx.run(x[:n, idx], label=f"the sequences of length {n} alone"))
        why = f"sequences {idx} (length {n}) packed must equal running them alone"
        ctx.assert_close(f"output[:{n}, {idx}]", padded[:n, idx], alone.output, why)
        if got.h_n is not None:
            ctx.assert_close(f"h_n[:, {idx}]", got.h_n[:, idx], alone.h_n,
                             why + "; h_n is the state at each sequence's last valid step")
        if got.c_n is not None:
            ctx.assert_close(f"c_n[:, {idx}]", got.c_n[:, idx], alone.c_n, why)
