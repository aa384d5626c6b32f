"""causality's and batch_independence's "must change" half (rnn_contracts.probes.temporal), pinned
where the zoo cannot see it.

The zoo's faults are tanh / sigmoid layers that carry every change on: the retries of
_must_change (at the magnitudes of _SCALES), relu's dead-zone evidence (is_relu, dead_zone) and
the "not observable" verdict were never put on either side of their decisions. Here hand-set relu
RNNs whose dependence on the changed input shows at one magnitude only (a window: relu(v - lo)
- 3 relu(v - b) is positive for lo < v < hi and exactly 0 elsewhere) pass; relu stacks that ignore
every change are "not observable" with their whole reason, once with the dead zone in h_n only and
once in the output only; relu and tanh modules that ignore every change with no relu dead zone
fail; a comparison that raises an error that is no ProbeFailure surfaces.

Kills (mutation/README.md): _SCALES' 10.0, 100.0 and 1000.0 made 100.0, 1000.0 and 10000.0;
is_relu's two comparisons negated and its ``and`` made ``or``; dead_zone's output test negated and
its ``return True`` flipped; its h_n test negated, ``is not None`` negated and its ``and`` made
``or``; _must_change's ``except ProbeFailure`` widened to ``except Exception``; the "not
observable" NotApplicable guard deleted in causality and in batch_independence;
batch_independence's replacement offset 0.5 made 5.0; state.py's ``"; ".join(reasons) or None``
made ``and None`` (initial_state's own "not observable" verdict lost).

causality once had a guard, ``blocked`` (output[t] exactly 0 on every unit in both runs: skip
the first comparison), which threw away a change the main perturbation did show: "not
observable" where the contract holds. It is gone (with its curated mutant); the test
test_a_change_the_main_perturbation_shows_counts_even_when_step_t_is_all_zero keeps it gone.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from zoo import contract_result as result_of, one_thread
from rnn_contracts import RNNSpec
from rnn_contracts.probes.base import Context, ProbeFailure
from rnn_contracts.probes.temporal import COPY_OUTPUT

#: The "must change" halves these relu RNNs meet. batch_independence's is on sequence 0's copy
#: from a zero state (its input alone: sequence 0 itself gets a new initial state too, which
#: moves its output where the module takes h_0, as nn.RNN does).
WHY = {"causality": "perturbing step 2 must change the output from step 2 on",
       "batch_independence": "replacing sequence 0's input must change its output from the same state"}
WHAT = {"causality": "output[2:]", "batch_independence": COPY_OUTPUT}


def not_observable(contract: str) -> str:
    return (f"every other check held; not observable: {WHY[contract]} (relu's dead zone): no change on "
            "the main probe input nor on 8 more inputs (magnitudes up to 1000), and every run had a "
            "layer or direction exactly 0 on every unit, which blocks the path")


def unchanged(contract: str) -> str:
    return f"{WHY[contract]}: {WHAT[contract]} did not change at any position"


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():  # tiny tensors: torch's thread pool costs more than the arithmetic
        yield


def rnn(hidden: int, num_layers: int, nonlinearity: str = "relu", **values: Any) -> nn.RNN:
    """nn.RNN(1, hidden, num_layers) under seed 0 with every parameter 0 but ``values``."""
    torch.manual_seed(0)
    module = nn.RNN(1, hidden, num_layers=num_layers, nonlinearity=nonlinearity)
    with torch.no_grad():
        for name, param in module.named_parameters():
            param.copy_(torch.tensor(values.get(name, 0.0), dtype=param.dtype).expand(param.shape))
    return module


def window(lo: float, hi: float) -> nn.RNN:
    """nn.RNN(1, 2, num_layers=2, relu), no recurrence, whose output moves only while an input
    step lies in (lo, hi).

    Layer 0: u0 = relu(x - lo), u1 = relu(x - b) with b = (2 hi + lo) / 3. Layer 1: unit 0 =
    relu(u0 - 3 u1), positive for lo < x < hi and exactly 0 below lo (u0 = 0) and above hi
    (-2 x + 2 hi < 0); unit 1 = relu(1) = 1, so the output is never 0 on every unit and an
    unchanged output is evidence. The probe inputs are seeded (Context, seed 0): the windows below
    are chosen around the values it draws."""
    b = (2 * hi + lo) / 3
    return rnn(2, 2, weight_ih_l0=[[1.0], [1.0]], bias_ih_l0=[-lo, -b],
               weight_ih_l1=[[1.0, -3.0], [0.0, 0.0]], bias_ih_l1=[0.0, 1.0])


# -- the retries' magnitudes ------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [10.0, 100.0, 1000.0])
def test_a_relu_rnn_whose_causality_shows_at_one_magnitude_passes(scale: float) -> None:
    """The window (scale / 2, 3 scale / 2): step 2 of the probe input (|x| < 1) and its main
    perturbation (< 2) lie below it, and so do the tries of magnitude 1 and every magnitude below
    ``scale``; x + ``scale`` lies inside, every larger magnitude above. Only the try at ``scale``
    moves the output. Kills: _SCALES' 10.0 made 100.0, 100.0 made 1000.0, 1000.0 made 10000.0 (no
    try reaches the window: "not observable", the lower layer's h_n being 0 in every run)."""
    result = result_of(window(scale / 2, 3 * scale / 2), "causality")
    assert (result.status, result.detail, result.evidence) == ("passed", "", None)


