"""The rnn-contracts pytest plugin itself, through pytester.

Every run is in-process (fast; each inner session restores what the plugin changed in
pytest_unconfigure, and the test puts back the checker that the self-test abort's conftest patches
out). The session that needs a fresh process is in tests/test_install_safety.py (the inert one);
tests/test_plugin_errors.py's bad RNN_CONTRACTS_CHECKER session imports the library afresh. The
GPU side (CUDA parametrization, --rnn-device over faked GPUs, --require-device, xdist pinning) is
in tests/test_plugin_gpu.py; shared helpers in tests/plugin_helpers.py.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pytest_rnn_contracts.session import ENV_CHECKER, ENV_DEVICES, ENV_REQUIRE
import torch

import rnn_contracts
import pytest_rnn_contracts.plugin
from rnn_contracts import devices, goldens

try:  # tests/ is on sys.path under pytest's default "prepend" import mode
    import plugin_helpers
except ImportError:  # tests/ became a package
    from tests import plugin_helpers

pytest_plugins = ["pytester", plugin_helpers.__name__]  # plugin_helpers: the clean_env fixture

QUIET, CPU_ONLY, _errors = plugin_helpers.QUIET, plugin_helpers.CPU_ONLY, plugin_helpers.errors

REPO = Path(__file__).resolve().parents[1]


# --- device parametrization ------------------------------------------------------------------
def test_device_fixture_is_parametrized_with_readable_ids(pytester: pytest.Pytester, clean_env: None) -> None:
    pytester.makepyfile(test_d="def test_dev(rnn_device, hello_batch):\n    assert str(hello_batch.device) == rnn_device\n")
    result = pytester.runpytest_inprocess(*QUIET, "-v")
    found = devices.discover_devices()  # cpu here; cpu and cuda:0 on a GPU machine
    result.assert_outcomes(passed=len(found))
    result.stdout.fnmatch_lines([f"*test_d.py::test_dev[[]{d}[]] PASSED*" for d in found])


def test_user_parametrization_of_rnn_device_is_left_alone(pytester: pytest.Pytester, clean_env: None) -> None:
    pytester.makepyfile(test_d="import pytest\n@pytest.mark.parametrize('rnn_device', ['meta'])\n"
                        "def test_dev(rnn_device):\n    assert rnn_device == 'meta'\n")
    pytester.runpytest_inprocess(*QUIET).assert_outcomes(passed=1)


def test_markers_are_registered(pytester: pytest.Pytester, clean_env: None) -> None:
    result = pytester.runpytest_inprocess(*QUIET, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.cuda: parametrized on a CUDA device*",
                                 "@pytest.mark.mps: parametrized on the MPS device*"])



# --- header ----------------------------------------------------------------------------------
def test_header_on_this_machine(pytester: pytest.Pytester, clean_env: None) -> None:
    pytester.makepyfile(test_d="def test_x():\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET, "--rnn-checker", "beartype")
    result.stdout.fnmatch_lines([
        f"rnn-contracts: torch {torch.__version__} (*), contract checker: beartype",
        "rnn-contracts precision: TF32 * (cuda.matmul.allow_tf32=*",
        "rnn-contracts devices: cpu*",
    ])



# --- contract checker and its self-test ------------------------------------------------------
NOOP_TYPEGUARD = """
# A checker that checks nothing: typeguard.check_type accepts every value. Conftests load
# before the plugin's pytest_configure, so the session-start self-test sees this.
import typeguard
typeguard.check_type = lambda value, *args, **kwargs: value
"""


def test_self_test_aborts_the_session_when_the_checker_checks_nothing(pytester: pytest.Pytester,
                                                                     clean_env: None,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """At start with an --rnn-* option; at collection when a test requests a kit fixture; never
    in a session that does not use the kit (the self-test does not even run there)."""
    import typeguard

    # The inner conftest patches this process's typeguard (the engine looks check_type up at
    # each call, so the inner sessions see it): the real one is put back after the test.
    monkeypatch.setattr(typeguard, "check_type", typeguard.check_type)
    pytester.makeconftest(NOOP_TYPEGUARD)
    pytester.makepyfile(test_d="def test_x():\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET, "--rnn-checker", "typeguard")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = _errors(result)
    assert len(errors) == 1 and errors[0].startswith("ERROR: rnn-contracts: contract self-test failed: "
                                                     "the typeguard checker accepted")
    assert "passed" not in result.stdout.str()
    pytester.makepyfile(test_k="def test_k(rnn_seeded):\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = _errors(result)
    assert len(errors) == 1 and errors[0].startswith("ERROR: rnn-contracts: contract self-test failed: "
                                                     "the typeguard checker accepted")
    assert "passed" not in result.stdout.str()
    result = pytester.runpytest_inprocess(*QUIET, "test_d.py")
    result.assert_outcomes(passed=1)


def test_checker_option_and_env_select_the_checker_and_are_restored(
    pytester: pytest.Pytester, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer = rnn_contracts.get_checker()
    pytester.makepyfile(test_c="import rnn_contracts, os\n"
                        "def test_c():\n    assert rnn_contracts.get_checker() == os.environ['WANT']\n")
    monkeypatch.setenv("WANT", "beartype")
    pytester.runpytest_inprocess(*QUIET, "--rnn-checker", "beartype").assert_outcomes(passed=1)
    monkeypatch.setenv(ENV_CHECKER, "beartype")
    pytester.runpytest_inprocess(*QUIET).assert_outcomes(passed=1)
    monkeypatch.setenv("WANT", "typeguard")
    pytester.runpytest_inprocess(*QUIET, "--rnn-checker", "typeguard").assert_outcomes(passed=1)
    assert rnn_contracts.get_checker() == outer
    monkeypatch.setenv(ENV_CHECKER, "nope")
    result = pytester.runpytest_inprocess(*QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "RNN_CONTRACTS_CHECKER='nope': unknown contract checker" in result.errlines[0]



# --- seeded isolation ------------------------------------------------------------------------
def test_seeded_does_not_leak_into_the_next_test(pytester: pytest.Pytester, clean_env: None) -> None:
    pytester.makepyfile(test_s="""
