"""The kit as a guest: the library never needs pytest or the plugin, and the plugin is inert in
sessions that do not use the kit (no torch import, no header, no warning filter, no self-test).
The installed-wheel side (a project with its own `contracts`, `fixtures`, --device and device,
and the index's `fixtures` installed) is tests/test_downstream.py (slow)."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_rnn_contracts
import rnn_contracts
from rnn_contracts import devices
pytest_plugins = ["pytester"]

LIBRARY = Path(rnn_contracts.__file__).parent
FORBIDDEN_IN_LIBRARY = {"pytest", "_pytest", "pytest_rnn_contracts"}


def _imported_roots(path: Path) -> set[str]:
    """Top-level names of every import statement in a module, wherever it stands."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_library_module_imports_pytest_or_the_plugin() -> None:
    offenders = {p.relative_to(LIBRARY).as_posix(): sorted(_imported_roots(p) & FORBIDDEN_IN_LIBRARY)
                 for p in sorted(LIBRARY.rglob("*.py"))}
    assert {k: v for k, v in offenders.items() if v} == {}


def _verdict_asserts(path: Path) -> list[int]:
    """Lines of ``assert`` statements other than ``assert <name> is not None`` (a type checker's
    narrowing, whose loss under -O changes nothing)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Assert):
            test = node.test
            narrowing = (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
                         and len(test.ops) == 1 and isinstance(test.ops[0], ast.IsNot)
                         and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value is None)
            if not narrowing:
                lines.append(node.lineno)
    return lines


def test_no_verdict_of_the_kit_rests_on_an_assert_statement() -> None:
    """``python -O`` strips asserts (a failed seed check would pass), and pytest rewrites the asserts
    of every module of a distribution with a pytest11 entry point, ours once installed (the message
    would carry its introspection): verdicts raise explicitly."""
    plugin = Path(pytest_rnn_contracts.__file__).parent
    found = {f"{p.parent.name}/{p.name}": lines for root in (LIBRARY, plugin) for p in sorted(root.rglob("*.py"))
             if (lines := _verdict_asserts(p))}
    assert found == {}


def test_importing_the_library_loads_neither_pytest_nor_the_plugin() -> None:
    code = ("import json, sys, rnn_contracts, rnn_contracts.cli, rnn_contracts.seed\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & "
            f"{FORBIDDEN_IN_LIBRARY!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          check=True)
    assert json.loads(done.stdout) == []


UNRELATED = """
import sys

def test_unrelated(pytestconfig):
    # the plugin is loaded (its options exist), and costs nothing
    assert pytestconfig.pluginmanager.has_plugin("rnn_contracts")
    assert pytestconfig.getoption("rnn_devices") == []
    assert [m for m in sys.modules if m.split(".")[0] in ("torch", "rnn_contracts")] == []
    assert [f for f in pytestconfig.getini("filterwarnings") if "typeguard" in f] == []
"""


#: The inert session below: a fresh process (this one imported torch long ago). Plugins of this
#: environment that import torch themselves are left out (jaxtyping's and typeguard's pytest
#: plugins do not). The kit's session is the same but for its test: the inert one's control,
#: showing the header and the warning filter once a test asks for the kit. It runs in this
#: process: what it shows is the session's (its config, its header), not the process's, and the
#: plugin restores what it changed when the session ends (tests/test_plugin.py runs the same way).
FRESH_SESSION = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:xdist")


def test_the_plugin_is_inert_in_a_session_that_does_not_use_the_kit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_unrelated=UNRELATED)
    result = pytester.runpytest_subprocess(*FRESH_SESSION)
    result.assert_outcomes(passed=1)
    assert [line for line in result.outlines if line.startswith("rnn-contracts")] == []


def test_a_kit_fixture_activates_the_kit_and_its_header(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_kit="""
def test_kit(hello_batch, pytestconfig):
    assert tuple(hello_batch.shape) == (3, 5, 4)
    assert "error::typeguard.InstrumentationWarning" in pytestconfig.getini("filterwarnings")
""")
    result = pytester.runpytest_inprocess(*FRESH_SESSION)
    found = devices.discover_devices()  # one item per device: cpu here, cpu and cuda:0 on a GPU machine
    result.assert_outcomes(passed=len(found))
    result.stdout.fnmatch_lines([f"collected {len(found)} item*", "rnn-contracts: torch *, contract checker: typeguard",
                                 "rnn-contracts devices: cpu*"])


@pytest.mark.parametrize("quiet", ["-q", "--no-header"])
def test_a_quiet_session_gets_no_header_from_the_kit(pytester: pytest.Pytester, quiet: str) -> None:
    """Where pytest leaves out its own header, so does the kit (its four lines came under -qq
    before the dots: a user-view review). Kills: the verbosity test dropped."""
    pytester.makepyfile(test_kit="def test_kit(hello_batch):\n    pass\n")
    result = pytester.runpytest_inprocess(*FRESH_SESSION, "--rnn-device", "cpu", quiet)
    result.assert_outcomes(passed=1)
    assert [line for line in result.outlines if line.startswith(("rnn-contracts", "  cpu"))] == []


def test_a_projects_own_fixtures_of_the_kits_names_stay_its_own(pytester: pytest.Pytester) -> None:
    """A project's conftest that defines its own hello_batch and rnn_device: the kit stays inert
    (no header) and does not parametrize the project's rnn_device over the kit's devices (found
    by a fuzzing helper: both did, and test_dev became test_dev[cpu])."""
    pytester.makeconftest(
        "import pytest\n\n\n@pytest.fixture\ndef hello_batch():\n    return [1, 2, 3]\n\n\n"
        "@pytest.fixture\ndef rnn_device():\n    return 'my-device'\n")
    pytester.makepyfile(test_own=(
        "def test_batch(hello_batch):\n    assert hello_batch == [1, 2, 3]\n\n\n"
        "def test_dev(rnn_device):\n    assert rnn_device == 'my-device'\n"))
    result = pytester.runpytest_inprocess(*FRESH_SESSION, "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_own.py::test_dev PASSED*"])
    assert [line for line in result.outlines if line.startswith("rnn-contracts")] == []
