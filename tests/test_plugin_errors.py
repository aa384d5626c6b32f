"""The plugin's protections against a session that would check nothing, seen from a project of
its own (pytester): typeguard's InstrumentationWarning is an error there too, and a bad
RNN_CONTRACTS_CHECKER is a one-line usage error at session start, not an import crash. Both
sessions run in this process."""
from __future__ import annotations

import pytest

from import_helpers import the_library_imported_afresh
from plugin_helpers import QUIET, errors

pytest_plugins = ["pytester"]


def test_instrumentation_warning_fails_a_downstream_test(pytester: pytest.Pytester) -> None:
    # typeguard 4 under @jaxtyped(typechecker=typechecked) warns and then checks nothing; a
    # project without this repo's pyproject filter must not get a green run from it.
    pytester.makeini("[pytest]\n")  # no filterwarnings of the project's own
    pytester.makepyfile(
        test_warn="""
        import warnings
        from typeguard import InstrumentationWarning

        def test_silently_unchecked():
            warnings.warn("instrumentor did not find the target function -- not typechecking",
                          InstrumentationWarning)
        """
    )
    result = pytester.runpytest_inprocess(*QUIET)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*InstrumentationWarning: instrumentor did not find the target function*"])


def test_unknown_checker_in_the_environment(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad RNN_CONTRACTS_CHECKER is one usage error at session start. The library reads the
    variable when it is first imported, and must not crash there: the session runs in this process
    with the library imported afresh when the kit activates (tests/import_helpers.py), as in a
    fresh process."""
    monkeypatch.setenv("RNN_CONTRACTS_CHECKER", "mypy")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    with the_library_imported_afresh():
        result = pytester.runpytest_inprocess(*QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert errors(result) == [
        "ERROR: rnn-contracts: RNN_CONTRACTS_CHECKER='mypy': unknown contract checker; "
        "choose one of typeguard, beartype"
    ]


@pytest.mark.parametrize(("name", "value"), [("RNN_CONTRACTS_DEVICES", ""), ("RNN_CONTRACTS_DEVICES", ","),
                                             ("RNN_CONTRACTS_REQUIRE_DEVICE", ""),
                                             ("RNN_CONTRACTS_REQUIRE_DEVICE", " , ")])
def test_a_device_variable_that_names_no_device_is_a_usage_error(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    """Set but empty (a CI template that expanded to nothing), it selected every device or
    required none, and a GPU job went green without a GPU (found by a fuzzing helper)."""
    monkeypatch.setenv(name, value)
    pytester.makepyfile(test_x="def test_x(rnn_device):\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert errors(result) == [
        f"ERROR: rnn-contracts: {name}={value!r} names no device: give one or more of cpu, cuda, "
        "cuda:N, mps (comma-separated), or unset it"]
