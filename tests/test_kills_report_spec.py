"""ContractReport's verdict and table, the progress reporter's choice, the seed's claim check
and RNNSpec's validation, asserted as the user sees them.

Kills (mutation/README.md):

* report.ContractReport.ok: a "not run" result without evidence (left unrun because of a
  failure inside the report) failing the report (``and`` -> ``or``);
* report.ContractReport.table: the time column in tenths of a millisecond times ten (``1e3``
  -> ``1e4``);
* progress._is_terminal: a stream without ``isatty`` taken for a terminal (``return False`` ->
  ``return True``), so a log or a pipe would get rich's live display and its control characters;
* seed.seed_checks' claim check catching every error instead of ContractViolation only, so an
  error of another kind turned into an AttributeError (``exc.violations``) instead of propagating;
* spec._as_bool accepting any int (``and`` -> ``or``): ``bidirectional=2`` read as True;
* RNNSpec.__post_init__ without the convention guard (an unknown convention accepted) and
  without the cell guard (a cell spec with num_layers=2, bidirectional, proj_size, packed or
  returns_states=False accepted).
"""
from __future__ import annotations

import io
from typing import Any

import pytest
import torch
from torch import nn

import rnn_contracts.seed
from rnn_contracts.errors import SpecError, Violation
from rnn_contracts.progress import Live, PlainLines, make_reporter
from rnn_contracts.report import ContractReport, ContractResult
from rnn_contracts.spec import RNNSpec


def _report(*results: ContractResult) -> ContractReport:
    return ContractReport(module="GRU(3, 5)", spec=RNNSpec("GRU", 3, 5), device="cpu", dtype="float32",
                          results=results)


# -- ContractReport.ok --------------------------------------------------------------------------
def test_a_not_run_result_without_evidence_leaves_the_report_ok() -> None:
    """A contract left unrun because one in the report failed carries no evidence: that failure
    (here: none in the report at all) decides; the unrun one alone does not fail the report."""
    report = _report(ContractResult("shapes", "passed", seconds=0.001),
                     ContractResult("packed", "not run", "shapes failed"))
    assert report.failures == ()
    assert report.ok is True
    assert report.to_dict()["ok"] is True


def test_a_not_run_result_with_evidence_fails_the_report() -> None:
    """A prerequisite that failed outside the report is carried as evidence: the report fails."""
    evidence = Violation(kind="evidence", detail="the prerequisite 'shapes' failed", contract="shapes")
    report = _report(ContractResult("shapes", "passed"),
                     ContractResult("packed", "not run", "shapes failed", evidence=evidence))
    assert report.failures == ()
    assert report.ok is False


# -- ContractReport.table ------------------------------------------------------------------------
def test_table_time_column_is_in_milliseconds() -> None:
    report = _report(ContractResult("shapes", "passed", seconds=0.0123),
                     ContractResult("dtype_device", "not applicable", "CPU only", seconds=0.0004),
                     ContractResult("packed", "failed", "h_n differs", seconds=1.5))
    assert report.table() == (
        "GRU(3, 5) on cpu (float32)\n"
        "  shapes        passed            12.3 ms\n"
        "  dtype_device  not applicable     0.4 ms  CPU only\n"
        "  packed        failed          1500.0 ms"
    )
    assert str(report) == report.table()


