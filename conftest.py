"""Repository conftest.

The plugin (fixtures.plugin) is registered by the ``pytest11`` entry point of the installed
distribution. It is deliberately NOT listed in ``pytest_plugins`` here: that would register it a
second time. If the distribution is not installed, fail with the command that fixes it.
"""
from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("rnn_contracts"):
        raise pytest.UsageError(
            "the rnn-contracts plugin is not registered: install the repo first "
            "(python -m pip install -e '.[test]'), or run: bash .ci/run"
        )