def test_batch_independence_replaces_sequence_0_with_values_around_half() -> None:
    """The window (1.7, 2.3) holds one step of the main replacement (randn + 0.5: 2.06 at step 2,
    drawn from batch_independence's own stream) and nothing else tried: not the probe input's
    sequence 0 (at most 1.54), nor its tries (x +- 1 is 1.57 or 2.54 at the nearest), nor a
    replacement by randn + 5.0 (4.13 and up). Kills: the replacement's offset 0.5 made 5.0 (no
    input moves sequence 0 then, and the tries of magnitude 10 and up wake layer 0 in h_n: a
    failure)."""
    result = result_of(window(1.7, 2.3), "batch_independence")
    assert (result.status, result.detail, result.evidence) == ("passed", "", None)


# -- relu's dead zone: "not observable" -------------------------------------------------------------
def dead_lower_layer() -> nn.RNN:
    """nn.RNN(1, 1, num_layers=2, relu): layer 0 = relu(x - 10^4), exactly 0 on every input tried
    (magnitudes up to 1000); layer 1 = relu(1 + h / 2), 1, 1.5, 1.75, ... never 0. Nothing of the
    input reaches the output, correctly, and the dead zone shows in h_n (layer 0) only."""
    return rnn(1, 2, weight_ih_l0=[[1.0]], bias_ih_l0=[-1e4], bias_ih_l1=[1.0], weight_hh_l1=[[0.5]])


def late_waker() -> nn.RNN:
    """nn.RNN(1, 2, num_layers=2, relu): layer 0 unit 0 = relu(x - 10^4) (dead on every input),
    unit 1 a bias-driven counter relu(1 + h / 2) = 1, 1.5, 1.75, 1.875; layer 1 unit 0 = relu(unit
    0) = 0, unit 1 = relu(counter - 1.2) = 0 at step 0 only. The dead zone shows in the output
    (step 0 exactly 0 on every unit) and not in h_n (a nonzero unit in each layer)."""
    return rnn(2, 2, weight_ih_l0=[[1.0], [0.0]], bias_ih_l0=[-1e4, 1.0], weight_hh_l0=[[0.0, 0.0], [0.0, 0.5]],
               weight_ih_l1=[[1.0, 0.0], [0.0, 1.0]], bias_ih_l1=[0.0, -1.2])