# -- progress: the live display only on a terminal -------------------------------------------------
class _Log:
    """A write-only stream with no ``isatty`` (a logging handler's stream, a custom sink)."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass


def _plain_reporter(stream: Any) -> Any:
    """make_reporter(stream), asserted to be the plain-lines reporter (a live one is closed)."""
    reporter = make_reporter(stream)
    try:
        assert type(reporter) is PlainLines
    finally:
        if isinstance(reporter, Live):
            reporter.close()
    return reporter


def test_a_stream_without_isatty_gets_plain_lines() -> None:
    pytest.importorskip("rich")  # with rich absent every stream gets the plain lines anyway
    stream = _Log()
    reporter = _plain_reporter(stream)
    reporter.start("cpu", "shapes")
    reporter.finish("cpu", "shapes", "passed", 0.0012)
    reporter.close()
    assert stream.text == "[cpu] shapes: ok 1.2 ms\n"


def test_a_closed_stream_gets_plain_lines_that_end_quietly() -> None:
    pytest.importorskip("rich")
    stream = io.StringIO()
    stream.close()  # isatty() now raises ValueError
    reporter = _plain_reporter(stream)
    reporter.finish("cpu", "shapes", "passed", 0.0012)  # nothing raised: the reporting just ends
    reporter.close()


# -- seed: the claim check turns only a contract violation into its verdict -------------------------
def test_an_error_other_than_a_contract_violation_in_the_claim_check_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    real = rnn_contracts.seed.check_forward

    def broken_when_declared(module, x, **kwargs):
        if "spec" in kwargs:  # only the claim check passes a spec
            raise RuntimeError("planted: the backend broke")
        return real(module, x, **kwargs)

    monkeypatch.setattr(rnn_contracts.seed, "check_forward", broken_when_declared)
    torch.manual_seed(0)
    with pytest.raises(RuntimeError) as info:
        rnn_contracts.seed.seed_checks("cpu")
    assert type(info.value) is RuntimeError
    assert str(info.value) == "planted: the backend broke"


def test_an_assertion_in_the_claim_check_is_a_failed_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed checks turn an AssertionError into a failed check with its text as the detail;
    one that is no ContractViolation is not read as one."""
    real = rnn_contracts.seed.check_forward

    def asserts_when_declared(module, x, **kwargs):
        if "spec" in kwargs:
            raise AssertionError("planted: not a contract violation")
        return real(module, x, **kwargs)

    monkeypatch.setattr(rnn_contracts.seed, "check_forward", asserts_when_declared)
    torch.manual_seed(0)
    checks, _ = rnn_contracts.seed.seed_checks("cpu")
    claim = [c for c in checks if c.name == "(batch, seq, dim) claim rejected"]
    assert [(c.status, c.detail) for c in claim] == [("failed", "planted: not a contract violation")]
    assert all(c.status == "passed" for c in checks if c.name != "(batch, seq, dim) claim rejected")


def test_the_claim_check_passes_on_the_real_call() -> None:
    torch.manual_seed(0)
    checks, _ = rnn_contracts.seed.seed_checks("cpu")
    claim = [c for c in checks if c.name == "(batch, seq, dim) claim rejected"]
    assert [(c.status, c.detail) for c in claim] == [
        ("passed", "violated as it must be: h_n has batch 5, not 3 (hint names batch_first)")]


def _seed_layer_seeded(seed: int):
    def build(device="cpu", *, batch_first=False):
        torch.manual_seed(seed)
        return torch.nn.RNN(4, 2, batch_first=batch_first).to(device)
    return build


def _batch_first_always(device="cpu", *, batch_first=False):
    torch.manual_seed(0)
    return torch.nn.RNN(4, 2, batch_first=True).to(device)


@pytest.mark.parametrize(("build", "failed"), [
    # other weights: every structural check holds, only the printed values differ
    (_seed_layer_seeded(1), {"seed golden (printed output)":
                             "golden seed_rnn_4_2_output: 30 of 30 values outside atol=5e-05"}),
    # a layer that reads (batch, seq, dim) whatever it is asked: the seq-first shape, the claim,
    # the columns and the golden all fail
    (_batch_first_always, {"seed call, seq-first contract": "h_n (1, 3, 2), expected (1, 5, 2)",
                           "(batch, seq, dim) claim rejected": "declaring (batch, seq, dim) on the note's call raised nothing",
                           "columns 2 and 3 equal": "output[:, 2] != output[:, 3]",
                           "seed golden (printed output)": "golden seed_rnn_4_2_output: "}),
], ids=["other-weights", "always-batch-first"])
def test_each_seed_check_fails_on_a_layer_that_breaks_it(monkeypatch: pytest.MonkeyPatch, build, failed) -> None:
    """Negative controls of the seed report (each detail's start): its verdicts raise, they are
    no ``assert`` that ``python -O`` would strip (a stripped check passed every layer)."""
    monkeypatch.setattr(rnn_contracts.seed, "build_seed_rnn", build)
    checks, _ = rnn_contracts.seed.seed_checks("cpu")
    got = {c.name: c.detail for c in checks if c.status == "failed"}
    assert set(got) == set(failed)
    for name, start in failed.items():
        assert got[name].startswith(start), (name, got[name])


