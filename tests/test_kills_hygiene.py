"""The hygiene and finite probes (rnn_contracts.probes.hygiene, .finite), pinned where the zoo cannot see them.

The zoo's faults are tanh / sigmoid layers with ordinary h_0: differentiability's relu dead-zone
logic (the main input's dead steps, _relu_retry and its input magnitudes) and the finite
contract's h_0 scales were never put on either side of their decisions. Here a relu RNN whose
gradient through time shows only at input magnitude 10 (or only at 100) passes, a relu stack
whose lower layer is dead on every input is "not applicable" with its whole reason, a relu RNN
inactive everywhere passes on its own dead steps, a tanh RNN with an exactly-zero unit is still
"cut", a frozen module is "not applicable", and modules that break only at the finite probe's
negative (3) or large (30) h_0 scale fail there.

Kills (mutation/README.md): differentiability's ``if not params`` guard deleted; ``gx is not
None and dead_step`` negated; the "not observable" guard deleted; _RETRY_SCALES' 10.0 and 100.0
made 100.0 and 1000.0; _relu_retry's relu-RNN condition with either comparison negated or its
``or`` made ``and``; its ``gx is None`` negated; finite's _STATES scales 3.0 (negative h_0) and
30.0 (large h_0) made 30.0 and 300.0; the bidirectional one-pass path's third-copy check
deleted, its gradient through time read from the first copy, its batch_independence gate dropped;
the initial states' check without its second call for a parameter read only without h_0, or
without its look at whether the state's value is used at all.
Not here: cell_equivalence's h_n / c_n comparison (``is not None`` negated, the assert_close
deleted) -- tests/test_kills_cell.py kills both already.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch import nn

from zoo import contract_result as result_of, one_thread
from zoo.faulty_math import DetachEveryStep
from zoo.faulty_state import IgnoresH0
from zoo.faulty_subchecks import LearnedInitialState

NOT_OBSERVABLE = ("its other checks held; not observable: no gradient from output[-1] reaches x[0] on any "
                  "of 7 inputs tried, and every run has units exactly 0 (relu's dead zone, e.g. a lower "
                  "layer inactive on every input): nothing to follow")
CUT = ("no gradient flows back through time: d output[-1, :, :H_out] / d x[0] is zero "
       "(is the state detached between steps?)")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():  # tiny tensors: torch's thread pool costs more than the arithmetic
        yield


def _set(module: nn.Module, **values: list) -> nn.Module:
    with torch.no_grad():
        for name, value in values.items():
            getattr(module, name).copy_(torch.tensor(value, dtype=torch.float32).reshape(getattr(module, name).shape))
    return module


# -- differentiability: what is checked before the gradient through time ------------------------------
def test_a_frozen_module_is_still_followed_through_time() -> None:
    """A frozen GRU: x requires grad, so its output does too, and the gradient flows through time;
    there is no parameter to follow, which the report's note says. A frozen loop that detaches its
    state every step fails: freezing a pretrained encoder once made the whole contract "not
    applicable", and such a loop passed."""
    torch.manual_seed(0)
    result = result_of(nn.GRU(4, 3).requires_grad_(False), "differentiability")
    assert (result.status, result.detail, result.evidence) == (
        "passed", "no parameter requires grad: only the gradient through time was followed, from "
        "output[-1] back to x[0]", None)
    result = result_of(DetachedLoop().requires_grad_(False), "differentiability")
    assert (result.status, result.detail) == ("failed", (
        "no gradient flows back through time: d output[-1, :, :H_out] / d x[0] is zero (is the state "
        "detached between steps?)"))


