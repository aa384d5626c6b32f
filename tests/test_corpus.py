"""The corpus (tests/corpus): community recurrent-module patterns, correct and realistically
broken, through every way in with no glue code: verify_rnn, check_forward, the command line
(``--format json``) and a RNNContractTests subclass. Each route's verdicts, contract by contract,
are judged against the entry's table (corpus.ENTRIES): every contract's status, and the phrase its
detail must contain, asserted directly; any difference fails the test.
"""
from __future__ import annotations

import dataclasses
import json
import re
import statistics
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from zoo import one_thread
from corpus import ENTRIES, FAILED, NA, NO_STATES, NOT_RUN, PASSED, CorpusEntry
from corpus import min_gru as min_gru_mod
from corpus import tutorial_cell, weight_drop
from rnn_contracts import CONTRACT_NAMES, ContractViolation, RNNSpec, check_forward, verify_rnn
from rnn_contracts.cli import main

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
BY_ID = {entry.id + ("" if entry.variant in ("correct", "broken") else f"-{entry.variant}"): entry
         for entry in ENTRIES}
IDS = list(BY_ID)
Observed = dict[str, tuple[str, str]]  # contract -> (status, detail)



# ----------------------------------------------------------------------------------- judging
def judge(entry: CorpusEntry, observed: Observed, route: str, *, passed_details: bool = True) -> None:
    """Fail with every verdict that differs from the entry's table: a contract missing from the
    route's result, one it does not know, a status, or a detail without the expected phrase.
    ``passed_details``: whether the route reports a passed contract's detail (a conformance item
    that passes has none)."""
    problems: list[str] = []
    for name in sorted(set(observed) - set(CONTRACT_NAMES)):
        problems.append(f"{name}: in the {route} result but not in rnn_contracts.CONTRACT_NAMES")
    for name in CONTRACT_NAMES:
        want = entry.verdict(name)
        if name not in observed:
            problems.append(f"{name}: missing from the {route} result")
            continue
        status, detail = observed[name]
        if status != want.status:
            problems.append(f"{name}: expected {want.status}, got {status}: {detail[:400]}")
        elif want.phrase and want.phrase not in detail and (passed_details or status != PASSED):
            problems.append(f"{name}: {status} as expected, but the detail lacks {want.phrase!r}: {detail[:400]}")
    if problems:
        pytest.fail(f"{entry.id} ({entry.variant}) through {route}:\n  " + "\n  ".join(problems), pytrace=False)


def fingerprint(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: t.detach().clone() for name, t in (*module.named_parameters(), *module.named_buffers())}


