"""benchmarks/bench_overhead.py (with its sibling bench_variants.py) keeps running: a --quick pass in
this process, its JSON, and the optional check_shapes peer skipped with one line when it cannot be
imported.

The timings of --quick are noise (a few rounds); only the structure is asserted here, and that
every gate can fail and can pass (those runs measure once per process and share the figures).
The gates (checking over a stub: 1.7 us steady, 25 us for a new signature and for check_forward;
verify_rnn's module calls; verify_rnn within 60 forward-equivalents) are enforced by a default
run of the script itself, not by this test.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_overhead.py"
VARIANTS_MODULE = SCRIPT.with_name("bench_variants.py")
VARIANTS = ["bare", "asserts", "jaxtyping+typeguard", "jaxtyping+beartype", "checked"]


def _load(name: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def load_script(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A fresh copy of the script as a module, registered (dataclasses need it) for this test only,
    with a fresh bench_variants under it (its check_shapes import runs again): ``bench.bench_variants``.
    sys.path, which the script extends, is restored after the test."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    _load("bench_variants", VARIANTS_MODULE, monkeypatch)
    return _load(name, SCRIPT, monkeypatch)


@pytest.fixture
def restore_torch_state():
    """The script sets one thread and seeds torch's RNG: give both back to the other tests."""
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        yield
    torch.set_num_threads(threads)


def test_quick_run_prints_every_variant_and_writes_json(tmp_path, capsys, monkeypatch, restore_torch_state):
    bench = load_script("bench_overhead_quick", monkeypatch)
    out_json = tmp_path / "bench.json"

    assert bench.main(["--quick", "--json", str(out_json)]) == 0

    printed = capsys.readouterr().out
    assert "negative controls: every checker rejects an h_n with the wrong batch size" in printed
    assert "forward-equivalents at the benchmark input" in printed
    assert "forward-equivalents at verify_rnn's probe size (batch 3, seq 5: one forward " in printed
    assert "forward-equivalents at verify_rnn's probe size (batch 3, seq 4: one forward " in printed
    assert "verify_rnn in forward-equivalents on the larger module" in printed
    assert "info: checked / bare on the seed module = " in printed
    assert "over a stub of the module (checking alone, us per call; median [IQR] over " in printed
    data = json.loads(out_json.read_text())
    assert data["quick"] is True and data["clock"] == "cpu"
    names = [case["name"] for case in data["cases"]]
    assert names[0].startswith("seed RNN(4, 2)") and names[1].startswith("large RNN(64, 256)")
    expected = VARIANTS + (["check_shapes"] if bench.bench_variants.CHECK_SHAPES_VERSION else [])
    for case in data["cases"]:
        assert sorted(case["variants"]) == sorted(expected)
        bare = case["variants"]["bare"]
        assert bare["ratio"] == 1.0 and bare["median_us"] > 0
        verify = case["verify"]
        assert verify["forward_equivalents"] > 0 and verify["forward_equivalents_at_probe_size"] > 0
        assert verify["probe_size_forward_us"] > 0
        for row in case["variants"].values():
            assert row["median_us"] > 0
    stubbed = [c for c in data["cases"] if "stub" in c]
    assert [c["name"] for c in stubbed] == [names[0], names[2]]  # the seed RNN and the LSTM
    for case in stubbed:
        assert sorted(case["stub"]["extra_us"]) == sorted(v for v in expected if v != "bare")
        row = case["stub"]["first_call_extra_us"]
        assert row["q1"] <= row["median"] <= row["q3"]
        assert case["verify_calls"] > 0
    assert [g["name"] for g in data["gates"]] == [
        *(f"checked, steady state, us over the stub: {n}" for n in (names[0], names[2])),
        *(f"checked, first call, us over the stub: {n}" for n in (names[0], names[2])),
        *(f"check_forward, us over the stub: {n}" for n in (names[0], names[2])),
        *(f"verify_rnn module calls per run: {n}" for n in (names[0], names[2])),
        "verify_rnn in forward-equivalents on the larger module",
    ]


def test_check_shapes_absent_is_skipped_with_one_line(monkeypatch, restore_torch_state):
    monkeypatch.setitem(sys.modules, "check_shapes", None)  # import check_shapes -> ImportError
    bench = load_script("bench_overhead_no_check_shapes", monkeypatch)
    variants = bench.bench_variants

    assert variants.CHECK_SHAPES_VERSION is None
    torch.manual_seed(0)
    module = torch.nn.RNN(4, 2)
    assert list(variants.make_variants(module)) == VARIANTS
    assert variants.negative_controls(module, torch.randn(5, 3, 4)) == []
    lines = bench.header("cpu")
    assert "check_shapes absent" in lines[0]
    assert len(lines) == 2
    assert lines[1].startswith("check_shapes: skipped (not importable: ModuleNotFoundError: ")
    assert lines[1].endswith("); pip install check_shapes to add it")


