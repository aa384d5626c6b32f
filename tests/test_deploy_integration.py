"""The deployment contracts reach every way in: verify_rnn(deploy=...), the command line's
--deploy and the conformance class's ``deploy`` (one item per target and device). What the
targets find is tests/test_deploy.py."""
from __future__ import annotations

import textwrap

import pytest
import torch

from pytest_rnn_contracts import RNNContractTests
from rnn_contracts import CONTRACT_NAMES, verify_rnn
from rnn_contracts.cli import main

pytest_plugins = ["pytester"]


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    (dict(deploy=["onx"]), ValueError, r"^unknown deployment target\(s\) onx; known: export, onnx, compile$"),
    (dict(deploy="compile"), TypeError, r"^verify_rnn\(deploy=\.\.\.\) takes a list of contract names, got str 'compile'$"),
    (dict(deploy=[3]), TypeError, r"^verify_rnn\(deploy=\.\.\.\) takes contract names \(str\), got 3$"),
])
def test_a_wrong_deploy_argument_is_the_callers_error(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        verify_rnn(torch.nn.GRU(4, 3), **kwargs)


def test_deploy_targets_run_after_the_selected_contracts() -> None:
    report = verify_rnn(torch.nn.GRU(4, 3), contracts=["shapes"], deploy=["compile"])
    assert [(r.name, r.status) for r in report.results] == [("shapes", "passed"), ("compile", "passed")]
    alone = verify_rnn(torch.nn.GRU(4, 3), contracts=[], deploy=["compile"])
    assert [r.name for r in alone.results] == ["compile"]


def test_the_command_line_names_an_unknown_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--deploy", "export,onx", "--device", "cpu"]) == 2
    assert capsys.readouterr().err.strip() == (
        "rnn-contracts: error: --deploy onx: unknown deployment target; did you mean onnx? "
        "(known: export, onnx, compile)")


def test_the_command_line_runs_a_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--device", "cpu", "--contract", "shapes", "--deploy", "compile", "--format", "json"]) == 0
    import json

    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [(c["name"], c["status"]) for c in runs[0]["contracts"]] == [("shapes", "passed"), ("compile", "passed")]


@pytest.mark.parametrize(("deploy", "message"), [
    (("onx",), "TestX.deploy names no deployment target: 'onx' (did you mean 'onnx'?); targets: export, onnx, compile"),
    ("onnx", "TestX.deploy must be a tuple of deployment targets (export, onnx, compile), got str 'onnx'"),
])
def test_a_bad_deploy_declaration_fails_at_class_creation(deploy: object, message: str) -> None:
    with pytest.raises(TypeError) as caught:
        type("TestX", (RNNContractTests,), {"deploy": deploy})
    assert str(caught.value) == message


@pytest.fixture(scope="session")
def compile_imported() -> None:
    """torch.compile imports torch._inductor, whose test operators register a TORCH_LIBRARY
    namespace once per process. pytester drops modules first imported during a test, and their
    re-import then fails in later tests; a session fixture runs before pytester's snapshot."""
    verify_rnn(torch.nn.GRU(4, 3), contracts=[], deploy=["compile"])


def test_the_conformance_class_has_one_item_per_target_and_device(compile_imported: None,
                                                                   pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_scenario=textwrap.dedent('''
        import pytest, torch
        from pytest_rnn_contracts import RNNContractTests

        class TestGRU(RNNContractTests):
            deploy = ("compile",)

            @pytest.fixture
            def rnn_module(self):
                return torch.nn.GRU(4, 3)
    '''))
    result = pytester.runpytest("--rnn-device", "cpu", "-p", "no:randomly", "-v", "-k", "deployment or shapes")
    result.assert_outcomes(passed=2, deselected=len(CONTRACT_NAMES) - 1)
    result.stdout.fnmatch_lines(["*TestGRU::test_contract[[]cpu-shapes[]] PASSED*",
                                 "*TestGRU::test_deployment[[]cpu-compile[]] PASSED*"])
