"""The self-test trusts only a ContractViolation as proof that the contracts fire.

Kills (mutation/README.md): selftest catching ``Exception`` instead of ``ContractViolation``: a
check_forward that crashes (a checker broken by an upgrade, say) then passed the self-test
silently, and the session would trust a kit that enforces nothing.
"""
from __future__ import annotations

import sys

import pytest

import rnn_contracts.selftest  # noqa: F401 - the module, reached through sys.modules below

SELFTEST = sys.modules["rnn_contracts.selftest"]


def test_a_crashing_check_forward_is_not_proof(monkeypatch: pytest.MonkeyPatch) -> None:
    def crashes(*args, **kwargs):
        raise RuntimeError("checker crashed")

    monkeypatch.setattr(SELFTEST, "check_forward", crashes)
    with pytest.raises(RuntimeError, match="checker crashed"):
        SELFTEST.selftest()


def test_a_check_forward_that_accepts_everything_fails_the_selftest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SELFTEST, "check_forward", lambda *args, **kwargs: None)
    with pytest.raises(SELFTEST.SelfTestError, match="contract self-test failed: check_forward accepted"):
        SELFTEST.selftest()
