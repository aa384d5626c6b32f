"""The runtime around the probes: the target loader, the per-contract time limit, the no-trace
audit, verify_rnn's defaults and argument checks, and the conformance class's item outcomes.

Kills (mutation/README.md):

* targets.py: a factory TARGET whose call returns something that is not callable (a config
  dict) accepted as the module instead of a one-line usage error.
* timeout.py: the re-armed timers' 1 ms floors raised to 10 ms (our own limit after an outer
  timer fired first, and the outer timer put back with what was left of it): a deadline with
  less than 10 ms to go postponed; an error raised inside the limited call, outside the main
  thread, lost (the guard deleted or negated: a KeyError instead of the call's own error, or of
  its value).
* trace.py: Change.declarable true for any buffer change or any "values changed" (and/or
  swapped); same_values comparing float tensors with torch.equal (a NaN buffer "changed");
  _same_slots true for a slot renamed but holding the same object (a renamed buffer not put
  back).
* verify.py: DEFAULT_TIMEOUT other than the README's 120 s; TF32 turned off on the CPU and left
  on on CUDA (the device condition negated); the argument guards deleted, negated or widened
  (an unknown deployment target, a weight_map that is no str -> str mapping, names no torch slot
  or no parameter, or a parameter of the wrong shape, a timeout of 1e6, a module or cell that
  is not callable, a module in float8): each is the caller's TypeError / ValueError, whole text,
  before any probe; an error escaping a probe (neither ProbeFailure nor ContractViolation)
  caught as one of those (its .violation / .title missing) instead of failing the contract.
* pytest_rnn_contracts.plugin: every device but "mps" marked mps (the condition negated); the
  rnn_device fixture's UsageError for getfixturevalue() deleted (an AttributeError instead);
  rnn_make_module's device= ignored (``device and default``); any error out of the golden
  store's save() reported as "NOT WRITTEN" (``except GoldenStoreError`` widened).
* pytest_rnn_contracts.session: --rnn-regen-goldens into a missing folder accepted at session
  start (the writability guard deleted); deactivate() reading ``state.active`` on a session
  the kit never configured (``or`` -> ``and``: an AttributeError after a conftest's own
  configure error).
* pytest_rnn_contracts.conformance: deploy_errors naming the known targets instead of the
  unknown ones; a non-SpecError while reading the spec off the module reported as "carries no
  spec" (``except SpecError`` widened); a contract whose prerequisite failed failing its item
  instead of skipping (the report's None check negated).

The time-limit floors are observed with a fake clock and a fake ``signal`` module: a real timer
cannot tell 1 ms from 10 ms reliably on a loaded machine, the timers the kit arms can.
"""
from __future__ import annotations

import inspect
import signal
import sys
import threading
import types
from typing import Any

import pytest
import torch
from torch import nn

import rnn_contracts.timeout
import rnn_contracts.trace
import rnn_contracts.verify
from rnn_contracts import ContractViolation, RNNSpec, verify_rnn
from rnn_contracts.cli import main
from rnn_contracts.timeout import ContractTimeout, run_with_limit
from rnn_contracts.probes.hygiene import DECLARE_BUFFERS
from rnn_contracts.trace import Change, same_values

pytest_plugins = ["pytester"]

#: inputs_untouched's advice, by the kinds of change it reports (verify._untouched_advice).
RESTORED = "restored by verify_rnn"
DECLARE = "a module whose buffers change by design declares RNNSpec(updates_buffers=True)"
assert DECLARE == DECLARE_BUFFERS  # pinned here, written once in the library
WARM_UP = "a module that builds parts of itself on its first call is called once before verify_rnn"


