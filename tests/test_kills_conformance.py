"""RNNContractTests: a known torch limitation is an xfail (never a pass), and known_failures
wants a reason that says something.

Kills (mutation/README.md): the conformance item treating verify_rnn's "known limitation" status
as nothing special (the item passed), ``known_failures`` accepting a reason of spaces, and each
declaration no run could show (a prerequisite, a deployment target not run, the cell contract
without rnn_cell) accepted; a class's test_deployment marked on the shared function.
"""
from __future__ import annotations

import textwrap

import pytest

from pytest_rnn_contracts import RNNContractTests
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


@pytest.mark.parametrize(("attributes", "message"), [
    ({"known_failures": {"finite": "NaN for a large h_0"}},
     "TestX.known_failures declares 'finite', which the other contracts rely on: while it fails they are "
     "not run, so the suite would pass without checking them; fix finite, or check what holds with "
     "verify_rnn(module, contracts=[...])"),
    ({"known_failures": {"onnx": "no opset for it"}},
     "TestX.known_failures declares 'onnx', a deployment target TestX does not run: add it to TestX.deploy, "
     "or remove the declaration"),
    ({"known_failures": {"cell_equivalence": "the cell leaks"}},
     "TestX.known_failures declares 'cell_equivalence', which runs only where the class defines the fixture "
     "rnn_cell: define it on the class, or remove the declaration"),
], ids=["prerequisite", "deployment-not-run", "cell-without-rnn_cell"])
def test_a_known_failure_no_run_could_show_is_refused_when_the_class_is_made(attributes: dict, message: str) -> None:
    """A declared shapes or finite let every contract that relies on it skip ("its own item fails
    with the evidence") while that item xfailed: a passing session that checked nothing else; a
    deployment target or cell contract without its item was accepted and promised nothing (a
    user-view review). Kills: each branch of declared_items_errors."""
    with pytest.raises(TypeError) as caught:
        type("TestX", (RNNContractTests,), attributes)
    assert str(caught.value) == message


def test_each_class_with_deploy_gets_its_own_deployment_items(pytester: pytest.Pytester) -> None:
    """Two classes with ``deploy`` in one process: the second collected "duplicate parametrization
    of 'target'" (the mark went onto one shared function), so a project with two suites, or a
    session that made a class earlier, failed to collect. Kills: test_deployment marked in place."""
    pytester.makepyfile(test_two='''
        import pytest, torch
        from pytest_rnn_contracts import RNNContractTests

        class TestA(RNNContractTests):
            deploy = ("compile",)

            @pytest.fixture
            def rnn_module(self):
                return torch.nn.GRU(4, 3)

        class TestB(TestA):
            deploy = ("export", "compile")
    ''')
    result = pytester.runpytest(*INNER_ARGS, "--collect-only", "-q", "-k", "deployment")
    assert [line for line in result.outlines if "test_deployment" in line] == [
        "test_two.py::TestA::test_deployment[cpu-compile]", "test_two.py::TestB::test_deployment[cpu-export]",
        "test_two.py::TestB::test_deployment[cpu-compile]"]


def test_a_declared_deployment_target_or_cell_the_class_runs_is_accepted() -> None:
    """Its own, or inherited: a subclass runs its base's test_deployment whatever its own deploy
    says (a review: declaring one of those targets was refused). Kills: the targets read off
    cls.deploy instead of the items."""
    base = type("TestX", (RNNContractTests,), {"known_failures": {"onnx": "no opset", "cell_equivalence": "leaks"},
                                               "deploy": ("onnx",), "rnn_cell": pytest.fixture(lambda self: None)})
    type("TestY", (base,), {"deploy": ()})


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
