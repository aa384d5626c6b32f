"""The bug zoo: what share of real recurrent-layer bugs verify_rnn catches, and that it never flags
a correct module.

The zoo is data (tests/zoo: ``FAULTY`` and ``CORRECT`` tables of ZooEntry); one generic test body
runs over each table. ``test_zoo_summary`` prints the zoo's result (caught / faulty, false
positives / correct, median verify_rnn time per module); see it with ``-rP`` (or ``-s`` without
xdist). Outcomes are computed once per (entry, device) per process and shared by the tests.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import pytest
import torch

from rnn_contracts import CONTRACT_NAMES, ContractReport, ContractViolation, verify_rnn
from zoo import CORRECT, FAULTY, ZooEntry, one_thread


@dataclass(frozen=True)
class Outcome:
    report: ContractReport
    error: ContractViolation | None
    seconds: float
    training_before: tuple[bool, ...]
    training_after: tuple[bool, ...]

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.report.failures]


_OUTCOMES: dict[tuple[str, str], Outcome] = {}



def outcome(entry: ZooEntry, device: str) -> Outcome:
    """verify_rnn on a fresh module of ``entry`` (cached per process)."""
    key = (entry.id, device)
    if key not in _OUTCOMES:
        module = entry.build()
        before = tuple(m.training for m in module.modules())
        start = time.perf_counter()
        try:
            with one_thread():
                report, error = verify_rnn(module, entry.spec, device=device), None
        except ContractViolation as exc:
            report, error = exc.report, exc  # type: ignore[attr-defined]
        seconds = time.perf_counter() - start
        after = tuple(m.training for m in module.modules())
        _OUTCOMES[key] = Outcome(report, error, seconds, before, after)
    return _OUTCOMES[key]


def _ids(entry: ZooEntry) -> str:
    return entry.id


# -- the table itself ---------------------------------------------------------------------------
def test_zoo_table_is_sound() -> None:
    ids = [e.id for e in FAULTY + CORRECT]
    assert len(ids) == len(set(ids)), "zoo ids must be unique"
    assert len(FAULTY) >= 20 and len(CORRECT) >= 10
    assert all(e.expect in CONTRACT_NAMES for e in FAULTY), [e.expect for e in FAULTY]
    assert all(e.expect is None for e in CORRECT)
    assert all(e.about for e in FAULTY + CORRECT)
    # The zoo exercises most contracts, not one favourite.
    assert {e.expect for e in FAULTY} == set(CONTRACT_NAMES)


@pytest.mark.parametrize("entry", FAULTY, ids=_ids)
def test_faulty_module_runs(entry: ZooEntry) -> None:
    """A realistic fault runs: one plain call (no h_0) returns (output, state) without raising,
    so verify_rnn has to find the fault by its contracts, not by a crash."""
    module = entry.build().eval()
    x = torch.randn(5, 3, module.input_size, generator=torch.Generator().manual_seed(1))
    output, state = module(x)
    assert isinstance(output, torch.Tensor) and state is not None


# -- the generic tests --------------------------------------------------------------------------
@pytest.mark.parametrize("entry", FAULTY, ids=_ids)
def test_faulty_module_is_rejected(entry: ZooEntry, device: str) -> None:
    got = outcome(entry, device)
    assert got.error is not None, f"verify_rnn accepted {entry.id}: {entry.about}\n{got.report}"
    assert entry.expect in got.failed, (
        f"{entry.id}: expected {entry.expect} among the failures, got {got.failed}\n{got.error}"
    )
    # The exception names the contract and carries its evidence.
    assert f"[{entry.expect}] " in str(got.error)
    assert entry.expect in got.error.title


@pytest.mark.parametrize("entry", CORRECT, ids=_ids)
def test_correct_module_passes(entry: ZooEntry, device: str) -> None:
    got = outcome(entry, device)
    assert got.error is None, f"false positive on {entry.id} ({entry.about}):\n{got.error}"
    assert got.report.ok and len(got.report.results) == len(CONTRACT_NAMES)
    # Every correct module is a torch layer's math: reference applies, by torch's names or else
    # by placing its own parameters by order and shape (the report says which).
    reference = next(r for r in got.report.results if r.name == "reference")
    assert reference.status == "passed", reference.detail
    if entry.torch_names:
        assert reference.detail == "torch's parameter names: loaded as they are"
    else:
        assert reference.detail.startswith("placed by order and shape: weight_ih_l0 <- "), reference.detail
    # Probed in eval mode, training flags restored (some entries are left in training mode).
    assert got.training_after == got.training_before


def test_a_crash_is_reported_as_a_violation(device: str) -> None:
    """A module that raises inside a probe gives a ContractViolation naming the contract and the
    input it raised on, never a bare exception."""
    entry = next(e for e in FAULTY if e.id == "h0_view_needs_contiguous")
    got = outcome(entry, device)
    detail = next(r.detail for r in got.report.failures if r.name == "initial_state")
    assert detail.startswith("the module raised RuntimeError on a non-contiguous h_0 (input (")
    assert "h_0 (2, " in detail and "view size is not compatible" in detail


def test_zoo_summary(device: str, record_property: pytest.RecordProperty) -> None:
    """The zoo's result: every fault caught by its contract, no correct module flagged."""
    faulty = {e.id: outcome(e, device) for e in FAULTY}
    correct = {e.id: outcome(e, device) for e in CORRECT}
    caught = [e.id for e in FAULTY if e.expect in faulty[e.id].failed]
    rejected = [i for i, o in faulty.items() if o.error is not None]
    false_positives = [i for i, o in correct.items() if o.error is not None]
    seconds = [o.seconds for o in (*faulty.values(), *correct.values())]
    median_ms = statistics.median(seconds) * 1e3
    lines = [
        f"zoo on {device}: caught {len(caught)}/{len(FAULTY)} faulty modules by the expected contract "
        f"({len(rejected)}/{len(FAULTY)} rejected at all); false positives {len(false_positives)}/"
        f"{len(CORRECT)} correct modules; median verify_rnn time {median_ms:.1f} ms per module "
        f"(max {max(seconds) * 1e3:.0f} ms)",
    ]
    for e in FAULTY:
        lines.append(f"  {e.id:<30} expected {e.expect:<20} failed: {', '.join(faulty[e.id].failed)}")
    print("\n".join(lines))
    record_property("zoo_caught", f"{len(caught)}/{len(FAULTY)}")
    record_property("zoo_false_positives", f"{len(false_positives)}/{len(CORRECT)}")
    record_property("zoo_median_ms", f"{median_ms:.1f}")
    assert len(caught) == len(FAULTY), sorted(set(faulty) - set(caught))
    assert not false_positives, false_positives
