"""The finite contract: finite inputs and states give finite outputs and states."""
from __future__ import annotations

import torch

from rnn_contracts.errors import Violation
from rnn_contracts.probes.base import Context, ProbeFailure, Result

#: h_0 scales tried besides the main call: an ordinary draw, its negative magnitude (a log-space
#: scan over log(h) breaks there), and a large one (saturation, overflow).
_STATES = (("a random h_0", 1.0, False), ("a negative h_0", 3.0, True), ("a large h_0", 30.0, False))


def _first_non_finite(result: Result) -> tuple[str, tuple[int, ...], float] | None:
    for name in ("output", "h_n", "c_n"):
        tensor = getattr(result, name)
        if tensor is None:
            continue
        bad = ~torch.isfinite(tensor.detach())
        if bool(bad.any()):
            index = tuple(int(i) for i in bad.nonzero()[0])
            return name, index, float(tensor[index])
    return None


def finite(ctx: Context) -> None:
    """For finite inputs and finite h_0 (and c_0) drawn like the other probes, negative and
    large values included, every output and state is finite (torch.nn.RNN/LSTM/GRU compute
    tanh / sigmoid / relu recurrences of finite values, which stay finite). A violation names the
    first non-finite tensor, its position and the input that produced it. The other contracts
    rely on this one: where it fails they are not run (NaN compared with NaN is no evidence)."""
    spec = ctx.spec
    calls: list[tuple[str, Result]] = [("the main probe input", ctx.main)]
    if spec.returns_states:  # a module that returns only its output may take no hx either
        for label, scale, negative in _STATES:
            h = ctx.state("h", scale=scale)
            h = -h.abs() if negative else h
            hx = (h, ctx.state("c", scale=scale)) if spec.has_cell else h
            calls.append((f"the main probe input with {label}", ctx.run(ctx.x, hx, label=label)))
    for label, result in calls:
        found = _first_non_finite(result)
        if found is not None:
            name, index, value = found
            raise ProbeFailure(Violation(
                "evidence", name, f"{value} at [{', '.join(map(str, index))}] on {label}: finite "
                "inputs and states must give finite outputs and states", position=index, actual=value))
