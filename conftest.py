"""Repository conftest.

The plugin (pytest_rnn_contracts.plugin) is registered by the ``pytest11`` entry point of the installed
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


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under pytest-xdist, give each worker its share of the cores.

    torch's default intra-op pool uses every core in every worker; with ``-n 2`` on 2 cores the
    half-precision kernels then stall (test_shapes.py took 31 s instead of 5 s). This is the
    repo's policy, not the plugin's: a project using the plugin keeps its own thread settings.
    """
    import os

    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(workers)))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``checker`` over every runtime checker. Parametrized here rather than with
    ``params=engine.CHECKERS``, so that importing this conftest does not import the library (and
    torch): the pytest-xdist controller, which runs no test, never does."""
    if "checker" in metafunc.fixturenames:
        from rnn_contracts import engine

        metafunc.parametrize("checker", engine.CHECKERS, indirect=True)


@pytest.fixture
def checker(request: pytest.FixtureRequest):
    """Each runtime checker in turn (typeguard, beartype), restoring the one in use afterwards."""
    from rnn_contracts import engine

    previous = engine.get_checker()
    engine.set_checker(request.param)
    yield request.param
    engine.set_checker(previous)


@pytest.fixture
def device(rnn_device: str) -> str:
    """This repo's short name for the plugin's ``rnn_device`` (parametrized over the devices)."""
    return rnn_device
