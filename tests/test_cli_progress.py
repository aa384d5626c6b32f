"""Progress of the command line: live on a (pseudo-)terminal, plain lines on a pipe or without
rich, nothing with --quiet."""
from __future__ import annotations

import io
import os
import re
import sys
import threading

import pytest
from cli_helpers import use_cli_env

from rnn_contracts.cli import main
from rnn_contracts.probes import CONTRACT_NAMES
from rnn_contracts.progress import Live, PlainLines, Silent, make_reporter, progress_line


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_a_terminal_gets_live_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    # main() in this process with stdout and stderr on a real pseudo-terminal, in the console
    # script's environment (the launch of the script itself is test_cli.py's
    # test_console_script_and_module_entry_points); a thread drains the terminal meanwhile.
    pytest.importorskip("rich")
    import pty

    use_cli_env(monkeypatch, TERM="xterm")
    master, slave = pty.openpty()
    screens: list[bytes] = []
    reader = threading.Thread(target=lambda: screens.append(read_all(master)), daemon=True)
    reader.start()
    try:
        with open(slave, "w", encoding="utf-8", buffering=1) as terminal, monkeypatch.context() as streams:
            streams.setattr(sys, "stdout", terminal)
            streams.setattr(sys, "stderr", terminal)
            status = main(["--device", "cpu"])
        reader.join(timeout=60)  # the last descriptor of the terminal is closed: the reader ends
    finally:
        os.close(master)
    screen = b"".join(screens).decode("utf-8", "replace")
    assert status == 0
    assert "\x1b[" in screen  # a live line: cursor and colour control
    for name in CONTRACT_NAMES:
        assert f"[cpu] {name} running" in screen  # the live line named it while it ran
        assert f"[cpu] {name}: ok " in screen  # and its finished line stayed
    assert "all contracts hold" in screen


def test_plain_lines_when_not_a_terminal(capsys) -> None:
    assert main(["--device", "cpu", "--contract", "shapes", "--contract", "packed"]) == 0
    err = capsys.readouterr().err
    contract_lines = err.splitlines()[:2]
    assert [re.fullmatch(r"\[cpu\] (\w+): ok \d+\.\d ms", line)[1] for line in contract_lines] == ["shapes", "packed"]
    assert "\x1b" not in err and "\r" not in err


def test_without_rich_a_terminal_gets_the_plain_lines(monkeypatch) -> None:
    # As if the progress extra were not installed: None in sys.modules makes an import raise
    # ImportError, for rich and for each submodule an earlier test may already have imported.
    for name in [m for m in sys.modules if m == "rich" or m.startswith("rich.")] + ["rich"]:
        monkeypatch.setitem(sys.modules, name, None)
    stream = FakeTerminal()
    reporter = make_reporter(stream)
    assert isinstance(reporter, PlainLines)
    reporter.start("cpu", "shapes")
    reporter.finish("cpu", "shapes", "passed", 0.0012)
    reporter.close()
    assert stream.getvalue() == "[cpu] shapes: ok 1.2 ms\n"


def test_with_rich_a_terminal_gets_the_live_reporter() -> None:
    pytest.importorskip("rich")
    stream = FakeTerminal()
    reporter = make_reporter(stream)
    assert isinstance(reporter, Live)
    reporter.start("cpu", "shapes")
    reporter.finish("cpu", "shapes", "failed", 0.0012)
    reporter.close()
    assert progress_line("cpu", "shapes", "failed", 0.0012) in stream.getvalue()


def test_quiet_reports_nothing() -> None:
    assert isinstance(make_reporter(FakeTerminal(), quiet=True), Silent)


def test_a_closed_progress_stream_stops_reporting_quietly() -> None:
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    reporter = PlainLines(Closed())
    reporter.finish("cpu", "shapes", "passed", 0.001)
    reporter.finish("cpu", "packed", "passed", 0.001)  # no second attempt, no error
