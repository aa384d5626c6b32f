"""The rnn-contracts pytest plugin itself, through pytester.

Most runs are in-process (fast; each inner session restores what the plugin changed in
pytest_unconfigure). Runs that must see a fresh process (the --require-device failure as a user
sees it, the self-test abort with a patched-out checker) use runpytest_subprocess. GPU cases use
a faked device list: they test the plugin's logic, not a GPU.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

import contracts
import fixtures.plugin
from fixtures import devices, goldens
from fixtures.devices import DeviceInfo

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
FAKE = ["cpu", "cuda:0", "cuda:1"]
QUIET = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")


@pytest.fixture
def fake_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend discovery found two GPUs, with descriptions; no test body touches them."""
    monkeypatch.setattr(devices, "discover_devices", lambda: list(FAKE))
    infos = {"cuda:0": DeviceInfo("cuda:0", "NVIDIA H200", (9, 0), 139.8),
             "cuda:1": DeviceInfo("cuda:1", "NVIDIA H200", (9, 0), 139.8)}
    real = devices.describe_device
    monkeypatch.setattr(devices, "describe_device", lambda d: infos.get(d) or real(d))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (devices.ENV_DEVICES, devices.ENV_REQUIRE, fixtures.plugin.ENV_CHECKER):
        monkeypatch.delenv(name, raising=False)


DEVICE_TESTS = """
import warnings
def test_dev(device):
    assert isinstance(device, str)
def test_warns(device):
    warnings.warn("RNN module weights are not part of single contiguous chunk of memory. "
                  "This means they need to be compacted at every call.", UserWarning)
"""


def _ids(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line]


def _errors(result: pytest.RunResult) -> list[str]:
    return [line for line in result.errlines if line.strip()]


# --- device parametrization ------------------------------------------------------------------
def test_device_fixture_is_parametrized_with_readable_ids(pytester: pytest.Pytester, clean_env: None) -> None:
    pytester.makepyfile(test_d="def test_dev(device, hello_batch):\n    assert hello_batch.device.type == device\n")
    result = pytester.runpytest_inprocess(*QUIET, "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_d.py::test_dev[[]cpu[]] PASSED*"])


def test_cuda_params_carry_the_marker_and_the_warning_filter(
    pytester: pytest.Pytester, fake_gpus: None, clean_env: None
) -> None:
    pytester.makepyfile(test_d=DEVICE_TESTS)
    result = pytester.runpytest_inprocess(*QUIET, "--co", "-q")
    assert _ids(result) == [f"test_d.py::test_{t}[{d}]" for t in ("dev", "warns") for d in FAKE]
    result = pytester.runpytest_inprocess(*QUIET, "-q", "-m", "cuda", "--strict-markers")
    # the contiguity warning is a failure on CUDA params only; -m cuda deselects the cpu ones
    result.assert_outcomes(passed=2, failed=2, deselected=2)
    result.stdout.fnmatch_lines(["FAILED test_d.py::test_warns[[]cuda:0[]] - UserWarning: RNN module weights*"])
    pytester.runpytest_inprocess(*QUIET, "-q", "-m", "not cuda").assert_outcomes(passed=2, deselected=4)


def test_user_parametrization_of_device_is_left_alone(pytester: pytest.Pytester, clean_env: None) -> None:
    pytester.makepyfile(test_d="import pytest\n@pytest.mark.parametrize('device', ['meta'])\n"
                        "def test_dev(device):\n    assert device == 'meta'\n")
    pytester.runpytest_inprocess(*QUIET).assert_outcomes(passed=1)


def test_markers_are_registered(pytester: pytest.Pytester, clean_env: None) -> None:
    result = pytester.runpytest_inprocess(*QUIET, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.cuda: parametrized on a CUDA device*",
                                 "@pytest.mark.mps: parametrized on the MPS device*"])


