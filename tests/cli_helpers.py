"""Shared by the command-line tests: target modules written into a temporary directory, and the
console script found next to this interpreter (not on PATH)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

#: Importable as ``cli_targets`` through the ``targets`` fixture.
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

    class Nudged(torch.nn.GRU):
        '''A GRU whose output is shifted by 1e-3: a value violation with a position and a tolerance.'''

        def forward(self, x, hx=None):
            out, h = super().forward(x, hx)
            if isinstance(out, torch.Tensor):
                out = out + 1e-3
            return out, h

    def nudged():
        return Nudged(4, 3)

    class Narrow(torch.nn.GRU):
        '''A GRU that drops the last output feature: a shape violation, evidence on several lines.'''

        def forward(self, x, hx=None):
            out, h = super().forward(x, hx)
            if isinstance(out, torch.Tensor):
                out = out[..., :-1]
            return out, h

    def narrow():
        return Narrow(4, 3)

    def good():
        return torch.nn.GRU(4, 3, bidirectional=True)

    NOT_A_MODULE = 3

    def needs_args(hidden):
        return torch.nn.GRU(4, hidden)

    def broken_factory():
        raise RuntimeError("no weights file")

    def exiting_factory():
        raise SystemExit(3)
    """
)


@pytest.fixture
def targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The module name of TARGETS, importable for the test."""
    (tmp_path / "cli_targets.py").write_text(TARGETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "cli_targets"


def console_script() -> Path:
    """``rnn-contracts`` next to this interpreter: `venv/bin/python -m pytest` runs without an
    activated venv, and a PATH lookup would find another installation or none."""
    found = Path(sys.executable).with_name("rnn-contracts")
    if not found.is_file():
        pytest.fail(f"the console script is not installed next to {sys.executable}: pip install -e '.[test]'")
    return found


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: a fixed terminal width, no checker override."""
    env = {k: v for k, v in os.environ.items() if k != "RNN_CONTRACTS_CHECKER"}
    env.update({"COLUMNS": "120", "LINES": "40", "PYTHONIOENCODING": "utf-8"}, **extra)
    return env


def run_cli(args: list[str], *, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The console script with ``args``, stdout and stderr on pipes."""
    return subprocess.run([str(console_script()), *args], capture_output=True, text=True,
                          cwd=cwd, env=cli_env(), timeout=timeout)


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single stderr line of a status-2 run, without its prefix; stdout must be empty."""
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("rnn-contracts: error: ")
    return lines[0].removeprefix("rnn-contracts: error: ")
