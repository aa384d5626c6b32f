"""Shared by the command-line tests: target modules written into a temporary directory, the
console script found next to this interpreter (not on PATH), and main() run in this process as
that script runs it (or as ``python -m rnn_contracts`` runs it)."""
from __future__ import annotations

import builtins
import importlib
import importlib.machinery
import os
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from rnn_contracts.cli import main

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


#: What a command-line run's environment sets: a fixed terminal size, UTF-8 streams.
CLI_VARS = {"COLUMNS": "120", "LINES": "40", "PYTHONIOENCODING": "utf-8"}
#: ... and what it leaves out: no checker override.
CLI_UNSET = "RNN_CONTRACTS_CHECKER"


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: a fixed terminal width, no checker override."""
    env = {k: v for k, v in os.environ.items() if k != CLI_UNSET}
    env.update(CLI_VARS, **extra)
    return env


def use_cli_env(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    """cli_env() for a run of main() in this process (restored after the test)."""
    monkeypatch.delenv(CLI_UNSET, raising=False)
    for name, value in {**CLI_VARS, **extra}.items():
        monkeypatch.setenv(name, value)


#: The warnings a script does not show (Python's default filters outside __main__).
HIDDEN_FROM_A_SCRIPT = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def _as_a_script_shows_it(run: Callable[[], int], capfd: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``run()``'s status, and its stdout and stderr as the descriptors saw them, plus every
    warning it raised that Python shows a script, written as the interpreter writes it to stderr
    (pytest would otherwise collect it quietly)."""
    capfd.readouterr()  # nothing from before the run
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for category in HIDDEN_FROM_A_SCRIPT:
            warnings.filterwarnings("ignore", category=category)
        status = run()
    out, err = capfd.readouterr()
    err += "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line) for w in caught)
    return status, out, err


def main_as_console_script(argv: Sequence[str], *, cwd: Path, monkeypatch: pytest.MonkeyPatch,
                           capfd: pytest.CaptureFixture[str]) -> subprocess.CompletedProcess[str]:
    """main(argv) in this process, as the console script would run it in ``cwd``: cli_env's
    variables; ``cwd`` the current directory but not on sys.path (the script's sys.path[0] is its
    bin/ directory, and nothing else names the current directory); its output as
    _as_a_script_shows_it gives it. Modules the run imported from ``cwd`` are dropped afterwards."""
    use_cli_env(monkeypatch)
    monkeypatch.chdir(cwd)
    here = cwd.resolve()
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.curdir)
                                      and Path(p).resolve() != here])
    before = set(sys.modules)
    try:
        status, out, err = _as_a_script_shows_it(lambda: main(list(argv)), capfd)
    finally:  # the target's modules, imported from cwd, are not this process's to keep
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None)
            if file and Path(file).resolve().is_relative_to(here):
                del sys.modules[name]
    return subprocess.CompletedProcess(["rnn-contracts", *argv], status, out, err)


def _exit_status(code: object) -> int:
    """The status a process ends with when SystemExit(code) leaves it, as the interpreter sets it:
    None is 0, an int is itself, anything else is printed to stderr and is 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def python_m_in_this_process(argv: Sequence[str], *, monkeypatch: pytest.MonkeyPatch,
                             capfd: pytest.CaptureFixture[str]) -> subprocess.CompletedProcess[str]:
    """``python -m rnn_contracts argv`` in this process: cli_env's variables, sys.argv as the
    interpreter sets it for -m (the module's path first), the package's ``__main__`` compiled
    from its source and run under the name "__main__" with its spec and package, as ``-m`` runs
    it (runpy.run_module cannot: in a
    pytest process the assertion-rewriting hook claims the modules of every distribution that
    registers a pytest plugin, this one's included, and has no get_code); its status read from
    the SystemExit it ends with (none: 0, as a process ends); its output as
    _as_a_script_shows_it gives it."""
    use_cli_env(monkeypatch)
    package = importlib.import_module("rnn_contracts")
    spec = importlib.machinery.PathFinder.find_spec("rnn_contracts.__main__", list(package.__path__))
    assert spec is not None and spec.loader is not None and spec.origin is not None
    monkeypatch.setattr(sys, "argv", [spec.origin, *argv])  # -m puts the module's path first
    code = spec.loader.get_code(spec.name)  # type: ignore[attr-defined]

    def run() -> int:
        namespace = {"__name__": "__main__", "__spec__": spec, "__file__": spec.origin,
                     "__loader__": spec.loader, "__package__": "rnn_contracts", "__builtins__": builtins}
        try:
            exec(code, namespace)
        except SystemExit as exc:
            return _exit_status(exc.code)
        return 0

    status, out, err = _as_a_script_shows_it(run, capfd)
    return subprocess.CompletedProcess([sys.executable, "-m", "rnn_contracts", *argv], status, out, err)


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