@pytest.mark.parametrize("contract", ["causality", "batch_independence"])
@pytest.mark.parametrize("make", [dead_lower_layer, late_waker], ids=["dead-zone-in-h_n", "dead-zone-in-output"])
def test_a_relu_stack_that_blocks_every_change_is_not_observable(make, contract: str) -> None:
    """No input tried changes the output, and every run shows relu's dead zone: "not observable",
    with the whole reason (its largest magnitude, 1000, included). Kills: the NotApplicable guard
    deleted (a pass then) in causality and in batch_independence; _SCALES' 1000.0 made 10000.0 (the
    reason's magnitude); is_relu with ``== "RNN"`` or ``== "relu"`` negated (never relu: a
    failure). dead-zone-in-h_n kills dead_zone's ``h_n is not None`` made ``is None``;
    dead-zone-in-output kills its ``return True`` made False and its ``out == 0`` made ``!= 0``
    (no step has every unit nonzero, and h_n has none all 0: a failure)."""
    result = result_of(make(), contract)
    assert (result.status, result.detail, result.evidence) == ("not applicable", not_observable(contract), None)


@pytest.mark.parametrize("contract", ["causality", "batch_independence"])
def test_a_relu_rnn_deaf_to_its_input_with_no_zero_fails(contract: str) -> None:
    """nn.RNN(1, 1, relu) with input weight 0: relu(1 + h / 2), never exactly 0, in the output or
    in h_n. It ignores every change, and no dead zone explains it: a failure. Kills: dead_zone's
    ``out == 0`` made ``!= 0`` (every unit nonzero at a step), its ``h_n[:, j] == 0`` made ``!= 0``
    and its ``and`` made ``or`` (each then reads this module as dead: "not observable")."""
    result = result_of(rnn(1, 1, bias_ih_l0=[1.0], weight_hh_l0=[[0.5]]), contract)
    assert (result.status, result.detail) == ("failed", unchanged(contract))


@pytest.mark.parametrize("contract", ["causality", "batch_independence"])
def test_a_tanh_stack_with_an_exactly_zero_layer_is_never_in_the_dead_zone(contract: str) -> None:
    """The tanh twin of dead_lower_layer: layer 0 all zero weights (tanh(0) = 0: exactly 0 on
    every unit, in every run), layer 1 = tanh(1 + h / 2). It ignores every change; tanh has no dead
    zone, so the zeros are no excuse: a failure. Kills: is_relu's ``and`` made ``or`` (every
    mode="RNN" layer, tanh too, would count as relu: "not observable")."""
    result = result_of(rnn(1, 2, "tanh", bias_ih_l1=[1.0], weight_hh_l1=[[0.5]]), contract)
    assert (result.status, result.detail) == ("failed", unchanged(contract))


def test_initial_state_reports_a_stack_it_cannot_observe() -> None:
    """tests/test_false_positives.py's seed 224 nn.RNN(2, 1, num_layers=3, relu, bias=False) in
    float64: h_0[1] dies within one step. Kills: state.py's ``"; ".join(reasons) or None`` made
    ``and None`` (the reason lost: a pass)."""
    torch.manual_seed(224)
    module = nn.RNN(2, 1, num_layers=3, nonlinearity="relu", bias=False).double()
    result = result_of(module, "initial_state")
    assert (result.status, result.detail, result.evidence) == (
        "not applicable",
        "every other check held; not observable: a h_0 in layer 1 (h_0[1]) changed nothing on 9 probe "
        "inputs x 8 states, and every run showed relu's dead zone (a layer or direction exactly 0 on "
        "every unit) blocking its path", None)


# -- errors that are no ProbeFailure ----------------------------------------------------------------
def seeded_gru() -> nn.GRU:
    torch.manual_seed(17)
    return nn.GRU(1, 2)