class DetachedLoop(nn.Module):
    """A GRUCell loop that detaches its state every step (truncated BPTT gone wrong)."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.GRUCell(4, 3)

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = x.new_zeros(x.shape[1], 3) if hx is None else hx[0]
        outs = []
        for x_t in x:
            h = self.cell(x_t, h.detach())
            outs.append(h)
        return torch.stack(outs), h[None]

    mode, input_size, hidden_size = "GRU", 4, 3


# -- differentiability: relu's dead zone ------------------------------------------------------------
def window_relu(scale: float) -> nn.RNN:
    """nn.RNN(1, 1, num_layers=2, relu) whose gradient from output[-1] to x[0] exists only for
    inputs of magnitude ``scale`` (of 1, 10, 100, 1000: one decade each side of it has none).

    Layer 0, h0_t = relu(x_t - scale / 2), no recurrence: 0 below scale / 2 (the main probe input,
    |x| < 5 < scale / 2, and every smaller magnitude tried), x_t - scale / 2 above.
    Layer 1, h1_t = relu(-h0_t + h1_{t-1} / 2 + scale): scale or more while h0 stays 0, so the
    output has no zero step; x[0] reaches it only through h0_0 -> h1_0, which is active for
    x_0 = +scale (h1_0 = scale / 2) and dead for x_0 = +10 * scale (h1_0 = relu(-8.5 scale) = 0).
    A small change of x[0] never moves output[-1]: 0 stays 0 below the window, a dead h1_0 stays
    dead above it; h_n of layer 0 is exactly 0 on the main input (relu's dead zone)."""
    torch.manual_seed(0)
    module = nn.RNN(1, 1, num_layers=2, nonlinearity="relu")
    return _set(module, weight_ih_l0=[1.0], weight_hh_l0=[0.0], bias_ih_l0=[-scale / 2], bias_hh_l0=[0.0],
                weight_ih_l1=[-1.0], weight_hh_l1=[0.5], bias_ih_l1=[scale], bias_hh_l1=[0.0])


@pytest.mark.parametrize("scale", [10.0, 100.0])
def test_a_relu_rnn_whose_gradient_shows_at_one_input_magnitude_passes(scale: float) -> None:
    """The main probe input passes no gradient through time (layer 0 is dead on it); the retry at
    magnitude ``scale`` does, so the contract holds. Kills: _RETRY_SCALES' 10.0 made 100.0 (the
    scale-10 window is never tried) and its 100.0 made 1000.0 (the scale-100 window); the
    retry's relu-RNN condition negated either way (every relu RNN "cut"); its ``gx is None``
    negated (a gradient of zeros is "cut" at once)."""
    result = result_of(window_relu(scale), "differentiability")
    assert (result.status, result.detail, result.evidence) == ("passed", "", None)


def test_a_relu_stack_dead_on_every_input_is_not_observable() -> None:
    """Seed 548 nn.RNN(5, 1, 3, relu) (tests/test_false_positives.py): a lower layer inactive on
    every input, so output[-1] does not depend on x[0] at all, correctly; neither a pass nor a
    failure. Kills: the "not observable" guard deleted (a failure then)."""
    torch.manual_seed(548)
    module = nn.RNN(5, 1, num_layers=3, nonlinearity="relu")
    result = result_of(module, "differentiability")
    assert (result.status, result.detail, result.evidence) == ("not applicable", NOT_OBSERVABLE, None)


def test_the_window_module_outside_its_window_is_not_observable() -> None:
    """The window at 1000: no magnitude tried (1, 10, 100) reaches it, every run has exact zeros
    and no small change of x[0] moves output[-1]: not observable, by the same guard."""
    result = result_of(window_relu(1000.0), "differentiability")
    assert (result.status, result.detail, result.evidence) == ("not applicable", NOT_OBSERVABLE, None)


def test_a_relu_rnn_dead_on_the_main_input_passes_on_its_dead_steps() -> None:
    """nn.RNN(2, 3, relu) with bias -1000 on every unit: every step of every sequence is exactly 0
    on every unit, which explains the zero gradient through time by itself; the contract holds
    without retrying. Kills: ``gx is not None and dead_step`` negated (the retry then finds
    nothing on any input and calls it not observable)."""
    torch.manual_seed(0)
    module = nn.RNN(2, 3, nonlinearity="relu")
    with torch.no_grad():
        module.bias_ih_l0.fill_(-1000.0)
    result = result_of(module, "differentiability")
    assert (result.status, result.detail, result.evidence) == ("passed", "", None)


class DetachedReLU(nn.RNN):
    """A relu RNN that runs step by step and detaches the state between steps (TBPTT of length 1
    by mistake): values still flow forward, gradients do not."""

    def forward(self, x: Any, hx: Any = None) -> Any:
        outs, h = [], hx
        for t in range(x.shape[0]):
            out, h = super().forward(x[t:t + 1], None if h is None else h.detach())
            outs.append(out)
        return torch.cat(outs), h


def test_a_detached_relu_state_is_still_cut() -> None:
    """relu, so the retry runs: no input passes a gradient, but a small change of x[0] moves
    output[-1] (the value went through the detached state): cut, not the dead zone."""
    torch.manual_seed(0)
    module = DetachedReLU(4, 3, nonlinearity="relu")
    with torch.no_grad():
        module.bias_ih_l0.add_(1.0)  # active units: no step of the main input is all zero
    result = result_of(module, "differentiability")
    assert (result.status, result.detail) == ("failed", CUT)


def test_a_tanh_rnn_is_never_in_the_dead_zone() -> None:
    """nn.RNN(1, 2, tanh) with no recurrence (weight_hh = 0: output[-1] does not depend on x[0])
    and unit 1 all zero weights (tanh(0) = 0: exact zeros on every run). For a relu RNN that
    would be "not observable"; for tanh the zeros are no dead zone and the verdict is cut. Kills:
    the retry's ``mode != "RNN" or nonlinearity != "relu"`` with ``or`` made ``and`` (a tanh RNN
    then goes through the dead-zone retry)."""
    torch.manual_seed(0)
    module = nn.RNN(1, 2, nonlinearity="tanh")
    with torch.no_grad():
        module.weight_hh_l0.zero_()
        for p in (module.weight_ih_l0, module.bias_ih_l0, module.bias_hh_l0):
            p[1] = 0.0
    result = result_of(module, "differentiability")
    assert (result.status, result.detail) == ("failed", CUT)


# -- finite: the h_0 scales -------------------------------------------------------------------------
class ClippedStateGRU(nn.GRU):
    """A GRU that rescales an h_0 whose RMS exceeds ``clip`` to max |h| = 1 (state-norm clipping)
    and then passes it through ``unsafe`` before the recurrence. The clipping makes the module
    break at one h_0 magnitude and not at ten times that: large states are tamed first."""

    def __init__(self, unsafe: str, clip: float) -> None:
        torch.manual_seed(0)
        super().__init__(2, 3)
        self.unsafe, self.clip = unsafe, clip

    def forward(self, x: Any, hx: Any = None) -> Any:
        if hx is not None:
            if float(hx.pow(2).mean().sqrt()) > self.clip:
                hx = hx / hx.abs().amax()
            if self.unsafe == "log":  # a log-space offset that assumes h > -3 (tanh's range, with margin)
                hx = torch.log(hx + 3.0) - torch.log(torch.tensor(3.0))
            else:  # a softmax over the units at temperature 0.1, computed without subtracting the max
                e = torch.exp(hx / 0.1)
                hx = e / e.sum(-1, keepdim=True)
        return super().forward(x, hx)


@pytest.mark.parametrize(("unsafe", "clip", "label"), [
    # log(h_0 + 3) is NaN where h_0 < -3: the negative h_0 (-|N(0,1)| x 3, RMS about 3, so some
    # entry below -3) hits it; the random h_0 (N(0,1), RMS 1) has no entry below -3; the large one
    # (RMS about 30 > clip 10) is rescaled into [-1, 1] first. Kills: the negative h_0's scale 3.0
    # made 30.0 (RMS 30: rescaled too, nothing fails).
    ("log", 10.0, "a negative h_0"),
    # exp(h_0 / 0.1) overflows float32 where h_0 > 8.9 (inf / inf = NaN): the large h_0 (N(0,1) x
    # 30, RMS about 30 < clip 100) has such an entry; the random and negative ones stay far below;
    # an h_0 of magnitude 300 (RMS about 300 > 100) would be rescaled into [-1, 1] first. Kills:
    # the large h_0's scale 30.0 made 300.0.
    ("softmax", 100.0, "a large h_0"),
], ids=["negative-h0-of-magnitude-3", "large-h0-of-magnitude-30"])
def test_finite_tries_each_of_its_initial_states(unsafe: str, clip: float, label: str) -> None:
    result = result_of(ClippedStateGRU(unsafe, clip=clip), "finite")
    assert result.status == "failed"
    ev = result.evidence
    assert (ev.kind, ev.tensor) == ("evidence", "output")
    assert result.detail.startswith("output: nan at [") and result.detail.endswith(
        f"on the main probe input with {label}: finite inputs and states must give finite outputs and states")


def test_inputs_untouched_reuses_the_snapshot_of_an_unchanged_parameter() -> None:
    """The no-trace snapshot already holds every parameter's values: a parameter that still holds
    exactly them (same values, same version) is compared with the snapshot, not cloned a second
    time (on a large LSTM that clone was the size of every parameter again); one whose version
    moved is cloned."""
    from rnn_contracts.probes.base import values_before

    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(3, 3))
    saved = {id(weight): (weight.detach().clone(), weight._version)}
    assert values_before(weight, saved)[0] is saved[id(weight)][0]
    with torch.no_grad():
        weight.mul_(1.0)  # same values, a new version
    again, version = values_before(weight, saved)
    assert version == weight._version
    assert again is not saved[id(weight)][0] and torch.equal(again, weight.detach())