def assert_unchanged(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = fingerprint(module)
    assert list(after) == list(before)
    for name, value in before.items():
        assert torch.equal(after[name], value), f"{name} changed"


# ----------------------------------------------------------------------------------- the table
def test_corpus_table_is_sound() -> None:
    assert len(IDS) == len(ENTRIES)
    for module in ("weight_drop", "indrnn", "min_gru", "ln_lstm", "observer", "tutorial_cell"):
        variants = {e.variant for e in ENTRIES if e.module == module}
        assert len(variants) == 2, (module, variants)  # a correct and a broken one each
    assert {e.variant for e in ENTRIES if e.module == "calling"} == {
        "output only", "output only, torch names", "requires hx"}
    for entry in ENTRIES:
        assert set(entry.verdicts) <= set(CONTRACT_NAMES), entry.id
        # every broken module fails something; a correct one nothing
        assert bool(entry.expected_failures) == (entry.variant in ("broken", "undeclared")), entry.id


# ---------------------------------------------------------------------- route 1: verify_rnn
@pytest.mark.parametrize("key", IDS)
def test_verify_rnn(key: str) -> None:
    entry = BY_ID[key]
    module = entry.build()
    before = fingerprint(module)
    with one_thread():
        try:
            report, error = verify_rnn(module, entry.spec(module), device="cpu"), None
        except ContractViolation as exc:
            report, error = exc.report, exc
    # verify_rnn leaves the module as it was: the observer's calibration buffers included
    assert_unchanged(module, before)
    observed = {r.name: (r.status, r.detail) for r in report.results}
    failed = [name for name, (status, _) in observed.items() if status == FAILED]
    assert (error is not None) == bool(failed)
    if error is not None:
        assert error.title.endswith(": " + ", ".join(failed))
        assert all(f"[{name}] " in str(error) for name in failed)
    judge(entry, observed, "verify_rnn")


def test_observer_buffers_are_restored_and_reported() -> None:
    """The observer's buffers are updated by design: declared, verify_rnn reports and restores
    them; undeclared, inputs_untouched names the buffer; either way min/max are as before."""
    declared, undeclared = (BY_ID["observed_gru-declared"], BY_ID["observed_gru-undeclared"])
    module = declared.build()
    assert torch.isinf(module.input_observer.min_val) and torch.isinf(module.input_observer.max_val)
    report = verify_rnn(module, declared.spec(module), device="cpu", contracts=["inputs_untouched"])
    assert report.results[0].detail == ("buffers updated by design (RNNSpec.updates_buffers), restored: "
                                        "input_observer.min_val, input_observer.max_val")
    with pytest.raises(ContractViolation, match="input_observer.min_val"):
        verify_rnn(module, undeclared.spec(module), device="cpu", contracts=["inputs_untouched"])
    assert module.input_observer.min_val.item() == float("inf")
    assert module.input_observer.max_val.item() == float("-inf")
    module(torch.randn(5, 3, 4))  # calibration still works afterwards
    assert module.input_observer.min_val.item() < 0 < module.input_observer.max_val.item()


def test_requires_hx_report_notes_the_zeros() -> None:
    from rnn_contracts.conventions import requires_hx_note

    entry = BY_ID["elman_rnn-requires hx"]
    module = entry.build()
    spec = entry.spec(module)
    report = verify_rnn(module, spec, device="cpu")
    assert report.ok
    assert report.notes == (requires_hx_note(spec),)
    assert requires_hx_note(spec) == "the module requires hx: where torch's layers default h_0 to zeros, the kit passed zeros"
    assert report.table().splitlines()[-1] == f"  note: {requires_hx_note(spec)}"


# ------------------------------------------------------------------- route 2: check_forward
@pytest.mark.parametrize("key", IDS)
def test_check_forward(key: str) -> None:
    """One call, checked by check_forward with the same spec: every corpus module, correct or
    broken, keeps the shape contract (the broken ones break semantics, which verify_rnn finds)."""
    entry = BY_ID[key]
    module = entry.build().eval()
    spec = entry.spec(module) or RNNSpec.from_module(module)
    batch, seq = 3, 5
    x = torch.randn(seq, batch, spec.input_size, generator=torch.Generator().manual_seed(1))
    if spec.batch_first:
        x = x.transpose(0, 1).contiguous()
    h = torch.rand(1, batch, spec.hidden_size, generator=torch.Generator().manual_seed(2))
    hx = (h, torch.zeros_like(h)) if spec.has_cell else h
    with torch.no_grad():
        for given in (None, hx):
            output, state = check_forward(module, x, given, spec=spec)
            assert output.shape == tuple(spec.output_shape(batch, seq).sizes)
            if not spec.returns_states:
                assert state is None
            else:
                h_n = state[0] if spec.has_cell else state
                assert h_n.shape == (1, batch, spec.hidden_size)


# -------------------------------------------------------------------------- route 3: the CLI
@pytest.mark.parametrize("key", IDS)
def test_cli_json(key: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``rnn-contracts tests.corpus.<module>:<factory> --device cpu --format json --spec ...``
    from the repository root, in-process."""
    entry = BY_ID[key]
    monkeypatch.chdir(REPO)
    with one_thread():
        status = main([entry.target, "--device", "cpu", "--format", "json", *entry.spec_args()])
    captured = capsys.readouterr()
    assert status in (0, 1), captured.err
    data = json.loads(captured.out)
    module = entry.build()
    assert data["spec"] == dataclasses.asdict(entry.spec(module) or RNNSpec.from_module(module))
    assert data["target"] == entry.target
    (run,) = data["runs"]
    assert run["device"] == "cpu"
    observed = {c["name"]: (c["status"], c["detail"]) for c in run["contracts"]}
    failed = [c["name"] for c in run["contracts"] if c["status"] == FAILED]
    assert status == (1 if failed else 0) and data["ok"] is (not failed)
    assert all(c["evidence"] is not None for c in run["contracts"] if c["status"] == FAILED)
    judge(entry, observed, "the CLI (--format json)")


# -------------------------------------------------------------- route 4: RNNContractTests
INNER_ARGS = ("--rnn-device", "cpu", "-p", "no:randomly", "-p", "no:benchmark", "-p", "no:xdist",
              "-p", "no:unraisableexception", "-p", "no:threadexception")


def class_name(entry: CorpusEntry) -> str:
    return "Test_" + re.sub(r"\W", "_", f"{entry.factory}_{entry.variant}")


def conformance_source(entries: list[CorpusEntry]) -> str:
    """A project's test module: one RNNContractTests subclass per entry, providing rnn_module
    (and rnn_spec, from fields given as data, only where the entry has some)."""
    parts = ["import pytest", "from rnn_contracts import RNNSpec",
             "from pytest_rnn_contracts import RNNContractTests"]
    for entry in entries:
        parts.append(f"from corpus.{entry.module} import {entry.factory}")
    for entry in entries:
        body = f'''
            class {class_name(entry)}(RNNContractTests):
                @pytest.fixture
                def rnn_module(self):
                    return {entry.factory}()
            '''
        if entry.fields:
            body += f'''
                @pytest.fixture
                def rnn_spec(self, rnn_module):
                    return RNNSpec.from_module(rnn_module, **{entry.fields!r})
            '''
        parts.append(textwrap.dedent(body))
    return "\n".join(parts) + "\n"


def run_conformance(pytester: pytest.Pytester, entries: list[CorpusEntry]) -> dict[str, Observed]:
    """Every entry's class in one inner session: class name -> contract -> (status, detail)."""
    pytester.makepyfile(test_corpus_project=conformance_source(entries))
    with one_thread():
        recorder = pytester.inline_run(*INNER_ARGS)
    out: dict[str, Observed] = {}
    for report in recorder.getreports("pytest_runtest_logreport"):
        if report.when != "call" and not (report.failed or report.skipped):
            continue
        match = re.search(r"::(\w+)::test_contract\[cpu-(\w+)\]$", report.nodeid)
        assert match, report.nodeid
        cls, contract = match.groups()
        if report.passed:
            status, detail = PASSED, ""
        elif report.failed:
            status, detail = FAILED, str(report.longrepr)
            if report.when != "call":
                detail = f"error in {report.when}: {detail}"
        else:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            reason = reason.removeprefix("Skipped: ")
            if reason.startswith(f"{contract} does not apply: "):
                status, detail = NA, reason.removeprefix(f"{contract} does not apply: ")
            elif reason.startswith(f"{contract} not run: "):
                status, detail = NOT_RUN, reason.removeprefix(f"{contract} ")
            else:
                status, detail = "skipped", reason
        out.setdefault(cls, {})[contract] = (status, detail)
    return out


def judge_all(entries: list[CorpusEntry], results: dict[str, Observed]) -> None:
    """Judge each entry's class; fail with every problem of every class."""
    failures = []
    for entry in entries:
        observed = results.get(class_name(entry), {})
        try:
            judge(entry, observed, f"RNNContractTests ({class_name(entry)})", passed_details=False)
        except pytest.fail.Exception as exc:
            failures.append(str(exc))
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


#: The default run's conformance entries: one per convention (cell, output only, requires hx), a
#: declared buffer update, and a broken module whose failing item must name its contract.
QUICK = ["gru_cell", "gru_encoder-output only", "output_only_gru-output only, torch names", "elman_rnn-requires hx", "observed_gru-declared",
         "ln_lstm_batch_axis"]


def test_conformance_quick(pytester: pytest.Pytester) -> None:
    entries = [BY_ID[key] for key in QUICK]
    judge_all(entries, run_conformance(pytester, entries))


@pytest.mark.slow
def test_conformance_whole_corpus(pytester: pytest.Pytester) -> None:
    entries = list(ENTRIES)
    judge_all(entries, run_conformance(pytester, entries))


# ------------------------------------------------------ the modules are what they claim to be
def test_weight_drop_lstm_is_torch_lstm_in_eval_mode() -> None:
    """The correct weight-drop LSTM computes torch.nn.LSTM's equations (its weights placed by hand)."""
    module = weight_drop.weight_drop_lstm().eval()
    lstm = torch.nn.LSTM(4, 6)
    with torch.no_grad():
        for mine, theirs in (("weight_ih", "weight_ih_l0"), ("weight_hh_raw", "weight_hh_l0"),
                             ("bias_ih", "bias_ih_l0"), ("bias_hh", "bias_hh_l0")):
            getattr(lstm, theirs).copy_(getattr(module, mine))
        x = torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(3))
        out, (h, c) = module(x)
        ref_out, (ref_h, ref_c) = lstm(x)
    torch.testing.assert_close((out, h, c), (ref_out, ref_h, ref_c))
    module.train()  # DropConnect in training mode: the recurrent weight changes the result
    assert not torch.allclose(module(x)[0], out)


def test_tutorial_cell_is_torch_gru_cell_and_the_slip_is_not() -> None:
    cell, slip = tutorial_cell.gru_cell(), tutorial_cell.gru_cell_swapped_gate()
    torch_cell = torch.nn.GRUCell(4, 6)
    with torch.no_grad():
        torch_cell.weight_ih.copy_(cell.x2h.weight)
        torch_cell.bias_ih.copy_(cell.x2h.bias)
        torch_cell.weight_hh.copy_(cell.h2h.weight)
        torch_cell.bias_hh.copy_(cell.h2h.bias)
        x, h = torch.randn(3, 4), torch.randn(3, 6)
        torch.testing.assert_close(cell(x, h), torch_cell(x, h))
        assert not torch.allclose(slip(x, h), torch_cell(x, h))


def test_min_gru_scan_is_the_recurrence_and_the_log_h0_scan_is_half_nan() -> None:
    """The correct scan equals the step-by-step minGRU recurrence for an h_0 of either sign; the
    broken one equals it for h_0 >= 0 and is NaN on about half of the units of a random h_0."""
    module, broken = min_gru_mod.min_gru(), min_gru_mod.LogH0MinGRU(4, 6)
    broken.load_state_dict(module.state_dict())
    gen = torch.Generator().manual_seed(4)
    x, h0 = torch.randn(8, 7, 4, generator=gen), torch.randn(1, 8, 6, generator=gen)
    with torch.no_grad():
        z = torch.sigmoid(module.linear_z(x))
        pre = module.linear_h(x)
        tilde = torch.where(pre >= 0, pre + 0.5, torch.sigmoid(pre))
        h, steps = h0[0], []
        for t in range(x.shape[1]):
            h = (1 - z[:, t]) * h + z[:, t] * tilde[:, t]
            steps.append(h)
        expected = torch.stack(steps, dim=1)
        out, h_n = module(x, h0)
        torch.testing.assert_close(out, expected)
        torch.testing.assert_close(h_n[0], expected[:, -1])
        torch.testing.assert_close(broken(x, h0.abs())[0], module(x, h0.abs())[0])
        nan_share = broken(x, h0)[0].isnan().float().mean().item()
    assert 0.3 < nan_share < 0.7, nan_share


# ------------------------------------------------------------------------ time per module
def why_not_applicable(detail: str) -> str:
    """A few words for a not-applicable contract's reason."""
    if "RNNSpec.packed=False" in detail or "RNNSpec.unbatched=False" in detail:
        return "not declared"
    if NO_STATES in detail:
        return "no states"
    placed = re.search(r"parameters that could not be placed: (.*?); torch's slots", detail)
    if placed:
        names = re.findall(r"([\w.]+) \(", placed[1])
        return "unplaced " + (", ".join(names) if len(names) <= 2 else f"{names[0]} and {len(names) - 1} more")
    return " ".join(detail.split()[:4])


def verdict_summary(report: Any) -> str:
    """Failed contracts; not-applicable ones grouped by reason; not-run ones with their gate."""
    failed = [r.name for r in report.results if r.status == FAILED]
    groups: dict[str, list[str]] = {}
    for r in report.results:
        if r.status == NA:
            groups.setdefault(f"n/a ({why_not_applicable(r.detail)})", []).append(r.name)
        elif r.status == NOT_RUN:
            groups.setdefault(f"not run ({r.detail.removeprefix('not run: ')})", []).append(r.name)
    parts = ["failed: " + ", ".join(failed)] if failed else ["no failure"]
    parts += [f"{label}: {', '.join(names)}" for label, names in groups.items()]
    return "; ".join(parts)


@pytest.mark.slow
def test_verify_rnn_median_time_per_module(record_property: pytest.RecordProperty) -> None:
    """verify_rnn's median wall time over 5 runs per corpus module, one thread (see it with -rP)."""
    lines = ["| module | variant | verdict summary | median ms |", "| --- | --- | --- | --- |"]
    for key, entry in BY_ID.items():
        times, report = [], None
        for _ in range(5):
            module = entry.build()
            spec = entry.spec(module)
            with one_thread():
                start = time.perf_counter()
                try:
                    report = verify_rnn(module, spec, device="cpu")
                except ContractViolation as exc:
                    report = exc.report
                times.append(time.perf_counter() - start)
        assert sorted(r.name for r in report.results if r.status == FAILED) == sorted(entry.expected_failures)
        median = statistics.median(times) * 1e3
        lines.append(f"| {entry.module}.{entry.factory} | {entry.variant} | {verdict_summary(report)} | {median:.1f} |")
        record_property(key, round(median, 1))
    print("\n".join(lines))
