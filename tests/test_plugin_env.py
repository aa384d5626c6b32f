"""A bad RNN_CONTRACTS_CHECKER is a one-line usage error at session start, not an import crash."""
from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_unknown_checker_in_the_environment(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNN_CONTRACTS_CHECKER", "mypy")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.errlines if line.strip()] == [
        "ERROR: rnn-contracts: RNN_CONTRACTS_CHECKER='mypy': unknown contract checker; "
        "choose one of typeguard, beartype"
    ]