# --- targets.py --------------------------------------------------------------------------------
def test_a_factory_that_returns_no_module_is_a_usage_error(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """`rnn-contracts pkg:make_config` where make_config() returns a dict: exit 2, one line."""
    module = types.ModuleType("kill_runtime_targets")
    module.make_config = lambda: {"hidden": 6}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kill_runtime_targets", module)
    assert main(["kill_runtime_targets:make_config", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err == "rnn-contracts: error: kill_runtime_targets:make_config() returned dict, not a module\n"


# --- timeout.py: the re-armed timers, with a fake clock and a fake signal module -----------------
class FakeSignal:
    """signal's SIGALRM / ITIMER_REAL interface on a fake clock: records every timer armed, one
    timer at a time, and every signal raised."""

    SIGALRM = signal.SIGALRM
    ITIMER_REAL = signal.ITIMER_REAL
    SIG_DFL = signal.SIG_DFL
    SIG_IGN = signal.SIG_IGN

    def __init__(self, handler: Any, armed: tuple[float, float], clock: list[float]) -> None:
        self.handler, self.armed, self.clock, self.armed_at = handler, armed, clock, clock[0]
        self.timers: list[tuple[float, float]] = []
        self.raised: list[tuple[int, Any]] = []  # (signal, the handler then)

    def signal(self, signum: int, handler: Any) -> Any:
        assert signum == self.SIGALRM
        previous, self.handler = self.handler, handler
        return previous

    def getitimer(self, which: int) -> tuple[float, float]:
        assert which == self.ITIMER_REAL
        delay, interval = self.armed
        return (max(delay - (self.clock[0] - self.armed_at), 0.0) if delay else 0.0), interval

    def setitimer(self, which: int, delay: float, interval: float = 0.0) -> tuple[float, float]:
        previous = self.getitimer(which)
        self.timers.append((delay, interval))
        self.armed, self.armed_at = (delay, interval), self.clock[0]
        return previous

    def raise_signal(self, signum: int) -> None:
        self.raised.append((signum, self.handler))


@pytest.fixture
def fake_alarm(monkeypatch: pytest.MonkeyPatch):
    """(clock, make): clock[0] is time.monotonic() as timeout.py sees it; make(outer_delay,
    outer_interval, outer=None) installs a FakeSignal whose outer handler is ``outer`` or, by
    default, one that records the clock when it runs."""
    clock = [100.0]
    monkeypatch.setattr(rnn_contracts.timeout, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    outer_fired: list[float] = []

    def make(outer_delay: float, outer_interval: float = 0.0, outer: Any = None) -> FakeSignal:
        def recording(signum: int, frame: object) -> None:
            outer_fired.append(clock[0])

        fake = FakeSignal(recording if outer is None else outer, (outer_delay, outer_interval), clock)
        fake.outer, fake.outer_fired = fake.handler, outer_fired  # type: ignore[attr-defined]
        monkeypatch.setattr(rnn_contracts.timeout, "signal", fake)
        return fake

    assert threading.current_thread() is threading.main_thread()  # the SIGALRM path
    return clock, make


@pytest.mark.parametrize(("left", "rearmed"), [(0.004, 0.004), (0.0002, 0.001)])
def test_after_an_earlier_outer_timer_our_limit_is_rearmed_for_what_is_left(fake_alarm, left: float,
                                                                            rearmed: float) -> None:
    """An outer timer (pytest-timeout's) fires `left` seconds before our 1 s limit: its handler
    runs, then our limit is re-armed for what is left, never less than 1 ms (0 would disarm it)
    and never the 10 ms that would postpone a deadline that close."""
    clock, make = fake_alarm
    fake = make(1.0 - left)

    def call() -> None:
        clock[0] = 100.0 + 1.0 - left
        fake.handler(signal.SIGALRM, None)  # the outer deadline: not ours yet
        clock[0] = 101.0
        fake.handler(signal.SIGALRM, None)  # ours
        raise AssertionError("the limit did not fire")

    with pytest.raises(ContractTimeout) as caught:
        run_with_limit(call, 1.0)
    assert str(caught.value) == "did not finish within 1 s"
    assert fake.outer_fired == [pytest.approx(101.0 - left)]
    assert fake.timers == [
        (0, 0.0), (pytest.approx(1.0 - left), 0.0),  # installed: the outer timer read, then re-armed
        (pytest.approx(1.0 - left), 0.0),  # the call: the outer deadline comes first
        (pytest.approx(rearmed), 0.0),  # the outer deadline: ours, for what is left, before its handler
        (pytest.approx(rearmed), 0.0),  # the handler ran and left the timer alone: ours again
        (0, 0.0), (0, 0.0)]  # the call ended, then removed: the outer timer has fired, no repeat
    assert fake.handler is fake.outer  # the outer handler is back


@pytest.mark.parametrize(("left", "rearmed"), [(0.004, 0.004), (0.0002, 0.001)])
def test_an_outer_timer_is_put_back_with_what_was_left_of_it(fake_alarm, left: float, rearmed: float) -> None:
    """The call returns `left` seconds before an outer timer's deadline (0.5 s, every 0.25 s):
    the outer timer is re-armed for what is left, at least 1 ms, with its interval."""
    clock, make = fake_alarm
    fake = make(0.5, 0.25)

    def call() -> str:
        clock[0] = 100.0 + 0.5 - left
        return "done"

    assert run_with_limit(call, 1.0) == "done"
    assert fake.timers == [
        (0, 0.0), (0.5, 0.0),  # installed: the outer timer read, then re-armed
        (0.5, 0.0),  # the call: the outer deadline comes first
        (pytest.approx(rearmed), 0.0),  # the call ended: the outer deadline, what is left
        (0, 0.0), (pytest.approx(rearmed), 0.25)]  # removed: the outer timer back, with its interval
    assert fake.outer_fired == [] and fake.handler is fake.outer


def test_one_handler_serves_a_series_and_an_outer_deadline_between_two_calls(fake_alarm) -> None:
    """time_limits installs its handler once for every call it runs (signal.signal is what
    cost); the outer timer (due at 100.5, every 0.25 s) stays armed between two calls and its
    handler runs when it comes there, then again one interval later inside the second call."""
    clock, make = fake_alarm
    fake = make(0.5, 0.25)
    installs: list[Any] = []
    real_signal = fake.signal
    fake.signal = lambda signum, handler: installs.append(handler) or real_signal(signum, handler)

    def first() -> str:
        clock[0] = 100.2
        return "first"

    def second() -> str:
        clock[0] = 100.75
        fake.handler(signal.SIGALRM, None)  # the outer timer's next deadline
        return "second"

    with rnn_contracts.timeout.time_limits(1.0) as limited:
        assert limited(first) == "first"
        assert fake.armed == (pytest.approx(0.3), 0.0)  # between the calls: the outer deadline
        clock[0] = 100.5
        fake.handler(signal.SIGALRM, None)
        assert fake.outer_fired == [100.5] and fake.armed == (pytest.approx(0.25), 0.0)
        assert limited(second) == "second"
    assert fake.outer_fired == [100.5, 100.75]
    assert len(installs) == 2 and installs[1] is fake.outer  # ours once, then the outer put back
    assert fake.armed == (pytest.approx(0.25), 0.25)  # its next deadline, with its interval


def test_an_outer_handler_that_raises_an_exception_the_module_swallows_keeps_our_limit(fake_alarm) -> None:
    """Our timer is armed before the outer handler runs: when that handler raises and the module
    catches it, our limit still comes (it was lost: the contract ran without one)."""
    clock, make = fake_alarm

    def raising(signum: int, frame: object) -> None:
        raise RuntimeError("the outer handler's")

    fake = make(0.2, outer=raising)

    def call() -> None:
        clock[0] = 100.2
        with pytest.raises(RuntimeError):  # the module swallows it
            fake.handler(signal.SIGALRM, None)
        assert fake.armed == (pytest.approx(0.8), 0.0)  # ours, for what is left
        clock[0] = 101.0
        fake.handler(signal.SIGALRM, None)

    with pytest.raises(ContractTimeout):
        run_with_limit(call, 1.0)
    assert fake.handler is raising


def test_an_outer_handler_that_rearms_the_timer_keeps_its_next_deadline(fake_alarm) -> None:
    """A heartbeat: the outer handler re-arms the timer itself (0.1 s) each time it runs. That is
    its next deadline: it runs again then, inside the same call (its re-arming was overwritten)."""
    clock, make = fake_alarm
    beats: list[float] = []

    def heartbeat(signum: int, frame: object) -> None:
        beats.append(clock[0])
        fake.setitimer(signal.ITIMER_REAL, 0.1)

    fake = make(0.1, outer=heartbeat)

    def call() -> str:
        for now in (100.1, 100.2):
            clock[0] = now
            fake.handler(signal.SIGALRM, None)
            assert fake.armed == (pytest.approx(0.1), 0.0)  # the heartbeat's next, before our 1 s
        return "done"

    assert run_with_limit(call, 1.0) == "done"
    assert beats == [100.1, 100.2]
    assert fake.armed == (pytest.approx(0.1), 0.0) and fake.handler is heartbeat  # still beating


def test_a_watchdog_left_on_the_default_action_still_ends_the_process(fake_alarm) -> None:
    """``signal.alarm(n)`` with SIGALRM's default action is a watchdog: when its deadline comes
    during a contract the process ends, as without the kit (the signal is raised again with the
    default action back; it was swallowed). The fake raise_signal records it instead."""
    clock, make = fake_alarm
    fake = make(0.3, outer=signal.SIG_DFL)

    def call() -> str:
        clock[0] = 100.3
        fake.handler(signal.SIGALRM, None)
        return "not ended"

    run_with_limit(call, 1.0)
    assert fake.raised == [(signal.SIGALRM, signal.SIG_DFL)]


def test_a_call_run_inside_another_keeps_the_enclosing_deadline(fake_alarm) -> None:
    """A prerequisite run from inside a contract's probe (batch_independence asked for by
    finite) gets its own limit but never outlives the enclosing one; the enclosing deadline is
    back once it returns."""
    clock, make = fake_alarm
    fake = make(0.0)
    with rnn_contracts.timeout.time_limits(1.0) as limited:
        def inner() -> None:
            assert fake.armed == (pytest.approx(0.5), 0.0)  # 100.5 + 1 s, capped at 101
            clock[0] = 101.0
            fake.handler(signal.SIGALRM, None)  # the enclosing deadline

        def outer() -> None:
            clock[0] = 100.5
            with pytest.raises(ContractTimeout):
                limited(inner)
            assert fake.armed == (pytest.approx(1e-3), 0.0)  # the enclosing deadline has passed
            fake.handler(signal.SIGALRM, None)

        with pytest.raises(ContractTimeout):
            limited(outer)
    assert fake.armed == (0, 0.0) and fake.handler is fake.outer


# --- timeout.py: the daemon thread outside the main thread ---------------------------------------
def _in_worker(call: Any) -> dict[str, object]:
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            box["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(20)
    assert not worker.is_alive()
    return box


def test_outside_the_main_thread_an_error_raised_inside_the_limit_propagates() -> None:
    planted = ValueError("planted by the test")

    def raises() -> None:
        raise planted

    box = _in_worker(lambda: run_with_limit(raises, 5.0))
    assert box == {"error": planted} and box["error"] is planted


def test_outside_the_main_thread_the_value_comes_back() -> None:
    assert _in_worker(lambda: run_with_limit(lambda: 42, 5.0)) == {"value": 42}


# --- trace.py ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "how", "declarable"), [
    ("buffer", "values changed", True),
    ("buffer", "replaced by another object", False),
    ("buffer", "added", False),
    ("parameter", "values changed", False),
    ("flag", "requires_grad True -> False", False),
])
def test_only_a_buffers_values_may_be_declared(kind: str, how: str, declarable: bool) -> None:
    assert Change(kind, "w", how).declarable is declarable  # type: ignore[arg-type]


class RebindsBuffer(nn.GRU):
    """Counts calls by rebinding its buffer (self.calls = self.calls + 1): a new object."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x, hx=None):
        self.calls = self.calls + 1
        return super().forward(x, hx)


def test_updates_buffers_does_not_cover_a_buffer_replaced_by_another_object() -> None:
    torch.manual_seed(0)
    module = RebindsBuffer(4, 6)
    calls = module.calls
    with pytest.raises(ContractViolation) as caught:
        verify_rnn(module, RNNSpec.from_module(module, updates_buffers=True), contracts=["inputs_untouched"])
    assert [(r.name, r.status, r.detail) for r in caught.value.report.results] == [
        ("inputs_untouched", "failed",
         f"during the probes the module changed buffer calls (replaced by another object) ({RESTORED})")]
    assert module.calls is calls


class HoldsNaN(nn.GRU):
    """A mask buffer that holds NaN (never written): the module changes nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer("mask", torch.tensor([float("nan"), 1.0]))


def test_a_buffer_that_holds_nan_is_not_a_change() -> None:
    torch.manual_seed(0)
    module = HoldsNaN(4, 6)
    mask = module.mask
    report = verify_rnn(module, contracts=["inputs_untouched"])
    assert [(r.name, r.status, r.detail) for r in report.results] == [("inputs_untouched", "passed", "")]
    assert module.mask is mask and torch.equal(mask.isnan(), torch.tensor([True, False]))


@pytest.mark.parametrize(("a", "b", "same"), [
    (torch.tensor([float("nan"), 1.0]), torch.tensor([float("nan"), 1.0]), True),
    (torch.tensor([float("nan"), 1.0]), torch.tensor([float("nan"), 2.0]), False),
    (torch.tensor([complex(float("nan"), 0.0), 1j]), torch.tensor([complex(float("nan"), 0.0), 1j]), True),
    (torch.tensor([complex(float("nan"), 0.0), 1j]), torch.tensor([complex(float("nan"), 0.0), 2j]), False),
    (torch.tensor([1, 2]), torch.tensor([1, 2]), True),
    (torch.tensor([1, 2]), torch.tensor([1, 3]), False),
    (torch.tensor([1, 2]), torch.tensor([1.0, 2.0]), False),  # another dtype
    (torch.tensor([1.0, 2.0]), torch.tensor([[1.0, 2.0]]), False),  # another shape
], ids=["float-nan", "float-differs", "complex-nan", "complex-differs", "int", "int-differs", "dtype", "shape"])
def test_same_values_nan_equal_to_nan(a: torch.Tensor, b: torch.Tensor, same: bool) -> None:
    assert same_values(a, b) is same


class RenamesBuffer(nn.GRU):
    """Renames its only buffer on the first call, keeping the tensor object: fresh -> used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer("fresh", torch.zeros(()))

    def forward(self, x, hx=None):
        if "fresh" in self._buffers:
            self._buffers["used"] = self._buffers.pop("fresh")
        return super().forward(x, hx)


def test_a_slot_renamed_with_the_same_object_is_reported_and_put_back() -> None:
    """Same count, same object, another name: still a change, and restored under its own name."""
    torch.manual_seed(0)
    module = RenamesBuffer(4, 6)
    fresh = module.fresh
    with pytest.raises(ContractViolation) as caught:
        verify_rnn(module, contracts=["inputs_untouched"])
    assert [(r.name, r.status, r.detail) for r in caught.value.report.results] == [
        ("inputs_untouched", "failed",
         f"during the probes the module changed buffer fresh (removed), buffer used (added) ({RESTORED}; {WARM_UP})")]
    assert list(module._buffers) == ["fresh"] and module._buffers["fresh"] is fresh


class BuildsOnFirstCall(nn.Module):
    """Its GRU is made on the first call, sized from the input (a lazy submodule)."""

    def __init__(self) -> None:
        super().__init__()
        self.inner: nn.Module | None = None

    def forward(self, x, hx=None):
        if self.inner is None:
            self.inner = nn.GRU(x.shape[-1], 3).to(x)
        return self.inner(x, hx)


class CountsInABuffer(nn.GRU):
    """Counts its calls in a buffer's value."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x, hx=None):
        self.calls += 1
        return super().forward(x, hx)


@pytest.mark.parametrize(("make", "detail"), [
    (BuildsOnFirstCall, f"during the probes the module changed submodule inner (added) ({RESTORED}; {WARM_UP})"),
    (lambda: CountsInABuffer(4, 3), f"forward modified buffer calls in place ({DECLARE})"),
], ids=["lazy-submodule", "buffer-values"])
def test_inputs_untouched_advises_what_fits_the_change(make, detail: str) -> None:
    """From a user-view review: a submodule built on the first call was told to declare
    updates_buffers, which changed nothing; a warm-up call is what works (as for LazyLinear). A
    buffer written in place is the case the declaration is for: it says so."""
    torch.manual_seed(0)
    spec = RNNSpec("GRU", 4, 3)
    with pytest.raises(ContractViolation) as caught:
        verify_rnn(make(), spec, contracts=["inputs_untouched"])
    assert [r.detail for r in caught.value.report.results] == [detail]
    warmed = make()
    warmed(torch.randn(5, 3, 4))
    if isinstance(warmed, BuildsOnFirstCall):  # built: nothing is added any more
        assert verify_rnn(warmed, spec).ok


def test_the_audit_and_the_restore_compare_each_tensor_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The snapshot's value comparison is read by both the audit and the restore: one pass over
    the module's tensors (on a 338 MB LSTM each pass is ~45 ms). That a changed tensor is still
    put back is shown by the tests of inputs_untouched's restore."""
    compared: list[int] = []

    def counting(a: torch.Tensor, b: torch.Tensor) -> bool:
        compared.append(id(a))
        return same_values(a, b)

    monkeypatch.setattr(rnn_contracts.trace, "same_values", counting)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = nn.GRU(4, 6, num_layers=2)
    verify_rnn(module, contracts=["shapes"])
    assert len(compared) == len(list(module.parameters()))


# --- verify.py -----------------------------------------------------------------------------------
def test_the_default_timeout_is_the_documented_120_seconds() -> None:
    """README: "each contract runs under a time limit of 120 s by default" (the signature's
    default is the DEFAULT_TIMEOUT constant, read when verify_rnn is defined)."""
    assert inspect.signature(verify_rnn).parameters["timeout"].default == 120.0
    assert rnn_contracts.verify.DEFAULT_TIMEOUT == 120.0


class SeesTF32(nn.GRU):
    """Records the cuBLAS TF32 flag as its forward sees it."""

    seen: list[bool]

    def forward(self, x, hx=None):
        self.seen.append(torch.backends.cuda.matmul.allow_tf32)
        return super().forward(x, hx)


@pytest.fixture
def tf32_on():
    """The caller turned cuBLAS TF32 on (torch.backends.cuda.matmul.allow_tf32 = True); put back
    after the test (monkeypatch cannot: the flag is no plain attribute)."""
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    yield
    torch.backends.cuda.matmul.allow_tf32 = saved


def test_on_the_cpu_the_callers_tf32_flags_are_left_alone(tf32_on: None) -> None:
    """TF32 only matters to CUDA kernels: probing on the CPU does not touch the caller's flags."""
    torch.manual_seed(0)
    module = SeesTF32(4, 6)
    module.seen = []
    verify_rnn(module, contracts=["shapes"], device="cpu")
    assert module.seen and set(module.seen) == {True}
    assert torch.backends.cuda.matmul.allow_tf32 is True


def test_on_cuda_tf32_is_off_while_probing_and_restored(tf32_on: None) -> None:
    """A CUDA device (faked: only its type decides) probes with TF32 off, every flag back after."""
    with rnn_contracts.verify._tf32_off(torch.device("cuda", 0)):
        assert torch.backends.cuda.matmul.allow_tf32 is False
    assert torch.backends.cuda.matmul.allow_tf32 is True
    with rnn_contracts.verify._tf32_off(torch.device("cpu")):
        assert torch.backends.cuda.matmul.allow_tf32 is True


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    (dict(deploy=["onx"]), ValueError, "unknown deployment target(s) onx; known: export, onnx, compile"),
    (dict(weight_map=["weight_ih_l0"]), TypeError,
     "verify_rnn(weight_map=...) takes {torch parameter name: module parameter name}, got list"),
    (dict(weight_map={"weight_ih_l0": 3}), TypeError,
     "verify_rnn(weight_map=...) takes {torch parameter name: module parameter name}, got dict"),
    (dict(weight_map={"weight_ih_10": "weight_ih_l0"}), ValueError,
     "verify_rnn(weight_map=...): 'weight_ih_10' is no parameter of torch.nn.GRU(4, 6); its parameters: "
     "weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0"),
    (dict(weight_map={"weight_ih_l0": "W"}), ValueError,
     "verify_rnn(weight_map=...): 'W' names no parameter of the module; its parameters: "
     "weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0"),
    (dict(weight_map={"weight_ih_l0": "weight_hh_l0"}), ValueError,
     "verify_rnn(weight_map=...): weight_hh_l0 has shape (18, 6), weight_ih_l0 needs (18, 4)"),
    (dict(weight_map={"weight_ih_l0": "weight_ih_l0.T"}), ValueError,
     "verify_rnn(weight_map=...): weight_ih_l0.T has shape (4, 18), weight_ih_l0 needs (18, 4)"),
    (dict(timeout=1e6), ValueError,
     "verify_rnn(timeout=...) takes a positive number of seconds below 1e6 or None (no limit), got 1000000.0"),
], ids=["unknown-deploy", "weight-map-list", "weight-map-value-not-str", "weight-map-unknown-slot",
        "weight-map-unknown-parameter", "weight-map-shape", "weight-map-transposed-shape", "timeout-1e6"])
def test_a_wrong_argument_is_the_callers_error_before_any_probe(kwargs: dict[str, Any], error: type,
                                                                 message: str) -> None:
    torch.manual_seed(0)
    module = SeesTF32(4, 6)  # a GRU(4, 6)
    module.seen = []
    with pytest.raises(error) as caught:
        verify_rnn(module, contracts=["shapes"], **kwargs)
    assert type(caught.value) is error and str(caught.value) == message
    assert module.seen == []  # no probe ran


def test_a_right_weight_map_and_a_limit_just_below_1e6_are_accepted() -> None:
    torch.manual_seed(0)
    module = nn.GRU(4, 6)
    names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    report = verify_rnn(module, contracts=["reference"], weight_map={n: n for n in names}, timeout=999_999.0)
    assert [(r.name, r.status, r.detail) for r in report.results] == [("reference", "passed", (
        "placed by order and shape: weight_ih_l0 <- weight_ih_l0, weight_hh_l0 <- weight_hh_l0, bias_ih_l0 "
        "<- bias_ih_l0, bias_hh_l0 <- bias_hh_l0; gate order r, z, n; reset convention r * (W_hn h + b_hn) "
        "(torch)"))]


def test_an_error_that_escapes_a_probe_fails_its_contract_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a ProbeFailure, not a ContractViolation: a RuntimeError out of the probe's own
    comparison is the contract's failed evidence, and the next contract still runs."""
    from rnn_contracts.probes import Context

    def broken(a, b):
        raise RuntimeError("cannot compare")

    monkeypatch.setattr(Context, "shows_change", staticmethod(broken))  # initial_state's stacks
    torch.manual_seed(0)
    with pytest.raises(ContractViolation) as caught:
        verify_rnn(nn.GRU(4, 6), contracts=["shapes", "initial_state"])
    assert [(r.name, r.status, r.detail) for r in caught.value.report.results] == [
        ("shapes", "passed", ""),
        ("initial_state", "failed", "the module's result broke the probe: RuntimeError: cannot compare")]


def _float8_gru() -> nn.GRU:
    torch.manual_seed(0)
    return nn.GRU(4, 6).to(torch.float8_e5m2)


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: verify_rnn("GRU", RNNSpec("GRU", 4, 6)), TypeError,  # type: ignore[arg-type]
     "verify_rnn() takes a recurrent module (or a callable with its calling convention), got str"),
    (lambda: verify_rnn(nn.GRU(4, 6), cell=3), TypeError,
     "verify_rnn(cell=...) takes the layer's cell, a callable, got int"),
    (lambda: verify_rnn(_float8_gru()), ValueError,
     "verify_rnn: the module computes in torch.float8_e5m2; pass dtype= one of float16, bfloat16, float32, "
     "float64"),
], ids=["module-not-callable", "cell-not-callable", "module-dtype"])
def test_a_module_or_cell_verify_rnn_cannot_probe_is_the_callers_error(call: Any, error: type,
                                                                        message: str) -> None:
    with pytest.raises(error) as caught:
        call()
    assert type(caught.value) is error and str(caught.value) == message