class SparseShiftGRU(nn.GRU):
    """A GRU whose input is shifted by a learned vector looked up in a sparse embedding: that
    parameter's gradient is a sparse tensor."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shift = nn.Embedding(1, self.input_size, sparse=True)

    def forward(self, x: Any, hx: Any = None) -> Any:
        return super().forward(x + self.shift(torch.zeros((), dtype=torch.long)), hx)


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """What each torch.autograd.grad call of the test hands back, in call order."""
    real, calls = torch.autograd.grad, []

    def spy(outputs: Any, inputs: Any, **kwargs: Any) -> Any:
        grads = real(outputs, inputs, **kwargs)
        calls.append(grads)
        return grads

    monkeypatch.setattr(torch.autograd, "grad", spy)
    return calls


class TiedAcrossBatch(DetachEveryStep):
    """DetachEveryStep, its output also tied to every sequence's input at the same step in the
    backward pass only (+ s - s.detach(), s the step's sum over the batch): the values keep the
    sequences apart, the gradients do not."""

    def forward(self, x: Any, hx: Any = None) -> Any:
        out, state = super().forward(x, hx)
        tie = x.sum(dim=(1, 2), keepdim=True)
        return out + (tie - tie.detach()), state


class MixesBatch(nn.GRU):
    """A bidirectional GRU whose output adds its mean over the batch: the sequences are not kept
    apart (batch_independence fails)."""

    def forward(self, x: Any, hx: Any = None) -> Any:
        out, h = super().forward(x, hx)
        return out + out.mean(dim=1, keepdim=True), h


@pytest.mark.parametrize(("make", "verdict", "passes"), [
    pytest.param(lambda: nn.GRU(4, 6, bidirectional=True), ("passed", ""), 1, id="torch-gru"),
    pytest.param(lambda: DetachEveryStep("GRU", 4, 6, bidirectional=True), ("failed", CUT), 1, id="detached"),
    # one pass on four copies, whose third copy's input got a gradient: three on the input alone
    # (the parameters', the forward direction's through time, the backward direction's)
    pytest.param(lambda: TiedAcrossBatch("GRU", 4, 6, bidirectional=True), ("failed", CUT), 4, id="tied-gradients"),
    pytest.param(lambda: MixesBatch(4, 6, bidirectional=True), ("passed", ""), 3, id="batch-mixed"),
])
def test_a_bidirectional_module_takes_one_backward_pass_once_its_sequences_are_apart(
        make: Callable[[], nn.Module], verdict: tuple[str, str], passes: int, handed: list[tuple]) -> None:
    """Bidirectional, the parameters' gradients and each direction's gradient through time come
    from one backward pass over four copies of the input once batch_independence held; where it
    did not, or where the third copy's input got a gradient (sequences tied in the backward pass
    only, which a read of the second copy would take for a gradient through time), from three
    passes on the input alone. The verdicts are the three-pass path's."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = make()
    result = result_of(module, "differentiability")
    assert ((result.status, result.detail), len(handed)) == (verdict, passes)


