"""Contracts on the structure of a call: shapes, final states, unbatched input."""
from __future__ import annotations

import torch

from rnn_contracts.checks import check_forward
from rnn_contracts.errors import ContractViolation, Violation
from rnn_contracts.diagnose import describe_input, first_line
from rnn_contracts.probes.base import Context, NotApplicable, ProbeFailure, require_states


def shapes(ctx: Context) -> None:
    """Shapes, dtype and device of the output and every state (torch.nn.RNN/LSTM/GRU "Inputs" and
    "Outputs"), checked by check_forward over several (batch, seq) sizes where no two dimensions
    coincide, plus batch 1 and seq 1, with and without h_0."""
    spec = ctx.spec
    x = ctx.x
    sizes = [("the main probe input", x), ("batch 1", x[:, :1]), ("seq 1", x[:1])]
    bigger = ctx.randn(ctx.seq + 2, ctx.batch + 2, spec.input_size)
    sizes.append(("a second (batch, seq) size", bigger))
    hx = ctx.state("h")
    if spec.has_cell:
        hx = (hx, ctx.state("c"))
    for label, xs in sizes:
        _check(ctx, label, xs)
    if spec.returns_states:  # a module that returns only its output may take no hx either
        _check(ctx, "the main probe input with h_0", x, hx)


def _check(ctx: Context, label: str, xs: torch.Tensor, hx: object = None) -> None:
    x = ctx.feed(xs)
    try:
        check_forward(ctx.module, x, hx, spec=ctx.spec)
    except ContractViolation as exc:
        raise ProbeFailure(Violation("evidence", detail=f"on {label}: {exc.title}",
                                     causes=tuple(exc.violations))) from exc
    except Exception as exc:
        raise ProbeFailure(
            f"the module raised {type(exc).__name__} on {label} ({describe_input(x, hx)}): "
            f"{first_line(exc)}", cause=exc
        ) from exc


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
    """2-D (seq, dim) input gives 2-D (seq, D*H_out) output and (num_layers*D, H_out) states, equal to
    the batched run with batch 1 (torch.nn.RNN docs: unbatched input, pytorch/pytorch PR #70442)."""
    spec = ctx.spec
    if not spec.unbatched:
        raise NotApplicable("the spec declares no unbatched support (RNNSpec.unbatched=False)")
    xs = ctx.x[:, :1]
    single = xs[:, 0]
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
    batched = ctx.run(xs, label="batch 1", key="batch1")
    why = "an unbatched run must equal the batched run with batch 1"
    ctx.assert_close("unbatched output", got.output, batched.output[:, 0], why)
    for name in ("h_n", "c_n"):
        if name in want:
            ctx.assert_close(f"unbatched {name}", getattr(got, name), getattr(batched, name)[:, 0], why)