# --- pytest_rnn_contracts.conformance ------------------------------------------------------------
@pytest.fixture
def inner(monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
    """The arguments of a quiet inner pytest session on the CPU, the plugin's environment variables
    unset and summary lines at 200 columns (pytest cuts them at the terminal's width)."""
    from pytest_rnn_contracts.session import ENV_CHECKER, ENV_DEVICES, ENV_REQUIRE

    for name in (ENV_DEVICES, ENV_REQUIRE, ENV_CHECKER):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return ("--rnn-device", "cpu", "-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:benchmark",
            "-p", "no:hypothesispytest")


def test_a_known_deployment_target_is_accepted_and_an_unknown_one_named() -> None:
    from pytest_rnn_contracts.conformance import deploy_errors

    assert deploy_errors("TestX", ("export", "onnx", "compile")) == []
    assert deploy_errors("TestX", ["onnx", "onx"]) == [
        "TestX.deploy names no deployment target: 'onx' (did you mean 'onnx'?); targets: export, onnx, compile"]


LAZY_DELEGATE = '''
import pytest
import torch
from pytest_rnn_contracts import RNNContractTests


class Delegating(torch.nn.GRU):
    """Once built, any attribute it lacks is read from weights not loaded yet: a RuntimeError,
    no AttributeError."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.built = True

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if self.__dict__.get("built"):
                raise RuntimeError(f"{name}: weights not loaded") from None
            raise


class TestDelegating(RNNContractTests):
    @pytest.fixture
    def rnn_module(self):
        torch.manual_seed(0)
        return Delegating(4, 3)
'''


def test_an_error_reading_the_spec_off_the_module_is_shown_as_itself(pytester: pytest.Pytester,
                                                                     inner: tuple[str, ...]) -> None:
    """Only a SpecError means "the module carries no spec"; the module's own RuntimeError (here
    from its __getattr__, when the spec reader looks for a torch.compile wrapper's _orig_mod)
    fails the item as itself, not as a spec the module lacks (it has mode, input_size and
    hidden_size)."""
    pytester.makepyfile(test_scenario=LAZY_DELEGATE)
    result = pytester.runpytest(*inner, "-k", "shapes", "-rf")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["FAILED test_scenario.py::TestDelegating::test_contract[[]cpu-shapes[]] - "
                                 "RuntimeError: _orig_mod: weights not loaded"])
    result.stdout.no_fnmatch_line("*carries no spec*")


