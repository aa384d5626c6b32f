"""The command line's exit status counts the seed's own checks, not only verify_rnn's contracts.

Kills (mutation/README.md): JobResult.failures() (and so the exit status and the verdict)
leaving out the seed checks: a seed golden that no longer matches exited 0.
"""
from __future__ import annotations

import pytest

import rnn_contracts.seed
from rnn_contracts.cli import main


def test_a_failed_seed_check_exits_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real = rnn_contracts.seed.seed_checks

    def one_fails(device: str):
        checks, output = real(device)
        first = checks[0]
        broken = rnn_contracts.seed.SeedCheck(first.name, "failed", "planted by the test", first.seconds)
        return [broken, *checks[1:]], output

    monkeypatch.setattr(rnn_contracts.seed, "seed_checks", one_fails)
    status = main(["--device", "cpu", "--contract", "shapes", "--quiet"])
    out = capsys.readouterr().out
    assert status == 1, out
    assert "1 contract failure(s)" in out


def test_the_seed_job_exits_0_when_everything_holds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--device", "cpu", "--contract", "shapes", "--quiet"]) == 0
    assert "all contracts hold" in capsys.readouterr().out


def test_text_report_names_each_device_with_its_description(capsys: pytest.CaptureFixture[str]) -> None:
    """The Markdown report's "Devices:" line describes the device the run used (kills:
    JobResult.device_info matching another device than the one asked for: a bare "cpu")."""
    from rnn_contracts.devices import describe_device, device_line

    assert main(["--device", "cpu", "--contract", "shapes", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    line = device_line(describe_device("cpu"))
    assert line != "cpu", "the CPU's description has a name on every platform torch runs on"
    assert f"Devices: {line}" in out.splitlines()


def test_milliseconds_text() -> None:
    from rnn_contracts.outcome import milliseconds

    assert milliseconds(0.0123) == "12.3 ms"
    assert milliseconds(0.0) == "0.0 ms"
