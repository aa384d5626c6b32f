"""Half-precision failures put to a float64 copy of the module before they become verdicts.

In float16 and bfloat16 two computations of the same value round at different points (batched
against unbatched kernels, a packed against a padded run), and a real change of the output can
round away completely (a perturbed step's effect on the top layer of a deep LSTM). Neither is a
property of the module: both are properties of the dtype. Loosening the run-vs-run tolerance
until torch's own layers pass would let real bugs of that size through, in every dtype.

Instead, when a contract that compares values fails in half precision, the same probe runs again
on a float64 copy of the module (same spec, same seeded probe inputs, its own Context), where
rounding is ~1e-16 and the run-vs-run tolerance is assert_close's float64 default. When the copy
holds the contract, the module's math holds it and the half-precision evidence is rounding: the
contract passes with a note that gives that evidence. When the copy fails too, or cannot be
made (a module that refuses float64), the half-precision failure stands as it was.

A bug in the module's structure (a swapped gate, a leak across the batch, a detached path) is a
bug in float64 as well, so the zoo stays caught in half precision (tests/test_verify_precision.py).
What the copy cannot see is a code path the module runs only in half precision: a value wrong by
more than SLACK times the allowance there still fails; one within it, or a half-only path that
ignores an input, is read as rounding, and the contract's note shows the half-precision evidence
(tests/test_rounding.py). Measured on random torch layers: 8 of 6655 flagged in bfloat16/float16
before, none here (the sweep of tests/test_false_positives.py and the closing note of issue 9).
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch

from rnn_contracts.errors import render_violation
from rnn_contracts.probes.base import Context, ProbeFailure

#: The dtypes whose failures are put to a float64 copy: those whose ulp at 1.0 is coarser than
#: the smallest effect a probe looks for (2**-10 for float16, 2**-7 for bfloat16).
HALF_DTYPES = (torch.float16, torch.bfloat16)
#: How far past the run-vs-run allowance a half-precision value difference may be and still be
#: read as rounding (a multiple of atol + rtol * |expected|). The largest seen on torch's own
#: layers was 2.1x (float16 packed, 0.0029 at |expected| 0.39 against 0.00139); bfloat16's 12
#: ulps at 0.39 were 1.4x. Beyond 4x the difference stands whatever float64 says: a module with a
#: half-precision-only code path that is wrong by more than rounding is caught.
SLACK = 4.0


def _float64(thing: Any, device: torch.device) -> Any:
    """A float64 copy of a module (anything else as it is)."""
    if not isinstance(thing, torch.nn.Module):
        return thing
    return copy.deepcopy(thing).to(device=device, dtype=torch.float64)


def witness(ctx: Context) -> Context | None:
    """A Context for a float64 copy of ``ctx``'s module, on the same device (on the CPU where the
    device has no float64: MPS), with the same spec, seed, weight map and cell; None when the
    module cannot be copied to float64. Built once per verify_rnn run."""
    def make() -> Context | None:
        device = ctx.device if ctx.device.type != "mps" else torch.device("cpu")
        try:
            module = _float64(ctx.module, device)
            cell = _float64(getattr(ctx, "cell", None), device)
        except Exception:  # noqa: BLE001 - a module that refuses float64 keeps its own verdict
            return None
        if isinstance(module, torch.nn.Module):
            module.eval()
        other = Context(module, ctx.spec, device, torch.float64)
        other.weight_map = getattr(ctx, "weight_map", None)
        other.cell = cell
        return other

    return ctx.cached("float64 witness", make)


def _past_slack(failure: ProbeFailure) -> bool:
    """A value difference more than SLACK times its allowance (no rounding explains that)."""
    v = failure.violation
    if v.kind != "value" or v.difference is None or v.tolerance is None:
        return False
    rtol, atol = v.tolerance
    expected = abs(float(v.expected)) if v.expected is not None else 0.0
    return not v.difference <= SLACK * (atol + rtol * expected)  # NaN differences stand too


def rounding_note(probe: Callable[[Context], None], ctx: Context, failure: ProbeFailure) -> str | None:
    """The note of a contract whose half-precision ``failure`` a float64 copy of the module does
    not reproduce (``probe`` holds there), or None when the failure stands: the dtype is not a
    half dtype, a value differs by more than SLACK times its allowance, the copy cannot be made,
    or the probe fails (or is not applicable, or raises anything else) on the copy too."""
    if ctx.dtype not in HALF_DTYPES or _past_slack(failure):
        return None
    other = witness(ctx)
    if other is None:
        return None
    try:
        probe(other)
    except Exception:  # noqa: BLE001 - any outcome but a pass leaves the half-precision verdict
        return None
    dtype = str(ctx.dtype).removeprefix("torch.")
    evidence = " ".join(render_violation(failure.violation).split())
    return (f"held in float64; in {dtype} only within rounding: {evidence} (a float64 copy of the "
            f"module holds the contract on the same probes, so the difference is {dtype}'s "
            f"rounding, not the module's math: rnn_contracts.rounding)")