# -- RNNSpec: bools read off a module --------------------------------------------------------------
@pytest.mark.parametrize("value", [2, -1])
def test_an_int_attribute_other_than_0_or_1_is_no_bool(value: int) -> None:
    class Counted(nn.Module):
        mode, input_size, hidden_size = "GRU", 3, 5

    module = Counted()
    module.bidirectional = value
    with pytest.raises(SpecError) as info:
        RNNSpec.from_module(module)
    assert str(info.value) == (f"Counted.bidirectional is {value}, not a bool: RNNSpec.bidirectional needs "
                               "True or False (pass bidirectional=... to RNNSpec.from_module to give it)")


def test_a_float_attribute_is_no_bool_even_when_it_equals_1() -> None:
    class Floaty(nn.Module):
        mode, input_size, hidden_size, batch_first = "GRU", 3, 5, 1.0

    with pytest.raises(SpecError) as info:
        RNNSpec.from_module(Floaty())
    assert str(info.value) == ("Floaty.batch_first is 1.0, not a bool: RNNSpec.batch_first needs "
                               "True or False (pass batch_first=... to RNNSpec.from_module to give it)")


def test_int_attributes_0_and_1_are_read_as_bools() -> None:
    class Flags(nn.Module):
        mode, input_size, hidden_size, bidirectional, batch_first = "GRU", 3, 5, 1, 0

    spec = RNNSpec.from_module(Flags())
    assert spec == RNNSpec("GRU", 3, 5, bidirectional=True, batch_first=False)
    assert spec.bidirectional is True and spec.batch_first is False


# -- RNNSpec: convention ---------------------------------------------------------------------------
def test_an_unknown_convention_is_rejected() -> None:
    with pytest.raises(SpecError) as info:
        RNNSpec("GRU", 3, 5, convention="step")  # type: ignore[arg-type]
    assert str(info.value) == "RNNSpec.convention must be one of ('layer', 'cell'), got 'step'"


_CELL_TEXT = ("a cell is one layer in one direction without packed input, and its step returns its state: "
              "convention='cell' excludes ")


@pytest.mark.parametrize("changes, excluded", [
    ({"num_layers": 2}, "num_layers=2"),
    ({"bidirectional": True}, "bidirectional=True"),
    ({"packed": True}, "packed=True"),
    ({"returns_states": False}, "returns_states=False"),
    ({"mode": "LSTM", "proj_size": 2}, "proj_size=2"),
    ({"num_layers": 3, "bidirectional": True, "packed": True, "returns_states": False},
     "num_layers=3, bidirectional=True, packed=True, returns_states=False"),
])
def test_a_cell_spec_rejects_what_a_cell_cannot_be(changes: dict, excluded: str) -> None:
    fields = {"mode": "GRU", "input_size": 3, "hidden_size": 5, **changes}
    with pytest.raises(SpecError) as info:
        RNNSpec(convention="cell", **fields)
    assert str(info.value) == _CELL_TEXT + excluded
    assert RNNSpec(**fields).convention == "layer"  # the same fields make a valid layer


def test_a_plain_cell_spec_is_accepted() -> None:
    spec = RNNSpec("GRU", 3, 5, convention="cell", unbatched=True)
    assert spec.describe() == "GRUCell(3, 5)"