RETURNS_AN_INT = '''
import pytest
import torch
from pytest_rnn_contracts import RNNContractTests


class ReturnsAnInt(torch.nn.GRU):
    def forward(self, x, hx=None):
        return 3


class TestReturnsAnInt(RNNContractTests):
    @pytest.fixture
    def rnn_module(self):
        torch.manual_seed(0)
        return ReturnsAnInt(4, 3)
'''


def test_a_contract_whose_prerequisite_failed_is_skipped_not_failed(pytester: pytest.Pytester,
                                                                    inner: tuple[str, ...]) -> None:
    """finite relies on shapes: where shapes fails, finite's item skips naming it (shapes' own item
    is the failure), and is not a second failure with the same evidence."""
    pytester.makepyfile(test_scenario=RETURNS_AN_INT)
    result = pytester.runpytest(*inner, "-k", "shapes or finite",
                                "-rfs")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "FAILED test_scenario.py::TestReturnsAnInt::test_contract[[]cpu-shapes[]] - rnn_contracts.errors."
        "ContractViolation: verify_rnn: ReturnsAnInt(4, 3) broke 1 of 1 contracts on cpu (float32): shapes",
        "SKIPPED [[]1[]] *conformance.py:*: finite not run: shapes failed (its own item fails with the "
        "evidence)"])