# --- --device / RNN_CONTRACTS_DEVICES ---------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--device", "cpu", "--device", "cuda:1"], None, ["cpu", "cuda:1"]),
        (["--device", "cuda"], None, ["cuda:0", "cuda:1"]),
        ([], "cuda:0", ["cuda:0"]),
        (["--device", "cpu"], "cuda:0", ["cpu"]),
    ],
)
def test_device_selection(pytester: pytest.Pytester, fake_gpus: None, clean_env: None,
                          monkeypatch: pytest.MonkeyPatch, args: list[str], env: str | None,
                          expected: list[str]) -> None:
    if env is not None:
        monkeypatch.setenv(devices.ENV_DEVICES, env)
    pytester.makepyfile(test_d="def test_dev(device):\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET, "--co", "-q", *args)
    assert _ids(result) == [f"test_d.py::test_dev[{d}]" for d in expected]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--device", "cuda:5"], None, "--device cuda:5: not available: visible CUDA devices are cuda:0, cuda:1"),
        ([], "mps", "RNN_CONTRACTS_DEVICES mps: not available: MPS is not available on this machine"),
        (["--device", "tpu"], None, "--device 'tpu': not a device name (use cpu, cuda, cuda:N or mps)"),
    ],
)
def test_unavailable_device_is_a_usage_error(pytester: pytest.Pytester, fake_gpus: None, clean_env: None,
                                             monkeypatch: pytest.MonkeyPatch, args: list[str],
                                             env: str | None, message: str) -> None:
    if env is not None:
        monkeypatch.setenv(devices.ENV_DEVICES, env)
    pytester.makepyfile(test_d="def test_dev(device):\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert _errors(result) == [f"ERROR: rnn-contracts: {message}"]


# --- header ----------------------------------------------------------------------------------
def test_header_on_this_machine(pytester: pytest.Pytester, clean_env: None) -> None:
    pytester.makepyfile(test_d="def test_x():\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET, "--contract-checker", "beartype")
    result.stdout.fnmatch_lines([
        f"rnn-contracts: torch {torch.__version__} (*), contract checker: beartype",
        "rnn-contracts precision: TF32 * (cuda.matmul.allow_tf32=*",
        "rnn-contracts devices: cpu*",
    ])


def test_header_with_a_faked_cuda_description(pytester: pytest.Pytester, fake_gpus: None, clean_env: None) -> None:
    pytester.makepyfile(test_d="def test_x():\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET, "--device", "cuda", "--co")
    result.stdout.fnmatch_lines([
        "rnn-contracts devices: cuda:0, cuda:1",
        "  cuda:0: NVIDIA H200, compute capability 9.0, 139.8 GiB",
        "  cuda:1: NVIDIA H200, compute capability 9.0, 139.8 GiB",
    ])


# --- --require-device ------------------------------------------------------------------------
def test_require_cuda_fails_at_start_on_this_machine(pytester: pytest.Pytester, clean_env: None) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    pytester.makepyfile(test_d="def test_dev(device):\n    pass\n")
    result = pytester.runpytest_subprocess(*QUIET, "--require-device", "cuda")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert _errors(result) == [
        "ERROR: rnn-contracts: --require-device cuda: not available: no CUDA device is visible "
        f"(torch {torch.__version__}, built without CUDA)"
    ]
    assert "passed" not in result.stdout.str() and "skipped" not in result.stdout.str()


def test_require_through_the_env_var(pytester: pytest.Pytester, clean_env: None,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.setenv(devices.ENV_REQUIRE, "cuda")
    pytester.makepyfile(test_d="def test_dev(device):\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ERROR: rnn-contracts: --require-device cuda: not available: no CUDA" in result.errlines[0]


def test_require_fails_on_a_broken_gpu_and_on_an_excluded_one(
    pytester: pytest.Pytester, fake_gpus: None, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    probed: list[str] = []

    def probe(d: str) -> str | None:
        probed.append(d)
        return "cuda:1: probe computed 0.0, expected 263168.0" if d == "cuda:1" else None

    monkeypatch.setattr(devices, "probe_device", probe)
    pytester.makepyfile(test_d="def test_dev(device):\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET, "--require-device", "cuda")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and probed == ["cuda:0", "cuda:1"]
    assert result.errlines[0] == ("ERROR: rnn-contracts: --require-device cuda: cuda:1: probe computed "
                                  "0.0, expected 263168.0")
    result = pytester.runpytest_inprocess(*QUIET, "--require-device", "cuda:0", "--device", "cpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "cuda:0 is excluded by the device selection (cpu)" in result.errlines[0]
    pytester.runpytest_inprocess(*QUIET, "--require-device", "cuda:0").assert_outcomes(passed=3)


# --- contract checker and its self-test ------------------------------------------------------
NOOP_TYPEGUARD = """
# A checker that checks nothing: typeguard.check_type accepts every value. Conftests load
# before the plugin's pytest_configure, so the session-start self-test sees this.
import typeguard
typeguard.check_type = lambda value, *args, **kwargs: value
"""


def test_self_test_aborts_the_session_when_the_checker_checks_nothing(pytester: pytest.Pytester,
                                                                     clean_env: None) -> None:
    pytester.makeconftest(NOOP_TYPEGUARD)
    pytester.makepyfile(test_d="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(*QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = _errors(result)
    assert len(errors) == 1 and errors[0].startswith("ERROR: rnn-contracts: contract self-test failed: "
                                                     "the typeguard checker accepted")
    assert "passed" not in result.stdout.str()


def test_checker_option_and_env_select_the_checker_and_are_restored(
    pytester: pytest.Pytester, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer = contracts.get_checker()
    pytester.makepyfile(test_c="import contracts, os\n"
                        "def test_c():\n    assert contracts.get_checker() == os.environ['WANT']\n")
    monkeypatch.setenv("WANT", "beartype")
    pytester.runpytest_inprocess(*QUIET, "--contract-checker", "beartype").assert_outcomes(passed=1)
    monkeypatch.setenv(fixtures.plugin.ENV_CHECKER, "beartype")
    pytester.runpytest_inprocess(*QUIET).assert_outcomes(passed=1)
    monkeypatch.setenv("WANT", "typeguard")
    pytester.runpytest_inprocess(*QUIET, "--contract-checker", "typeguard").assert_outcomes(passed=1)
    assert contracts.get_checker() == outer
    monkeypatch.setenv(fixtures.plugin.ENV_CHECKER, "nope")
    result = pytester.runpytest_inprocess(*QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "unknown contract checker 'nope'" in result.errlines[0]


# --- seeded isolation ------------------------------------------------------------------------
def test_seeded_does_not_leak_into_the_next_test(pytester: pytest.Pytester, clean_env: None) -> None:
    pytester.makepyfile(test_s="""
import torch
SAVED = {}
def test_1_before():
    torch.manual_seed(42)
    SAVED["state"] = torch.get_rng_state()
def test_2_seeded(seeded):
    assert seeded == 0
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
import fixtures.plugin
def test_once(request):
    pm = request.config.pluginmanager
    same = [p for p in pm.get_plugins() if p is fixtures.plugin]
    assert len(same) == 1
    assert pm.get_plugin("rnn_contracts") is fixtures.plugin
    assert any(dist.project_name == "rnn-contracts" for _, dist in pm.list_plugin_distinfo())
""")
    pytester.runpytest_inprocess(*QUIET).assert_outcomes(passed=1)


def test_without_the_plugin_the_repo_conftest_refuses_to_run(pytester: pytest.Pytester, clean_env: None) -> None:
    pytester.makeconftest((REPO / "conftest.py").read_text(encoding="utf-8"))
    pytester.makepyfile(test_r="def test_x():\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET, "-p", "no:rnn_contracts")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "the rnn-contracts plugin is not registered" in result.errlines[0]


def test_help_lists_options_and_env_vars(pytester: pytest.Pytester, clean_env: None,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(devices.ENV_REQUIRE, "cuda")  # --help must still work
    result = pytester.runpytest_inprocess("--help", "-p", "no:benchmark")
    assert result.ret == 0
    text = result.stdout.str()
    for name in ("--device=DEVICE", "--require-device=DEVICE", "--contract-checker",
                 "--deterministic", "--regen-goldens", "--goldens-file", "RNN_CONTRACTS_DEVICES",
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
    pytester.runpytest_inprocess(*QUIET, "--deterministic").assert_outcomes(passed=1)
    assert torch.are_deterministic_algorithms_enabled() == before
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # a value already set is kept
    monkeypatch.setenv("WANT", ":16:8")
    result = pytester.runpytest_inprocess(*QUIET, "--deterministic")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["rnn-contracts: --deterministic (CUBLAS_WORKSPACE_CONFIG=:16:8*"])


# --- xdist pinning ---------------------------------------------------------------------------
def test_controller_hands_workers_the_gpu_count() -> None:
    class Node:
        workerinput: dict = {}

    node = Node()
    fixtures.plugin._XdistController(2, True).pytest_configure_node(node)
    assert node.workerinput == {fixtures.plugin._WI_COUNT: 2, fixtures.plugin._WI_PIN: True}


FAKE_WORKER = """
import pytest
@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # what xdist's worker sets up before pytest_configure; registered after the plugin, this
    # tryfirst impl runs before the plugin's.
    config.workerinput = {"workerid": "gw1", "rnn_contracts_gpu_count": 2, "rnn_contracts_pin_gpus": True}
"""


def test_worker_is_pinned_before_discovery_respecting_the_outer_list(
    pytester: pytest.Pytester, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str | None] = []
    monkeypatch.setattr(devices, "discover_devices", lambda: seen.append(os.environ.get("CUDA_VISIBLE_DEVICES")) or ["cpu"])
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-aaaa,GPU-bbbb")
    pytester.makeconftest(FAKE_WORKER)
    pytester.makepyfile(test_w="import os\ndef test_w():\n    assert os.environ['CUDA_VISIBLE_DEVICES'] == 'GPU-bbbb'\n")
    pytester.runpytest_inprocess(*QUIET).assert_outcomes(passed=1)
    assert seen == ["GPU-bbbb"]  # discovery ran after pinning
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "GPU-aaaa,GPU-bbbb"  # restored at unconfigure


def test_pinning_refuses_when_cuda_is_already_initialised(
    pytester: pytest.Pytester, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(devices, "discover_devices", lambda: ["cpu"])
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    pytester.makeconftest(FAKE_WORKER)
    pytester.makepyfile(test_w="def test_w():\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "CUDA was initialised before the xdist worker could be pinned" in result.errlines[0]


@pytest.mark.slow
def test_real_xdist_workers_get_one_gpu_each(pytester: pytest.Pytester, clean_env: None,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # End to end with real workers: the controller (told by a conftest that it sees 2 GPUs)
    # passes the count through pytest_configure_node; each worker pins before discovery.
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    pytester.makeconftest("import fixtures.devices as d\nd.cuda_count = lambda: 2\n")
    pytester.makepyfile(test_w="""
import os
def test_w(worker_id):
    assert os.environ["CUDA_VISIBLE_DEVICES"] == {"gw0": "0", "gw1": "1"}[worker_id]
""")
    pytester.makepyfile(test_w2="def test_w2():\n    pass\n")
    result = pytester.runpytest_subprocess(*QUIET, "-n", "2", "-p", "xdist")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["  xdist workers pinned round robin over CUDA_VISIBLE_DEVICES 0,1"])


# --- goldens through the plugin --------------------------------------------------------------
GOLDEN_TEST = """
import torch
def test_g(golden, make_module, hello_batch):
    out = make_module(torch.nn.RNN, 4, 2)(hello_batch)[0].detach()
    out[0, 0, 0] += 1e-3
    golden.check("seed_rnn_4_2_output", out)
"""


def test_regen_goldens_rewrites_and_prints_the_difference(pytester: pytest.Pytester, clean_env: None) -> None:
    store = pytester.path / "goldens.json"
    shutil.copy(goldens.DEFAULT_PATH, store)
    pytester.makepyfile(test_g=GOLDEN_TEST)
    result = pytester.runpytest_inprocess(*QUIET, "--goldens-file", str(store))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*golden seed_rnn_4_2_output: 1 of 30 values outside*",
                                 "*run: torch *, device cpu*, dtype float32, TF32 *, cuDNN none*"])
    result = pytester.runpytest_inprocess(*QUIET, "--goldens-file", str(store), "--regen-goldens")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*rnn-contracts: --regen-goldens*",
                                 "seed_rnn_4_2_output[[]torch *, cpu, float32[]]: 1 of 30 values changed",
                                 "seed_rnn_4_2_output*: [[]0, 0, 0[]]: -0.7497 -> -0.7487",
                                 f"written to {store}"])
    pytester.runpytest_inprocess(*QUIET, "--goldens-file", str(store)).assert_outcomes(passed=1)
    assert goldens.DEFAULT_PATH.read_text(encoding="utf-8") != store.read_text(encoding="utf-8")


def test_regen_goldens_refuses_xdist(pytester: pytest.Pytester, clean_env: None) -> None:
    pytester.makepyfile(test_g="def test_x():\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET, "-p", "xdist", "-n", "2", "--regen-goldens")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--regen-goldens rewrites one file: run it without -n" in result.errlines[0]