def test_negative_controls_catch_a_checker_that_checks_nothing(monkeypatch, restore_torch_state):
    variants = load_script("bench_overhead_controls", monkeypatch).bench_variants
    torch.manual_seed(0)
    module = torch.nn.LSTM(4, 2)
    real = variants.make_variants

    def with_a_blind_checker(m):
        variants = real(m)
        variants["asserts"] = variants["bare"]  # checks nothing
        return variants

    monkeypatch.setattr(variants, "make_variants", with_a_blind_checker)
    assert variants.negative_controls(module, torch.randn(5, 3, 4)) == [
        "asserts accepts an h_n with the wrong batch size"
    ]


@pytest.mark.slow
def test_script_runs_as_a_command(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(tmp_path / "b.json")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "forward-equivalents" in result.stdout
    assert json.loads((tmp_path / "b.json").read_text())["quick"] is True


#: Each limit and the gates it holds (their names' beginnings).
GATES = {
    "STEADY_MAX_US": ("checked, steady state, us over the stub: ",),
    "FIRST_CALL_MAX_US": ("checked, first call, us over the stub: ", "check_forward, us over the stub: "),
    "VERIFY_MAX_CALLS": ("verify_rnn module calls per run: ",),
    "VERIFY_MAX_FORWARDS": ("verify_rnn in forward-equivalents on the larger module",),
}
LIMITS = list(GATES)


@pytest.fixture(scope="module")
def measurements() -> dict[tuple[str, str], Any]:
    """What the enforcing runs measured, by function and case: the first run in this process
    measures, the others reuse its figures (the runs differ only in their limits, and what is
    under test is how main() holds the figures to them)."""
    return {}


def _measured_once(measurements: dict[tuple[str, str], Any], function: str,
                   measure: Callable[..., Any], key: Callable[..., str]) -> Callable[..., Any]:
    """``measure``, its result kept under (function, key(first argument)); a copy each call,
    since main() adds to the dicts it gets."""
    def once(first: Any, *args: Any, **kwargs: Any) -> Any:
        name = (function, key(first))
        if name not in measurements:
            measurements[name] = measure(first, *args, **kwargs)
        return copy.deepcopy(measurements[name])
    return once


def _enforcing_quick_run(name: str, monkeypatch: pytest.MonkeyPatch, limits: dict[str, float],
                         measurements: dict[tuple[str, str], Any]):
    """The script with the quick cases and few samples, but its gates enforced (--quick prints a
    FAIL and never enforces it, so it alone could not show that a gate works); its figures
    measured once per process (``measurements``)."""
    bench = load_script(name, monkeypatch)
    for limit, value in limits.items():
        monkeypatch.setattr(bench, limit, value)
    quick_cases = bench.build_cases
    monkeypatch.setattr(bench, "build_cases", lambda quick: quick_cases(True))
    by_case, by_module = (lambda case: case.name), repr
    for function, measure, key in [
        ("bench_case", lambda case, warmup, real=bench.bench_case: real(case, warmup=3), by_case),
        ("bench_stub", lambda case, warmup, firsts, real=bench.bench_stub: real(case, warmup=3, firsts=5), by_case),
        ("verify_forwards", bench.verify_forwards, by_module),
        ("bench_verify", bench.bench_verify, by_case),
    ]:
        monkeypatch.setattr(bench, function, _measured_once(measurements, function, measure, key))
    return bench


@pytest.mark.parametrize("limit", LIMITS)
def test_a_gate_that_is_exceeded_fails_the_run(capsys, monkeypatch, restore_torch_state, measurements, limit):
    """Every gate can fail: with its limit set to 0 and every other limit out of reach, a run
    that enforces them exits 1 and prints FAIL for that gate only."""
    limits = {name: float("inf") for name in LIMITS} | {limit: 0.0}
    bench = _enforcing_quick_run(f"bench_overhead_gate_{limit}", monkeypatch, limits, measurements)
    assert bench.main([]) == 1
    printed = capsys.readouterr().out
    failed = [line for line in printed.splitlines() if line.startswith("FAIL: ")]
    assert failed and all(line.removeprefix("FAIL: ").startswith(GATES[limit]) for line in failed), failed
    assert "[--quick: not enforced]" not in printed


def test_a_run_whose_gates_hold_exits_0(capsys, monkeypatch, restore_torch_state, measurements):
    bench = _enforcing_quick_run("bench_overhead_gates_hold", monkeypatch,
                                 {name: float("inf") for name in LIMITS}, measurements)
    assert bench.main([]) == 0
    assert "FAIL" not in capsys.readouterr().out


VERIFY_SCRIPT = SCRIPT.with_name("bench_verify.py")


@pytest.mark.parametrize(("limits", "code"), [
    ({}, 1),  # the forward-equivalents gate (20) does not hold yet: the run says so
    ({"MAX_FORWARD_EQUIVALENTS": float("inf")}, 0),
    ({"MAX_FORWARD_EQUIVALENTS": float("inf"), "MAX_CALLS": 11}, 1),
])
def test_bench_verify_counts_calls_writes_json_and_gates(tmp_path, capsys, monkeypatch, restore_torch_state,
                                                         measurements, limits: dict[str, float], code: int) -> None:
    """bench_verify.py (without the large LSTM): 13 module calls on each module of the grid, a
    table and a JSON of the figures, and an exit status that follows its gates both ways (the
    runs differ only in their limits: the figures are measured once per process)."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script may put the checkout's contracts first
    bench = _load("bench_verify_run", VERIFY_SCRIPT, monkeypatch)
    for name, value in limits.items():
        monkeypatch.setattr(bench, name, value)
    monkeypatch.setattr(bench, "measure", _measured_once(measurements, "bench_verify.measure", bench.measure, repr))
    out_json = tmp_path / "verify.json"
    assert bench.main(["--runs", "1", "--no-large", "--json", str(out_json)]) == code
    printed = capsys.readouterr().out
    data = json.loads(out_json.read_text())
    assert list(data["grid"]) == ["RNN(4, 2)", "GRU(4, 2)", "LSTM(4, 2)", "RNN(64, 256)"]
    assert [row["calls"] for row in data["grid"].values()] == [13, 13, 13, 13]
    assert all(row["forward_equivalents"] > 0 and row["peak_mb"] >= 0 for row in data["grid"].values())
    assert data["large"] is None
    failed = [g["name"] for g in data["gates"] if not g["ok"]]
    assert bool(failed) == bool(code)
    assert all(f"FAIL: {name} = " in printed for name in failed)


INERT_SCRIPT = SCRIPT.with_name("bench_plugin_inert.py")


@pytest.mark.parametrize(("before", "code"), [(0.20, 0), (0.10, 1)])
def test_bench_plugin_inert_gates_on_the_gap_to_the_session_before_the_install(
        tmp_path, capsys, monkeypatch, before: float, code: int) -> None:
    """The gate reads the gap to the session with none of the wheel's plugins (the kit's,
    jaxtyping's, typeguard's), not to the one without the kit's plugin alone: sessions faked at
    0.45 s installed, 0.44 s without the kit's plugin, ``before`` s before the install."""
    bench = _load("bench_plugin_inert_run", INERT_SCRIPT, monkeypatch)
    assert bench.VARIANTS[bench.BEFORE] == ("-p", "no:rnn_contracts", "-p", "no:jaxtyping", "-p", "no:typeguard")
    seconds = {(): 0.45, ("-p", "no:rnn_contracts"): 0.44, bench.VARIANTS[bench.BEFORE]: before}
    monkeypatch.setattr(bench, "_one_run", lambda project, extra: seconds[extra])
    out_json = tmp_path / "inert.json"
    assert bench.main(["--runs", "1", "--json", str(out_json)]) == code
    data = json.loads(out_json.read_text())
    assert data["gaps"] == {"-p no:rnn_contracts": pytest.approx(0.01), bench.BEFORE: pytest.approx(0.45 - before)}
    assert data["gap"] == pytest.approx(0.45 - before) and data["ok"] is (code == 0)
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"the install's cost (gap of medians to 'before the install'): {0.45 - before:+.3f} s (gate 0.3 s): "
        + ("ok" if code == 0 else "FAIL"))


@pytest.mark.slow  # 3 fresh pytest sessions
def test_bench_plugin_inert_runs_its_three_sessions(tmp_path) -> None:
    done = subprocess.run([sys.executable, str(INERT_SCRIPT), "--runs", "1", "--gate", "5",
                           "--json", str(tmp_path / "inert.json")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(json.loads((tmp_path / "inert.json").read_text())["medians"]) == {
        "as installed", "-p no:rnn_contracts", "before the install"}