@pytest.mark.parametrize("contract", ["causality", "batch_independence"])
def test_a_first_comparison_that_raises_is_not_read_as_no_change(monkeypatch, contract: str) -> None:
    """The first comparison (the main change against the main call) raises a RuntimeError, every
    later one is the real assert_differs. The error must surface, not count as "did not change"
    and send the probe to its tries (which a correct GRU then passes). Kills: the outer ``except
    ProbeFailure as failure`` widened to ``except Exception``."""
    real = Context.assert_differs

    def first_raises(self, what, a, b, why):
        if what == WHAT[contract]:  # the contract's own first comparison, whoever runs it
            raise RuntimeError("cannot compare")
        return real(self, what, a, b, why)

    monkeypatch.setattr(Context, "assert_differs", first_raises)
    result = result_of(seeded_gru(), contract)
    assert (result.status, result.detail) == (
        "failed", "the module's result broke the probe: RuntimeError: cannot compare")


@pytest.mark.parametrize("contract", ["causality", "batch_independence"])
def test_a_try_whose_comparison_raises_is_not_read_as_no_change(monkeypatch, contract: str) -> None:
    """The first comparison reports no change (its ProbeFailure), every try's comparison raises a
    RuntimeError: the error surfaces at the first try, not counted as one more "did not change"
    (which would end, after 8 tries, in the first comparison's failure)."""
    real = Context.assert_differs

    def no_change(self, what, a, b, why):
        if what == WHAT[contract]:
            raise ProbeFailure(f"{why}: {what} did not change at any position")
        return real(self, what, a, b, why)

    def raises(a, b):
        raise RuntimeError("cannot compare")

    monkeypatch.setattr(Context, "assert_differs", no_change)
    monkeypatch.setattr(Context, "shows_change", staticmethod(raises))
    result = result_of(seeded_gru(), contract)
    assert (result.status, result.detail) == (
        "failed", "the module's result broke the probe: RuntimeError: cannot compare")


# -- causality's ``blocked`` guard ----------------------------------------------------------------
def carried_window() -> nn.RNN:
    """nn.RNN(1, 4, num_layers=2, relu) that carries step t = 2 to the output of step 3 only
    when x[2] lies in the window (1.5, 1.75), and whose output at step 2 is exactly 0 on every unit.

    Layer 0: u0 = relu(x - 1.5), u1 = relu(x - 5/3), u2 = relu(u0 - 3 u1) of the previous step (the
    window, one step late), u3 a counter relu(1 + u3 / 2) = 1, 1.5, 1.75, 1.875, 1.9375. Layer 1:
    unit 0 = relu(u2), unit 1 = relu(u3 - 1.8) (0 up to step 2, then 0.075, 0.1375), units 2, 3 = 0.
    With the probe's seeded values (batch 3, seq 5), step 1 lies outside the window in every
    sequence (output[2] all 0 in every run), the main perturbation moves x[2] of sequence 1 from
    0.84 to 1.62 (causality's own stream), inside it (output[3] changes; the others go to 1.37 and
    -0.25), and no try (x[2] +- 1, 10, 100, 1000: 1.40 and 1.84 the nearest) reaches it."""
    return rnn(4, 2, weight_ih_l0=[[1.0], [1.0], [0.0], [0.0]], bias_ih_l0=[-1.5, -5.0 / 3.0, 0.0, 1.0],
               weight_hh_l0=[[0.0] * 4, [0.0] * 4, [1.0, -3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.5]],
               weight_ih_l1=[[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.0] * 4, [0.0] * 4],
               bias_ih_l1=[0.0, -1.8, 0.0, 0.0])


def test_a_change_the_main_perturbation_shows_counts_even_when_step_t_is_all_zero() -> None:
    """The main perturbation changes output[3:] (sequence 1), so step 2 does reach the later
    outputs: by _must_change's own docstring ("None when some input changed the output") the
    contract holds. The old guard ``blocked`` (output[2] exactly 0 on every unit in both runs)
    skipped that comparison and went to the tries, none of which reaches the window: "not
    observable".

    Where ``blocked`` changed nothing: when output[t:] is all 0 in both runs, assert_differs has
    no evidence and passes, and so does every try against the all-zero main (a try that is nonzero
    differs, one that is 0 has no evidence); when the later outputs are nonzero and unchanged,
    assert_differs raises the same ProbeFailure the guard does. So the guard was observable only
    here, against the contract, and was removed."""
    result = result_of(carried_window(), "causality")
    assert (result.status, result.detail, result.evidence) == ("passed", "", None)


