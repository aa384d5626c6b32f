"""The rnn-contracts command line: the seed's job, any target, exit codes 0 / 1 / 2."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import cli_env, console_script, python_m_in_this_process, targets  # noqa: F401 - targets is a fixture

from rnn_contracts.about import version_line
from rnn_contracts.cli import main
from rnn_contracts.probes import CONTRACT_NAMES
from rnn_contracts.spec import RNNSpec

def test_the_seed_job_reports_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for line in (
        "target: the seed's nn.RNN(4, 2) under torch.manual_seed(0)",
        "(batch, seq, dim) claim rejected",
        "seed golden (printed output)",
        "layout verdict: The note calls its (3, 5, 4) batch (batch, seq, dim), but nn.RNN(4, 2) has "
        "batch_first=False, so the layer read it as 5 sequences of length 3 (the columns hel, eol, "
        "lle, lle, oll)",
        "all contracts hold",
    ):
        assert line in out
    assert "FAIL" not in out
    assert "[-0.7497, -0.6135]" in out.replace("  ", " ")  # the note's first printed row


def test_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "report.json"
    assert main(["--device", "cpu", "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert data["ok"] is True
    assert [d["device"] for d in data["devices"]] == ["cpu"]
    statuses = {r["name"]: r["status"] for r in data["runs"][0]["contracts"]}
    assert statuses["reference"] == "passed" and len(statuses) == len(CONTRACT_NAMES)
    assert len(data["seed"]["checks"]["cpu"]) == 5
    assert "batch_first=False" in data["seed"]["layout_verdict"]
    assert "all contracts hold" in capsys.readouterr().out  # --json also writes: stdout keeps the text


def test_a_faulty_target_exits_1_naming_the_contract(targets: str, capsys) -> None:
    assert main([f"{targets}:Detached", "--device", "cpu"]) == 1
    out = capsys.readouterr().out
    assert "[cpu] differentiability: no gradient flows back through time" in out
    assert out.rstrip().endswith("contract failure(s)")


def test_a_factory_target_and_spec_override(targets: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / "r.json"
    assert main([f"{targets}:good", "--spec", "packed=false", "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert data["spec"]["packed"] is False and data["spec"]["bidirectional"] is True
    statuses = {r["name"]: r["status"] for r in data["runs"][0]["contracts"]}
    assert statuses["packed"] == "not applicable"
    assert statuses["state_carry"] == "not applicable"  # bidirectional


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["no_such_pkg_xyz:thing"], "cannot import 'no_such_pkg_xyz': No module named 'no_such_pkg_xyz'"),
        (["cli_targets:missing"], "cli_targets has no attribute 'missing'"),
        (["cli_targets"], "target 'cli_targets' must look like package.module:attr"),
        (["cli_targets:NOT_A_MODULE"], "cli_targets:NOT_A_MODULE is an object of type int, not an nn.Module "
         "instance, an nn.Module class or a factory"),
        (["cli_targets:torch"], "cli_targets:torch is a Python module, not an nn.Module instance, an nn.Module "
         "class or a factory"),
        (["--spec", "colour=red"], "--spec colour: unknown key; known: "
         + ", ".join(f.name for f in dataclasses.fields(RNNSpec))),
        (["--spec", "num_layers=two"], "--spec num_layers=two: expected an integer"),
        (["--spec", "batch_first"], "--spec 'batch_first': expected KEY=VALUE"),
        (["cli_targets:needs_args"], "cli_targets:needs_args must be callable with no arguments: "
         "missing a required argument: 'hidden'"),
        (["cli_targets:broken_factory"], "building cli_targets:broken_factory failed: RuntimeError: no weights file"),
        (["--device", "cuda:7"], None),
    ],
)
def test_usage_errors_exit_2_with_one_line(argv, message, targets, capsys) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith("rnn-contracts: error: ")
    if message is not None:
        assert err == f"rnn-contracts: error: {message}"
    else:
        assert "cuda:7" in err and "not available" in err


@pytest.mark.parametrize("command", [["rnn-contracts"], [sys.executable, "-m", "rnn_contracts"]])
def test_console_script_and_module_entry_points(command: list[str], monkeypatch: pytest.MonkeyPatch,
                                                capfd: pytest.CaptureFixture[str]) -> None:
    """Both entry points run the seed's job and report it alike. The console script is launched
    (its wrapper is the installed distribution's, nothing else runs it); ``python -m`` runs in this
    process as the interpreter runs it (python_m_in_this_process): what it adds, the package's
    __main__ and main() reading sys.argv and ending the process with its status, is all there."""
    if command[0] == "rnn-contracts":
        done = subprocess.run([str(console_script()), "--device", "cpu"], capture_output=True, text=True,
                              timeout=300, env=cli_env())
    else:
        done = python_m_in_this_process(["--device", "cpu"], monkeypatch=monkeypatch, capfd=capfd)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all contracts hold" in done.stdout
    # stderr is a pipe: one plain line per contract and seed check, never a control character
    lines = done.stderr.splitlines()
    assert [line.split(":")[0] for line in lines[:len(CONTRACT_NAMES)]] == [f"[cpu] {n}" for n in CONTRACT_NAMES]
    assert len(lines) == len(CONTRACT_NAMES) + 5 and all(line.endswith(" ms") for line in lines)
    assert not any(ch in done.stderr + done.stdout for ch in "\x1b\r\x08")


def test_an_unknown_checker_in_the_environment_is_a_usage_error(monkeypatch, capsys) -> None:
    monkeypatch.setenv("RNN_CONTRACTS_CHECKER", "mypy")
    assert main(["--device", "cpu"]) == 2
    assert capsys.readouterr().err.strip() == (
        "rnn-contracts: error: RNN_CONTRACTS_CHECKER='mypy': unknown contract checker; "
        "choose one of typeguard, beartype"
    )



def test_contract_selects_contracts_in_their_order(capsys) -> None:
    assert main(["--device", "cpu", "--contract", "reference", "--contract", "shapes", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in data["runs"][0]["contracts"]] == ["shapes", "reference"]


def test_a_mistyped_contract_suggests_the_closest_name(capsys) -> None:
    assert main(["--contract", "statecarry"]) == 2
    assert capsys.readouterr().err.strip() == (
        "rnn-contracts: error: --contract statecarry: unknown contract; did you mean state_carry? "
        f"(known: {', '.join(CONTRACT_NAMES)})"
    )


def test_one_column_per_dtype(capsys) -> None:
    assert main(["--device", "cpu", "--dtype", "float32", "--dtype", "float64", "--contract", "shapes"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("verify_rnn contract"))
    assert header.split()[2:] == ["cpu", "float32", "cpu", "float64"]


def test_version_names_the_kit_torch_and_the_checkers(capsys) -> None:
    import torch

    assert main(["--version"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == version_line()
    assert out.startswith("rnn-contracts ") and f"torch {torch.__version__}" in out
    assert "typeguard " in out and "beartype " in out


def test_quiet_prints_only_the_verdict(capsys) -> None:
    assert main(["--device", "cpu", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "all contracts hold\n"
    assert captured.err == ""


def test_a_faulty_target_quiet_prints_its_verdict(targets: str, capsys) -> None:
    assert main([f"{targets}:Detached", "--device", "cpu", "-q"]) == 1
    assert capsys.readouterr().out == "1 contract failure(s)\n"


def test_timeout_is_passed_to_verify_rnn(monkeypatch, capsys) -> None:
    import rnn_contracts.job as job
    from rnn_contracts.report import ContractReport, ContractResult

    seen = {}

    def fake_verify_rnn(module, spec=None, *, device=None, dtype=None, contracts=None, progress=None, timeout=None):
        seen["timeout"] = timeout
        return ContractReport("RNN(4, 2)", spec, "cpu", "float32", (ContractResult("shapes", "passed"),))

    monkeypatch.setattr(job, "verify_rnn", fake_verify_rnn)
    assert main(["--device", "cpu", "--timeout", "2.5", "-q"]) == 0
    assert seen == {"timeout": 2.5}


def test_a_module_slower_than_the_timeout_fails_its_contract(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "slow_target.py").write_text(
        "import time, torch\n\nclass Slow(torch.nn.GRU):\n    def forward(self, x, hx=None):\n"
        "        time.sleep(1.0)\n        return super().forward(x, hx)\n\ndef slow():\n    return Slow(4, 3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["slow_target:slow", "--device", "cpu", "--contract", "shapes", "--timeout", "0.2"]) == 1
    out = capsys.readouterr().out  # the wording is verify_rnn's: only the contract and the limit here
    failure = out.split("\nfailures:\n", 1)[1]
    assert failure.startswith("  [cpu] shapes: ") and "0.2 s" in failure


def test_what_the_target_prints_goes_to_stderr_and_stdout_holds_the_report(tmp_path, monkeypatch, capsys) -> None:
    """A target that prints when imported, built and called (a common model file) leaves the
    ``--format json`` document on stdout intact: the prints go to stderr."""
    (tmp_path / "noisy_target.py").write_text(
        "import torch\nprint('loading noisy model')\n\nclass Noisy(torch.nn.GRU):\n"
        "    def forward(self, x, hx=None):\n        print('forward', tuple(x.shape))\n"
        "        return super().forward(x, hx)\n\ndef noisy():\n    print('building')\n"
        "    return Noisy(4, 3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["noisy_target:noisy", "--device", "cpu", "--contract", "shapes", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["ok"] is True
    assert ["loading noisy model", "building"] == captured.err.splitlines()[:2]
    assert "forward (" in captured.err