# --- pytest_rnn_contracts.plugin -----------------------------------------------------------------
def test_only_the_mps_device_is_marked_mps(pytester: pytest.Pytester, inner: tuple[str, ...]) -> None:
    """-m mps selects the items parametrized on MPS: none of the CPU ones (-m "not mps" keeps them)."""
    pytester.makepyfile(test_device="def test_device(rnn_device):\n    assert rnn_device == 'cpu'\n")
    pytester.runpytest(*inner, "-m", "mps").assert_outcomes(deselected=1)
    pytester.runpytest(*inner, "-m", "not mps").assert_outcomes(passed=1)


def test_a_projects_own_generate_tests_may_parametrize_rnn_device(pytester: pytest.Pytester,
                                                                  inner: tuple[str, ...]) -> None:
    """A conftest's pytest_generate_tests that parametrizes rnn_device (indirectly, the kit's
    fixture then reads the value) got "duplicate parametrization" from the kit's own hook, a
    collection error naming neither (found by a fuzzing helper). The kit's hook runs last and
    leaves a parametrized rnn_device alone."""
    pytester.makeconftest("def pytest_generate_tests(metafunc):\n"
                          "    if 'rnn_device' in metafunc.fixturenames:\n"
                          "        metafunc.parametrize('rnn_device', ['cpu'], indirect=True, ids=['mine'])\n")
    pytester.makepyfile(test_device="def test_device(rnn_device):\n    assert rnn_device == 'cpu'\n")
    result = pytester.runpytest(*inner, "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_device[[]mine[]] PASSED*"])


