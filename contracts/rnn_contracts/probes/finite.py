"""The finite contract: finite inputs and states give finite outputs and states."""
from __future__ import annotations

import torch

from rnn_contracts.errors import Violation
from rnn_contracts.probes import shared
from rnn_contracts.probes.base import MAIN_LABEL, Context, ProbeFailure, Result


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


def _all_finite(result: Result) -> bool:
    """Whether every value of the output and states is finite (one reduction each)."""
    return all(bool(torch.isfinite(t).all()) for t in (result.output, result.h_n, result.c_n) if t is not None)


def finite(ctx: Context) -> None:
    """For finite inputs and finite h_0 (and c_0) drawn like the other probes, negative and
    large values included (shared.FINITE_STATES), every output and state is finite (torch.nn.RNN/LSTM/GRU compute
    tanh / sigmoid / relu recurrences of finite values, which stay finite). A violation names the
    first non-finite tensor, its position and the input that produced it. The other contracts
    rely on this one: where it fails they are not run (NaN compared with NaN is no evidence)."""
    calls: list[tuple[str, Result]] = [(MAIN_LABEL, ctx.main)]
    if ctx.spec.gives_hx:  # a module that takes no hx, or returns only its output, gets none
        # each initial state's group of the states call once batch_independence held (a module
        # that mixes sequences through their states could hide one group's overflow behind
        # another's values), else a call of its own
        merged, given = ctx.merged(), shared.states_input(ctx)
        if merged and _all_finite(ctx.main) and _all_finite(shared.states_call(ctx)):
            return  # every group of the states call finite: read group by group only to find one
        for group, label, _, _ in shared.FINITE_STATES:
            label = f"{MAIN_LABEL} with {label}"
            calls.append((label, shared.group(ctx, group) if merged
                          else ctx.run(ctx.x, given.group_hx(group), label=label)))
    for label, result in calls:
        found = _first_non_finite(result)
        if found is not None:
            name, index, value = found
            raise ProbeFailure(Violation(
                "evidence", name, f"{value} at [{', '.join(map(str, index))}] on {label}: finite "
                "inputs and states must give finite outputs and states", position=index, actual=value))