@pytest.mark.parametrize(("make", "passes"), [
    # its h0 parameter is read only without hx: the call from a zero h_0 leaves it unreached, and
    # a second call without one reaches it
    pytest.param(lambda: LearnedInitialState("GRU", 4, 6), 2, id="learned-default-state"),
    # h_0 is never read (initial_state's failure): no gradient reaches it, and none is owed
    pytest.param(lambda: IgnoresH0("GRU", 4, 6), 1, id="ignores-h0"),
])
def test_an_initial_state_the_module_does_not_read_is_no_cut_gradient(
        make: Callable[[], nn.Module], passes: int, handed: list[tuple]) -> None:
    """differentiability follows the gradient to h_0 where h_0's value changes the result; a
    parameter read only on the path without h_0 is looked for on that path. Kills: the second
    call without h_0 deleted; _state_value_used's answer ignored."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = make()
    result = result_of(module, "differentiability")
    assert ((result.status, result.detail), len(handed)) == (("passed", ""), passes)


class ScalesH0WithLearnedDefault(LearnedInitialState):
    """A learned default state without hx; with hx, h_0 * gain: gain is read only with an h_0,
    the default only without one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gain = nn.Parameter(torch.full((self.hidden_size,), 0.5))

    def initial(self, hx: Any, batch: int, like: torch.Tensor) -> Any:
        return super().initial(None if hx is None else hx * self.gain, batch, like)


