"""The cell contract (opt-in): a layer equals its cell unrolled over time."""
from __future__ import annotations

from typing import Any

from rnn_contracts.conventions import LayerCall
from rnn_contracts.probes.base import Context, NotApplicable, ProbeFailure, Result
from rnn_contracts.probes.shared import random_state_run
from rnn_contracts.spec import RNNSpec


def cell_spec(layer: RNNSpec) -> RNNSpec:
    """The spec of the cell a one-layer, one-direction layer unrolls."""
    return layer.replace(convention="cell", packed=False, returns_states=True, requires_hx=False, takes_hx=True)


def cell_equivalence(ctx: Context) -> None:
    """The layer equals its cell unrolled over time (the cell given as ``verify_rnn(layer,
    cell=...)``, typically the cell the layer's loop calls): output and final states, with and
    without h_0 (torch.nn.RNN docs: the layer applies the cell's equation at every time step;
    Flax's nn.RNN makes the same promise for a cell and its scan). Catches a layer loop that
    skips, repeats or reorders steps, or resets the state, while the cell is right."""
    cell: Any = getattr(ctx, "cell", None)
    spec = ctx.spec
    if cell is None:
        raise NotApplicable("no cell given: verify_rnn(layer, cell=...)")
    if spec.num_layers != 1 or spec.bidirectional or spec.convention == "cell":
        raise NotApplicable(f"{spec.describe()} is not one layer in one direction: a cell unrolls one")
    unrolled = LayerCall(cell, cell_spec(spec))
    runs: list[tuple[str, Result, object]] = [("no h_0", ctx.main, None)]
    if spec.gives_hx:  # a module that takes no hx, or returns only its output, gets none
        runs.append(("a random h_0", *random_state_run(ctx, "a random h_0 (the layer)")))
    for label, got, given in runs:
        try:
            raw = unrolled(ctx.feed(ctx.x)) if given is None else unrolled(ctx.feed(ctx.x), given)
        except Exception as exc:  # noqa: BLE001 - the cell's own error is evidence
            raise ProbeFailure(f"the cell raised {type(exc).__name__} when unrolled with {label}: {exc}",
                               cause=exc) from exc
        want = ctx.split(raw)
        why = f"with {label} the layer must equal its cell unrolled over time"
        ctx.assert_close("output", got.output, want.output, why)
        for name in ("h_n", "c_n"):
            if getattr(got, name) is not None:
                ctx.assert_close(name, getattr(got, name), getattr(want, name), why)