def test_an_override_that_chains_to_the_kits_rnn_device_keeps_its_parametrization(
        pytester: pytest.Pytester, inner: tuple[str, ...]) -> None:
    """A conftest's ``rnn_device(rnn_device)`` reaches the kit's fixture: the kit still
    parametrizes it (a review found the override made every such test a usage error)."""
    pytester.makeconftest("import pytest\n\n\n@pytest.fixture\ndef rnn_device(rnn_device):\n"
                          "    return rnn_device\n")
    pytester.makepyfile(test_device="def test_device(rnn_device):\n    assert rnn_device == 'cpu'\n")
    result = pytester.runpytest(*inner, "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_device[[]cpu[]] PASSED*"])


@pytest.mark.parametrize("name", ["RNN_CONTRACTS_DEVICES", "RNN_CONTRACTS_REQUIRE_DEVICE"])
def test_an_empty_device_variable_activates_the_kit_at_session_start(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Set but empty, it is a usage error; reported lazily, inside xdist workers, it became an
    INTERNALERROR that never showed the message (found by a review): it counts as explicit."""
    from pytest_rnn_contracts.session import requested_explicitly

    monkeypatch.delenv(name, raising=False)
    config = pytester.parseconfig()
    assert not requested_explicitly(config)
    monkeypatch.setenv(name, "")
    assert requested_explicitly(config)


def test_rnn_device_asked_for_by_getfixturevalue_is_a_usage_error(pytester: pytest.Pytester,
                                                                   inner: tuple[str, ...]) -> None:
    pytester.makepyfile(test_device=(
        "def test_device(request):\n"
        "    request.getfixturevalue('rnn_device')\n"))
    result = pytester.runpytest(*inner, "-rf")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "FAILED test_device.py::test_device - pytest.UsageError: rnn-contracts: the rnn_device "
        "fixture is parametrized at collection: name it in the test's (or a fixture's) signature, not "
        "getfixturevalue()"])


def test_rnn_make_module_moves_to_the_device_asked_for(rnn_make_module: Any) -> None:
    """device= wins over the test's default device ("cpu" here: the test has no rnn_device)."""
    module = rnn_make_module(nn.GRU, 4, 3, device="meta", dtype=torch.float64)
    assert {(p.device.type, p.dtype) for p in module.parameters()} == {("meta", torch.float64)}
    assert {p.device.type for p in rnn_make_module(nn.GRU, 4, 3).parameters()} == {"cpu"}


GOLDEN_REGEN = """
import torch
def test_g(rnn_golden, rnn_make_module, hello_batch):
    out = rnn_make_module(torch.nn.RNN, 4, 2)(hello_batch)[0].detach()
    out[0, 0, 0] += 1e-3
    rnn_golden.check("seed_rnn_4_2_output", out)
"""


@pytest.mark.parametrize("store_error", [True, False], ids=["store-error", "kit-bug"])
def test_a_golden_store_that_cannot_be_written_is_reported_and_a_kit_bug_is_not_hidden(
        pytester: pytest.Pytester, inner: tuple[str, ...], monkeypatch: pytest.MonkeyPatch,
        store_error: bool) -> None:
    """--rnn-regen-goldens with a store whose save fails: a GoldenStoreError is the summary's
    "NOT WRITTEN: ..." line and exit status 1; any other error out of save() is the kit's own bug
    and surfaces as pytest's internal error, never as a store that merely was not written."""
    import shutil

    from rnn_contracts import goldens

    store = pytester.path / "goldens.json"
    shutil.copy(goldens.DEFAULT_PATH, store)
    planted = (goldens.GoldenStoreError(f"{store}: cannot write the golden store: No space left on device")
               if store_error else RuntimeError("planted kit bug"))

    def save(self) -> None:
        raise planted

    monkeypatch.setattr(goldens.GoldenStore, "save", save)
    pytester.makepyfile(test_g=GOLDEN_REGEN)
    result = pytester.runpytest_inprocess(*inner, "--rnn-goldens-file", str(store), "--rnn-regen-goldens")
    if store_error:
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines([f"NOT WRITTEN: {store}: cannot write the golden store: No space left on device"])
    else:
        assert result.ret == pytest.ExitCode.INTERNAL_ERROR
        assert "RuntimeError: planted kit bug" in result.stdout.str() + result.stderr.str()
        assert "NOT WRITTEN" not in result.stdout.str()


def test_regen_into_a_missing_folder_is_a_usage_error_at_session_start(pytester: pytest.Pytester,
                                                                       inner: tuple[str, ...]) -> None:
    path = pytester.path / "no_such_folder" / "goldens.json"
    pytester.makepyfile(test_g=GOLDEN_REGEN)
    result = pytester.runpytest_inprocess(*inner, "--rnn-goldens-file", str(path), "--rnn-regen-goldens")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.errlines if line.strip()] == [
        f"ERROR: rnn-contracts: --rnn-regen-goldens cannot write {path}: the file or its folder is missing "
        "or not writable"]
    assert not path.parent.exists()


def test_a_session_that_stops_before_the_kit_configured_ends_with_its_own_error(
        pytester: pytest.Pytester, inner: tuple[str, ...]) -> None:
    """A conftest's pytest_configure that runs first and refuses: the kit never set up its session
    state, and unconfiguring it adds nothing to the conftest's one error line."""
    pytester.makeconftest(
        "import pytest\n"
        "@pytest.hookimpl(tryfirst=True)\n"
        "def pytest_configure(config):\n"
        "    raise pytest.UsageError('the conftest refuses')\n")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_inprocess(*inner)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.errlines if line.strip()] == ["ERROR: the conftest refuses"]
