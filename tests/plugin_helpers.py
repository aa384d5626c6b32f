"""What tests/test_plugin.py and tests/test_plugin_gpu.py share: the options that keep a pytester
run quiet, the ``clean_env`` fixture and the error lines of a run.

Both modules list this one in ``pytest_plugins`` (that is how a fixture outside a conftest reaches
a test module) and import it for the rest. The docstring's PYTEST_DONT_REWRITE keeps pytest from
warning that a module imported before it was registered as a plugin cannot be assert-rewritten:
it holds no assert.
"""
from __future__ import annotations

import pytest

from pytest_rnn_contracts.session import ENV_CHECKER, ENV_DEVICES, ENV_REQUIRE

import pytest_rnn_contracts.plugin
from rnn_contracts import devices

#: Inner sessions without the plugins that would add noise or state (random order, cache, ...).
QUIET = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")
#: For inner sessions about the CPU entry or header: on a GPU machine every device test gets a
#: cuda item too (on an H200 such tests counted 2 items and found no cuda golden).
CPU_ONLY = ("--rnn-device", "cpu")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of the plugin's environment variables set, whatever the outer session has."""
    for name in (ENV_DEVICES, ENV_REQUIRE, ENV_CHECKER):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs print at 200 columns: pytest cuts summary lines (FAILED ... - message) and
    --help's option text at the terminal's width, so COLUMNS=40 broke matches on them."""
    monkeypatch.setenv("COLUMNS", "200")


def errors(result: pytest.RunResult) -> list[str]:
    """The non-blank lines a run wrote to stderr."""
    return [line for line in result.errlines if line.strip()]
