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
