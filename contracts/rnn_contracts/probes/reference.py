"""Reference equivalence: a module whose weights load into the torch layer its spec describes
must compute what that layer computes."""
from __future__ import annotations

import torch

from rnn_contracts.probes.base import Context, NotApplicable
from rnn_contracts.spec import RNNSpec


def build_reference(spec: RNNSpec) -> torch.nn.RNNBase:
    """The torch layer ``spec`` describes (dropout 0: probes run in eval mode anyway)."""
    kwargs = dict(num_layers=spec.num_layers, bias=spec.bias, batch_first=spec.batch_first,
                  bidirectional=spec.bidirectional)
    if spec.mode == "RNN":
        return torch.nn.RNN(spec.input_size, spec.hidden_size, nonlinearity=spec.nonlinearity, **kwargs)
    if spec.mode == "LSTM":
        return torch.nn.LSTM(spec.input_size, spec.hidden_size, proj_size=spec.proj_size, **kwargs)
    return torch.nn.GRU(spec.input_size, spec.hidden_size, **kwargs)


def reference(ctx: Context) -> None:
    """When the module's state_dict loads strictly into the torch layer the spec describes, its
    outputs and states equal that layer's within the dtype's tolerance, with and without h_0
    (catches a wrong gate order or nonlinearity in a hand-written cell)."""
    spec = ctx.spec
    if not isinstance(ctx.module, torch.nn.Module):  # verify_rnn accepts any callable
        raise NotApplicable(f"{type(ctx.module).__name__} is not a torch.nn.Module: no state_dict to load")
    # Moved to the device and dtype under test BEFORE loading: loading first copies the weights
    # into the reference's float32 parameters, and a float64 module then differs from its own
    # weights rounded to float32 by more than float64's tolerance (a false positive).
    ref = build_reference(spec).to(device=ctx.device, dtype=ctx.dtype)
    state = ctx.module.state_dict()
    try:
        ref.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        keys = ", ".join(sorted(state)[:4]) or "no parameters"
        raise NotApplicable(
            f"the state_dict ({keys}{', ...' if len(state) > 4 else ''}) does not load strictly into "
            f"torch.nn.{spec.mode}: {str(exc).splitlines()[0]}"
        ) from None
    ref = ref.eval()
    h0 = ctx.cached("h0", lambda: ctx.state("h"))
    hx = (h0, ctx.zero_state("c")) if spec.has_cell else h0
    runs = [("no h_0", ctx.main, None), ("a random h_0", ctx.run(ctx.x, hx, label="a random h_0", key="given_h0"), hx)]
    for label, got, given in runs:
        with torch.no_grad():
            raw = ref(ctx.feed(ctx.x)) if given is None else ref(ctx.feed(ctx.x), given)
        want = ctx.split(raw)
        why = f"with {label} the module must compute what torch.nn.{spec.mode} computes with its weights"
        ctx.assert_close("output", got.output, want.output, why)
        ctx.assert_close("h_n", got.h_n, want.h_n, why)
        if spec.has_cell:
            ctx.assert_close("c_n", got.c_n, want.c_n, why)