def test_a_parameter_read_only_with_h0_is_found_with_it(handed: list[tuple]) -> None:
    """The call without h_0 looks for what the call with it did not reach, and no more: its own
    unreached list replaced the first call's, and gain (read only with h_0) was reported; from a
    zero h_0, gain's gradient was zero anyway (reviews). Kills: the narrowing dropped; zero
    leaves."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = ScalesH0WithLearnedDefault("GRU", 4, 6)
    result = result_of(module, "differentiability")
    assert ((result.status, result.detail), len(handed)) == (("passed", ""), 2)


def test_differentiability_reads_each_gradient_without_holding_them(handed: list[tuple]) -> None:
    """The gradients autograd hands back for the parameters hold no storage (a stride-0 zero in
    each one's place, read as it was computed); a sparse gradient, which a dense stand-in cannot
    replace, is read and handed back as it is, and the contract still holds."""
    torch.manual_seed(0)
    module = nn.LSTM(4, 6)
    assert result_of(module, "differentiability").status == "passed"
    parameters = len(list(module.parameters()))  # the one pass also hands back x's, h_0's and c_0's, last
    assert len(handed[0]) == parameters + 3
    assert all(g.untyped_storage().nbytes() == g.element_size() for g in handed[0][:parameters])
    torch.manual_seed(0)
    result = result_of(SparseShiftGRU(4, 6), "differentiability")
    assert (result.status, result.detail) == ("passed", "")