# -- assert_differs' rule of evidence -------------------------------------------------------------
@pytest.mark.parametrize(("a", "b", "raises"), [
    pytest.param([0.0, 0.0], [0.0, 0.0], False, id="zeros-in-both-no-evidence"),
    pytest.param([0.0, 0.5], [0.0, 0.5], True, id="zeros-left-out-rest-unchanged"),
    pytest.param([0.0, 0.5], [0.0, 0.25], False, id="changed"),
    pytest.param([float("nan"), 0.5], [float("nan"), 0.5], True, id="nan-equals-nan"),
    pytest.param([0.0, 0.5], [1e-30, 0.5], False, id="any-difference-counts"),
])
def test_assert_differs_needs_a_change_where_either_side_is_nonzero(a: list, b: list, raises: bool) -> None:
    """"Not changed" is bitwise equality (NaN equal to NaN) at every position that is not 0 in
    both; where every position is 0 in both (relu's dead zone) there is no evidence and the check
    passes."""
    module = nn.GRU(4, 3)
    ctx = Context(module, RNNSpec.from_module(module), torch.device("cpu"), torch.float32)
    try:
        ctx.assert_differs("output", torch.tensor(a), torch.tensor(b), "it must change")
    except ProbeFailure as exc:
        assert raises and str(exc) == "it must change: output did not change at any position"
    else:
        assert not raises


# -- causality perturbs the main probe input itself, no h_0 given -------------------------------
class WarmStartFromAhead(nn.GRU):
    """A fresh sequence (no hx, or an all-zero row of hx: a streaming caller's start) begins from
    a state estimated from its first 3 frames: a look-ahead, on the no-h_0 path only."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.init = nn.Linear(self.input_size, self.hidden_size)

    def forward(self, x: Any, hx: Any = None) -> Any:
        warm = torch.tanh(self.init(x[:3].mean(0))).unsqueeze(0)
        hx = warm if hx is None else torch.where((hx == 0).all(-1, keepdim=True), warm, hx)
        return super().forward(x, hx)


class TruncatedWithTinyCoupling(nn.GRU):
    """Reads only the first 2 steps, plus a coupling across the batch far below any tolerance
    (1e-7 of the batch mean of the output)."""

    def forward(self, x: Any, hx: Any = None) -> Any:
        kept = torch.zeros_like(x)
        kept[:2] = x[:2]
        output, h_n = super().forward(kept, hx)
        return output + 1e-7 * output.mean(1, keepdim=True), h_n


def test_a_look_ahead_on_the_no_h0_path_fails_causality() -> None:
    """causality's perturbed run is the main probe input with no h_0: a module acausal only when
    it starts a sequence itself fails it. Reading the perturbation out of a shared call whose
    sequences carry a nonzero h_0 (tried once, to save a call) let it pass every contract."""
    torch.manual_seed(0)
    result = result_of(WarmStartFromAhead(4, 6), "causality")
    assert (result.status, result.detail.split(":")[0]) == (
        "failed", "perturbing step 2 must not change earlier outputs of the forward direction")


def test_a_change_elsewhere_in_the_batch_is_no_evidence_of_step_t_mattering() -> None:
    """The "must change" comparison is between two calls that differ only in step t: a shared
    call whose other sequences were replaced too read a coupling of 1e-7 as step t's effect."""
    torch.manual_seed(0)
    result = result_of(TruncatedWithTinyCoupling(4, 6), "causality")
    assert (result.status, result.detail) == ("failed", unchanged("causality"))
