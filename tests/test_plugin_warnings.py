"""The plugin makes typeguard's InstrumentationWarning an error in every project that loads it.

typeguard 4 under ``@jaxtyped(typechecker=typechecked)`` warns and then checks nothing; a
downstream project without this repo's pyproject filter must not get a green run from it.
"""
from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

QUIET = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")


def test_instrumentation_warning_fails_a_downstream_test(pytester: pytest.Pytester) -> None:
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