import torch
SAVED = {}
def test_1_before():
    torch.manual_seed(42)
    SAVED["state"] = torch.get_rng_state()
def test_2_seeded(rnn_seeded):
    assert rnn_seeded == 0
    first = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(first, torch.rand(3))
    torch.rand(100)
def test_3_after():
    assert torch.equal(torch.get_rng_state(), SAVED["state"])
""")
    pytester.runpytest_inprocess(*QUIET).assert_outcomes(passed=3)



# --- registration ----------------------------------------------------------------------------
def test_plugin_is_registered_once_by_the_entry_point_with_the_repo_conftest(pytester: pytest.Pytester,
                                                                            clean_env: None) -> None:
    pytester.makeconftest((REPO / "conftest.py").read_text(encoding="utf-8"))
    pytester.makepyfile(test_r="""
import pytest_rnn_contracts.plugin
def test_once(request):
    pm = request.config.pluginmanager
    same = [p for p in pm.get_plugins() if p is pytest_rnn_contracts.plugin]
    assert len(same) == 1
    assert pm.get_plugin("rnn_contracts") is pytest_rnn_contracts.plugin
    assert any(dist.project_name == "rnn-contracts" for _, dist in pm.list_plugin_distinfo())
""")
    pytester.runpytest_inprocess(*QUIET).assert_outcomes(passed=1)


def test_without_the_plugin_the_repo_conftest_refuses_to_run(pytester: pytest.Pytester, clean_env: None) -> None:
    pytester.makeconftest((REPO / "conftest.py").read_text(encoding="utf-8"))
    pytester.makepyfile(test_r="def test_x():\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET, "-p", "no:rnn_contracts")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "the rnn-contracts plugin is not registered" in result.errlines[0]


def test_help_lists_options_and_env_vars(pytester: pytest.Pytester, clean_env: None, wide_terminal: None,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_REQUIRE, "cuda")  # --help must still work
    result = pytester.runpytest_inprocess("--help", "-p", "no:benchmark")
    assert result.ret == 0
    text = result.stdout.str()
    for name in ("--rnn-device=DEVICE", "--rnn-require-device=DEVICE", "--rnn-checker",
                 "--rnn-deterministic", "--rnn-regen-goldens", "--rnn-goldens-file", "RNN_CONTRACTS_DEVICES",
                 "RNN_CONTRACTS_REQUIRE_DEVICE", "RNN_CONTRACTS_CHECKER", "18110"):
        assert name in text, name



# --- --deterministic -------------------------------------------------------------------------
@pytest.fixture(scope="session")
def inductor_imported() -> None:
    """torch.use_deterministic_algorithms (called by --deterministic) imports torch._inductor,
    which registers a TORCH_LIBRARY namespace once per process. The pytester fixture drops
    modules first imported during a test, and their re-import would then fail; a session
    fixture is set up before pytester's snapshot, so the modules stay (about 3 s, once)."""
    import torch._inductor.config  # noqa: F401


