"""The rnn-contracts command line: the seed's job, any target, exit codes 0 / 1 / 2."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rnn_contracts.cli import main

TARGETS = textwrap.dedent(
    """
    import torch

    class Detached(torch.nn.Module):
        '''A hand-written RNN loop that detaches h between steps (truncated BPTT gone wrong).'''
        mode, input_size, hidden_size = "RNN", 4, 3

        def __init__(self):
            super().__init__()
            self.cell = torch.nn.RNNCell(4, 3)

        def forward(self, x, hx=None):
            h = x.new_zeros(x.shape[1], 3) if hx is None else hx[0]
            outs = []
            for step in x:
                h = self.cell(step, h.detach())
                outs.append(h)
            return torch.stack(outs), h.unsqueeze(0)

    def good():
        return torch.nn.GRU(4, 3, bidirectional=True)

    NOT_A_MODULE = 3

    def needs_args(hidden):
        return torch.nn.GRU(4, hidden)

    def broken_factory():
        raise RuntimeError("no weights file")
    """
)


@pytest.fixture
def targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "cli_targets.py").write_text(TARGETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "cli_targets"


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
    assert set(data["devices"]) == {"cpu"}
    statuses = {r["name"]: r["status"] for r in data["devices"]["cpu"]["results"]}
    assert statuses["reference"] == "passed" and len(statuses) == 12
    assert len(data["seed"]["cpu"]["checks"]) == 5
    assert "batch_first=False" in data["layout_verdict"]


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
    statuses = {r["name"]: r["status"] for r in data["devices"]["cpu"]["results"]}
    assert statuses["packed"] == "not applicable"
    assert statuses["state_carry"] == "not applicable"  # bidirectional


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["no_such_pkg_xyz:thing"], "cannot import 'no_such_pkg_xyz': No module named 'no_such_pkg_xyz'"),
        (["cli_targets:missing"], "cli_targets has no attribute 'missing'"),
        (["cli_targets"], "target 'cli_targets' must look like package.module:attr"),
        (["cli_targets:NOT_A_MODULE"], "cli_targets:NOT_A_MODULE is a int, not a module, class or factory"),
        (["--spec", "colour=red"], "--spec colour: unknown key; known: mode, input_size, hidden_size, "
         "num_layers, bidirectional, batch_first, proj_size, nonlinearity, bias, packed, unbatched"),
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
def test_console_script_and_module_entry_points(command: list[str]) -> None:
    if command[0] == "rnn-contracts":
        # Next to this interpreter, not on PATH: `venv/bin/python -m pytest` runs without an
        # activated venv, and a PATH lookup would find another installation or none.
        found = Path(sys.executable).with_name("rnn-contracts")
        assert found.is_file(), f"the console script is not installed next to {sys.executable}: pip install -e '.[test]'"
        command = [str(found)]
    done = subprocess.run(command + ["--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all contracts hold" in done.stdout


def test_an_unknown_checker_in_the_environment_is_a_usage_error(monkeypatch, capsys) -> None:
    monkeypatch.setenv("RNN_CONTRACTS_CHECKER", "mypy")
    assert main(["--device", "cpu"]) == 2
    assert capsys.readouterr().err.strip() == (
        "rnn-contracts: error: RNN_CONTRACTS_CHECKER='mypy': unknown contract checker; "
        "choose one of typeguard, beartype"
    )

