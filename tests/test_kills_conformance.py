"""RNNContractTests: a known torch limitation is an xfail (never a pass), and known_failures
wants a reason that says something.

Kills (mutation/README.md): the conformance item treating verify_rnn's "known limitation" status
as nothing special (the item passed), and ``known_failures`` accepting a reason of spaces.
"""
from __future__ import annotations

import textwrap

import pytest

from pytest_rnn_contracts.conformance import known_failures_errors

pytest_plugins = ["pytester"]

INNER_ARGS = ("--rnn-device", "cpu", "-p", "no:randomly", "-p", "no:benchmark", "-p", "no:cacheprovider",
              "-p", "no:unraisableexception", "-p", "no:threadexception")

CUDNN_LIKE = '''
import pytest
import torch
from pytest_rnn_contracts import RNNContractTests


class CudnnLikeGRU(torch.nn.GRU):
    """torch's GRU that rejects a non-contiguous h_0 with cuDNN's own error, as torch does on CUDA."""

    def forward(self, x, hx=None):
        if hx is not None and not hx.is_contiguous():
            raise RuntimeError("rnn: hx is not contiguous")
        return super().forward(x, hx)


class TestCudnnLike(RNNContractTests):
    @pytest.fixture
    def rnn_module(self):
        torch.manual_seed(0)
        return CudnnLikeGRU(4, 3)
'''


def test_known_limitation_is_an_xfail_naming_it(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the summary line is cut at the terminal's width
    pytester.makepyfile(test_scenario=textwrap.dedent(CUDNN_LIKE))
    result = pytester.runpytest(*INNER_ARGS, "-rx", "-k", "initial_state")
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["*XFAIL*initial_state*a known torch limitation*rnn: hx is not contiguous*"])


@pytest.mark.parametrize("reason", ["", "   ", "\t\n"])
def test_blank_reason_is_rejected(reason: str) -> None:
    assert known_failures_errors("TestX", {"packed": reason}) == [
        f"TestX.known_failures['packed'] must be a non-empty reason (str), got {reason!r}"]


def test_a_reason_with_text_is_accepted() -> None:
    assert known_failures_errors("TestX", {"packed": " planned for 0.3 "}) == []


@pytest.mark.parametrize("deploy", [{"export": True}, {"export"}, "export", 3])
def test_deploy_must_be_a_tuple_or_list(deploy: object) -> None:
    from pytest_rnn_contracts.conformance import deploy_errors

    (problem,) = deploy_errors("TestX", deploy)
    assert problem.startswith("TestX.deploy must be a tuple of deployment targets (")
    assert problem.endswith(f"got {type(deploy).__name__} {deploy!r}")


def test_default_contract_timeout_is_two_minutes() -> None:
    from pytest_rnn_contracts import RNNContractTests

    assert RNNContractTests.contract_timeout == 120.0


def test_only_a_contract_violation_is_re_raised_as_one() -> None:
    """_verify_one re-raises a ContractViolation without verify_rnn's frames; any other error
    (here verify_rnn's ValueError for an unknown name) passes through as itself. Kills: the
    except clause widened to Exception (the ValueError became an AttributeError on .title)."""
    import torch

    from pytest_rnn_contracts.conformance import _verify_one

    with pytest.raises(ValueError, match="^unknown contract"):
        _verify_one(torch.nn.RNN(4, 3), None, "cpu", "no_such_contract")