def test_deterministic_sets_and_restores(inductor_imported: None, pytester: pytest.Pytester, clean_env: None,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = torch.are_deterministic_algorithms_enabled()
    pytester.makepyfile(test_x="""
import os, torch
def test_on():
    assert torch.are_deterministic_algorithms_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == os.environ.get("WANT", ":4096:8")
""")
    pytester.runpytest_inprocess(*QUIET, "--rnn-deterministic").assert_outcomes(passed=1)
    assert torch.are_deterministic_algorithms_enabled() == before
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # a value already set is kept
    monkeypatch.setenv("WANT", ":16:8")
    result = pytester.runpytest_inprocess(*QUIET, "--rnn-deterministic")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["rnn-contracts: --rnn-deterministic (CUBLAS_WORKSPACE_CONFIG=:16:8*"])



# --- goldens through the plugin --------------------------------------------------------------
GOLDEN_TEST = """
import torch
def test_g(rnn_golden, rnn_make_module, hello_batch):
    out = rnn_make_module(torch.nn.RNN, 4, 2)(hello_batch)[0].detach()
    out[0, 0, 0] += 1e-3
    rnn_golden.check("seed_rnn_4_2_output", out)
"""


def test_regen_goldens_rewrites_and_prints_the_difference(pytester: pytest.Pytester, clean_env: None) -> None:
    store = pytester.path / "goldens.json"
    shutil.copy(goldens.DEFAULT_PATH, store)
    pytester.makepyfile(test_g=GOLDEN_TEST)
    result = pytester.runpytest_inprocess(*QUIET, *CPU_ONLY, "--rnn-goldens-file", str(store))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*golden seed_rnn_4_2_output: 1 of 30 values outside*",
                                 "*run: torch *, device cpu*, dtype float32, TF32 *, cuDNN *"])
    result = pytester.runpytest_inprocess(*QUIET, *CPU_ONLY, "--rnn-goldens-file", str(store), "--rnn-regen-goldens")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*rnn-contracts: --rnn-regen-goldens*",
                                 "seed_rnn_4_2_output[[]torch *, cpu, float32[]]: 1 of 30 values changed",
                                 "seed_rnn_4_2_output*: [[]0, 0, 0[]]: -0.7497 -> -0.7487",
                                 f"written to {store}"])
    pytester.runpytest_inprocess(*QUIET, *CPU_ONLY, "--rnn-goldens-file", str(store)).assert_outcomes(passed=1)
    assert goldens.DEFAULT_PATH.read_text(encoding="utf-8") != store.read_text(encoding="utf-8")


def test_a_projects_golden_store_in_its_ini_is_found_from_any_folder(pytester: pytest.Pytester,
                                                                      clean_env: None) -> None:
    """--rnn-goldens-file in addopts is relative to wherever pytest runs, so a project's store
    went missing from a subfolder, and a regen from the parent folder wrote outside the project
    (a user-view review): the ini option is relative to the ini file's folder."""
    (pytester.path / "store").mkdir()
    shutil.copy(goldens.DEFAULT_PATH, pytester.path / "store" / "goldens.json")
    pytester.makeini("[pytest]\nrnn_goldens_file = store/goldens.json\n")
    tests = pytester.mkdir("sub")  # no __init__.py: a package named tests may be imported already
    (tests / "test_ini_store.py").write_text(
        "def test_g(rnn_golden, pytestconfig):\n"
        "    assert rnn_golden.store.path == pytestconfig.inipath.parent / 'store' / 'goldens.json'\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tests)
        result = pytester.runpytest_inprocess(*QUIET, *CPU_ONLY, str(tests / "test_ini_store.py"))
    result.assert_outcomes(passed=1)


def test_regen_goldens_refuses_xdist(pytester: pytest.Pytester, clean_env: None) -> None:
    pytester.makepyfile(test_g="def test_x():\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET, "-p", "xdist", "-n", "2", "--rnn-regen-goldens")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--rnn-regen-goldens rewrites one file: run it without -n" in result.errlines[0]



def test_the_golden_fixture_works_when_requested_late(pytester: pytest.Pytester, clean_env: None) -> None:
    """A kit fixture reached only through request.getfixturevalue activates the kit itself."""
    pytester.makepyfile(test_g="""
def test_g(request):
    golden = request.getfixturevalue("rnn_golden")
    assert golden.lookup("seed_rnn_4_2_output").shape == [3, 5, 2]
""")
    pytester.runpytest_inprocess(*QUIET).assert_outcomes(passed=1)
