"""Negative controls for the command line's exit status 2: every usage or environment error is
one line on stderr, no traceback, and nothing of the run is printed when the run never started."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import cli_env, console_script, main_as_console_script, one_error_line, run_cli
from cli_helpers import targets  # noqa: F401 - a fixture

from rnn_contracts import engine
from rnn_contracts.cli import main

BROKEN_MODULES = {
    "raises_at_import": "raise RuntimeError('no GPU driver here')\n",
    "bad_syntax": "def broken(:\n    pass\n",
    "exits_at_import": "import sys\nsys.exit(0)\n",
    "exits_1_at_import": "raise SystemExit('usage: this is a script')\n",
    "missing_dependency": "import no_such_dependency_xyz\n",
}


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, source in BROKEN_MODULES.items():
        (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (":rnn", "target ':rnn' must look like package.module:attr"),
        (".rel:x", "target '.rel:x' must look like package.module:attr"),
        ("pkg:", "target 'pkg:' must look like package.module:attr"),
        ("pkg..mod:x", "target 'pkg..mod:x' must look like package.module:attr"),
        ("pkg:a b", "target 'pkg:a b' must look like package.module:attr"),
        ("raises_at_import:x", "importing 'raises_at_import' raised RuntimeError: no GPU driver here"),
        ("exits_at_import:x", "importing 'exits_at_import' called sys.exit(0)"),
        ("exits_1_at_import:x", "importing 'exits_1_at_import' called sys.exit('usage: this is a script')"),
        ("missing_dependency:x", "cannot import 'missing_dependency': No module named 'no_such_dependency_xyz'"),
    ],
)
def test_a_bad_target_exits_2_with_one_line(target, message, broken, capsys) -> None:
    assert main([target, "--device", "cpu"]) == 2
    assert one_error_line(capsys) == message


def test_a_syntax_error_in_the_target_exits_2_naming_file_and_line(broken, capsys) -> None:
    assert main(["bad_syntax:broken", "--device", "cpu"]) == 2
    line = one_error_line(capsys)
    assert line.startswith("importing 'bad_syntax' raised SyntaxError: ")
    assert "bad_syntax.py, line 1)" in line


def test_a_factory_that_exits_is_a_usage_error(targets, capsys) -> None:
    assert main([f"{targets}:exiting_factory", "--device", "cpu"]) == 2
    assert one_error_line(capsys) == f"building {targets}:exiting_factory called sys.exit(3)"


def test_an_argparse_error_is_one_line_too(capsys) -> None:
    assert main(["--format", "yaml"]) == 2
    assert one_error_line(capsys) == (
        "argument --format: invalid choice: 'yaml' (choose from 'text', 'json', 'markdown', 'junit')"
    )


@pytest.mark.parametrize("option", ["--output", "--json"])
def test_a_report_path_in_a_missing_directory_fails_before_the_run(option, tmp_path, capsys, monkeypatch) -> None:
    ran = []
    monkeypatch.setattr("rnn_contracts.cli.run_job", lambda *a, **k: ran.append(1))
    path = tmp_path / "no" / "report.json"
    assert main(["--device", "cpu", option, str(path)]) == 2
    assert one_error_line(capsys) == (
        f"{option} {path}: cannot write the report: no directory {str(path.parent)!r}"
    )
    assert ran == []


def test_a_report_path_that_is_a_directory(tmp_path, capsys) -> None:
    assert main(["--device", "cpu", "--output", str(tmp_path)]) == 2
    assert one_error_line(capsys) == f"--output {tmp_path}: cannot write the report: it is a directory"


def _unwritable(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        return locked / "report.json"
    if Path("/sys/kernel").is_dir():  # root writes anywhere but on sysfs
        return Path("/sys/kernel/rnn-contracts-report.json")
    pytest.skip("running as root without sysfs: no unwritable path to try")


def test_an_unwritable_report_path_fails_before_the_run(tmp_path, capsys) -> None:
    path = _unwritable(tmp_path)
    assert main(["--device", "cpu", "--json", str(path)]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"--json {path}: cannot write the report: ")
    assert not path.exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a disk that is always full)")
def test_a_full_disk_at_write_time_exits_2_with_one_line(capsys) -> None:
    assert main(["--device", "cpu", "--contract", "shapes", "--json", "/dev/full", "-q"]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert captured.err.splitlines() == [
        "rnn-contracts: error: --json /dev/full: cannot write the report: No space left on device"
    ]


def test_the_probe_file_of_the_path_check_is_removed(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("rnn_contracts.cli._devices", lambda requested: (_ for _ in ()).throw(
        __import__("rnn_contracts.usage", fromlist=["UsageError"]).UsageError("stop here")))
    path = tmp_path / "report.json"
    assert main(["--json", str(path)]) == 2
    assert one_error_line(capsys) == "stop here"
    assert not path.exists()


def test_beartype_missing_is_a_usage_error(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "beartype", None)  # import beartype -> ImportError
    before = engine.get_checker()
    assert main(["--device", "cpu", "--checker", "beartype"]) == 2
    assert one_error_line(capsys) == "contract checker 'beartype' needs: pip install beartype"
    assert engine.get_checker() == before


def test_the_checker_is_restored_after_a_run(capsys) -> None:
    before = engine.get_checker()
    assert main(["--device", "cpu", "--checker", "beartype", "--contract", "shapes", "-q"]) == 0
    assert engine.get_checker() == before


def test_timeout_must_be_positive(capsys) -> None:
    assert main(["--timeout", "0"]) == 2
    assert one_error_line(capsys) == "--timeout 0: expected a positive number of seconds below 1e6"


def test_the_current_directory_is_importable_as_with_python_m(tmp_path, monkeypatch, capfd) -> None:
    # main() in this process, with the console script's sys.path (no entry for the current
    # directory): what makes the directory importable is the run's own doing (the launch of the
    # real script is test_cli.py's test_console_script_and_module_entry_points).
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text("import torch\n\ndef rnn():\n    return torch.nn.GRU(4, 3)\n")
    done = main_as_console_script(["mypkg.models:rnn", "--device", "cpu", "--contract", "shapes", "-q"],
                                  cwd=tmp_path, monkeypatch=monkeypatch, capfd=capfd)
    assert (done.returncode, done.stdout, done.stderr) == (0, "all contracts hold\n", "")


@pytest.mark.slow  # a process that imports torch (~3 s); main() covers the message itself
def test_a_bad_target_from_the_console_script_is_one_line(tmp_path) -> None:
    done = run_cli([":rnn"], cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "rnn-contracts: error: target ':rnn' must look like package.module:attr\n"


@pytest.mark.parametrize("reader", [
    "true",  # closes the pipe before the report is written: the write meets EPIPE
    pytest.param("head -1", marks=pytest.mark.slow),  # the everyday case (the pipe may take it all)
])
def test_a_closed_pipe_ends_quietly(reader: str) -> None:
    pipeline = f"set -o pipefail; '{console_script()}' --device cpu -q | {reader}"
    done = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, env=cli_env(), timeout=300)
    assert done.stdout == ("" if reader == "true" else "all contracts hold\n")
    assert "BrokenPipeError" not in done.stderr and "Traceback" not in done.stderr
    assert "Exception ignored" not in done.stderr
    assert done.returncode == 0  # the verdict's status: every contract held
