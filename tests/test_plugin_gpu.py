"""The rnn-contracts plugin's GPU side, through pytester: CUDA parametrization and its marks,
--rnn-device selection and the header over a faked device list, --rnn-require-device, and xdist pinning.

GPU cases use a faked device list (``fake_gpus``): they test the plugin's logic, not a GPU, and
run on any machine; --rnn-require-device against this machine's real devices runs in-process
too (real discovery, nothing faked). Only the real xdist workers (slow) get processes of their
own. Shared helpers: tests/plugin_helpers.py; the rest of the plugin: tests/test_plugin.py.
"""
from __future__ import annotations

import os

import pytest

from pytest_rnn_contracts.session import ENV_CHECKER, ENV_DEVICES, ENV_REQUIRE
import torch

import pytest_rnn_contracts.plugin
from rnn_contracts import devices
from rnn_contracts.devices import DeviceInfo

try:  # tests/ is on sys.path under pytest's default "prepend" import mode
    import plugin_helpers
except ImportError:  # tests/ became a package
    from tests import plugin_helpers

pytest_plugins = ["pytester", plugin_helpers.__name__]  # plugin_helpers: the clean_env fixture

QUIET, _errors = plugin_helpers.QUIET, plugin_helpers.errors

FAKE = ["cpu", "cuda:0", "cuda:1"]


@pytest.fixture
def fake_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend discovery found two GPUs, with descriptions; no test body touches them."""
    monkeypatch.setattr(devices, "discover_devices", lambda: list(FAKE))
    infos = {"cuda:0": DeviceInfo("cuda:0", "NVIDIA H200", (9, 0), 139.8),
             "cuda:1": DeviceInfo("cuda:1", "NVIDIA H200", (9, 0), 139.8)}
    real = devices.describe_device
    monkeypatch.setattr(devices, "describe_device", lambda d: infos.get(d) or real(d))


DEVICE_TESTS = """
import warnings
def test_dev(rnn_device):
    assert isinstance(rnn_device, str)
def test_warns(rnn_device):
    warnings.warn("RNN module weights are not part of single contiguous chunk of memory. "
                  "This means they need to be compacted at every call.", UserWarning)
"""


def _ids(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line]



# --- CUDA parametrization --------------------------------------------------------------------
def test_cuda_params_carry_the_marker_and_the_warning_filter(
    pytester: pytest.Pytester, fake_gpus: None, clean_env: None, wide_terminal: None
) -> None:
    pytester.makepyfile(test_d=DEVICE_TESTS)
    result = pytester.runpytest_inprocess(*QUIET, "--co", "-q")
    assert _ids(result) == [f"test_d.py::test_{t}[{d}]" for t in ("dev", "warns") for d in FAKE]
    result = pytester.runpytest_inprocess(*QUIET, "-q", "-m", "cuda", "--strict-markers")
    # the contiguity warning is a failure on CUDA params only; -m cuda deselects the cpu ones
    result.assert_outcomes(passed=2, failed=2, deselected=2)
    result.stdout.fnmatch_lines(["FAILED test_d.py::test_warns[[]cuda:0[]] - UserWarning: RNN module weights*"])
    pytester.runpytest_inprocess(*QUIET, "-q", "-m", "not cuda").assert_outcomes(passed=2, deselected=4)



# --- --rnn-device / RNN_CONTRACTS_DEVICES --------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--rnn-device", "cpu", "--rnn-device", "cuda:1"], None, ["cpu", "cuda:1"]),
        (["--rnn-device", "cuda"], None, ["cuda:0", "cuda:1"]),
        ([], "cuda:0", ["cuda:0"]),
        (["--rnn-device", "cpu"], "cuda:0", ["cpu"]),
    ],
)
def test_device_selection(pytester: pytest.Pytester, fake_gpus: None, clean_env: None,
                          monkeypatch: pytest.MonkeyPatch, args: list[str], env: str | None,
                          expected: list[str]) -> None:
    if env is not None:
        monkeypatch.setenv(ENV_DEVICES, env)
    pytester.makepyfile(test_d="def test_dev(rnn_device):\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET, "--co", "-q", *args)
    assert _ids(result) == [f"test_d.py::test_dev[{d}]" for d in expected]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--rnn-device", "cuda:5"], None, "--rnn-device cuda:5: not available: visible CUDA devices are cuda:0, cuda:1"),
        ([], "mps", "RNN_CONTRACTS_DEVICES mps: not available: MPS is not available on this machine"),
        (["--rnn-device", "tpu"], None, "--rnn-device 'tpu': not a device name (use cpu, cuda, cuda:N or mps)"),
    ],
)
def test_unavailable_device_is_a_usage_error(pytester: pytest.Pytester, fake_gpus: None, clean_env: None,
                                             monkeypatch: pytest.MonkeyPatch, args: list[str],
                                             env: str | None, message: str) -> None:
    if env is not None:
        monkeypatch.setenv(ENV_DEVICES, env)
    pytester.makepyfile(test_d="def test_dev(rnn_device):\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert _errors(result) == [f"ERROR: rnn-contracts: {message}"]



# --- header ----------------------------------------------------------------------------------
def test_header_with_a_faked_cuda_description(pytester: pytest.Pytester, fake_gpus: None, clean_env: None) -> None:
    pytester.makepyfile(test_d="def test_x():\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET, "--rnn-device", "cuda", "--co")
    result.stdout.fnmatch_lines([
        "rnn-contracts devices: cuda:0, cuda:1",
        "  cuda:0: NVIDIA H200, compute capability 9.0, 139.8 GiB",
        "  cuda:1: NVIDIA H200, compute capability 9.0, 139.8 GiB",
    ])



# --- --require-device ------------------------------------------------------------------------
def test_require_cuda_fails_at_start_on_this_machine(pytester: pytest.Pytester, clean_env: None) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    pytester.makepyfile(test_d="def test_dev(rnn_device):\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET, "--rnn-require-device", "cuda")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert _errors(result) == [
        "ERROR: rnn-contracts: --rnn-require-device cuda: not available: no CUDA device is visible "
        f"(torch {torch.__version__}, built without CUDA)"
    ]
    assert "passed" not in result.stdout.str() and "skipped" not in result.stdout.str()


def test_require_through_the_env_var(pytester: pytest.Pytester, clean_env: None,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.setenv(ENV_REQUIRE, "cuda")
    pytester.makepyfile(test_d="def test_dev(rnn_device):\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ERROR: rnn-contracts: RNN_CONTRACTS_REQUIRE_DEVICE cuda: not available: no CUDA" in result.errlines[0]


def test_require_fails_on_a_broken_gpu_and_on_an_excluded_one(
    pytester: pytest.Pytester, fake_gpus: None, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    probed: list[str] = []

    def probe(d: str) -> str | None:
        probed.append(d)
        return "cuda:1: probe computed 0.0, expected 263168.0" if d == "cuda:1" else None

    monkeypatch.setattr(devices, "probe_device", probe)
    pytester.makepyfile(test_d="def test_dev(rnn_device):\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET, "--rnn-require-device", "cuda")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and probed == ["cuda:0", "cuda:1"]
    assert result.errlines[0] == ("ERROR: rnn-contracts: --rnn-require-device cuda: cuda:1: probe computed "
                                  "0.0, expected 263168.0")
    result = pytester.runpytest_inprocess(*QUIET, "--rnn-require-device", "cuda:0", "--rnn-device", "cpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "cuda:0 is excluded by the device selection (cpu)" in result.errlines[0]
    pytester.runpytest_inprocess(*QUIET, "--rnn-require-device", "cuda:0").assert_outcomes(passed=3)



# --- xdist pinning ---------------------------------------------------------------------------
FAKE_WORKER = """
import pytest
@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # what xdist's worker sets up before pytest_configure; registered after the plugin, this
    # tryfirst impl runs before the plugin's.
    config.workerinput = {"workerid": "gw1"}
"""


@pytest.fixture
def two_gpus_by_nvml(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """NVML counts 2 GPUs, CUDA is not initialised; discovery records CUDA_VISIBLE_DEVICES."""
    seen: list[str | None] = []
    monkeypatch.setattr(devices, "cuda_count_before_init", lambda: 2)
    monkeypatch.setattr(devices, "discover_devices",
                        lambda: seen.append(os.environ.get("CUDA_VISIBLE_DEVICES")) or ["cpu"])
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    return seen


@pytest.mark.parametrize("args", [(), ("--rnn-device", "cpu")], ids=["at-collection", "at-start"])
def test_worker_is_pinned_before_discovery_respecting_the_outer_list(
    pytester: pytest.Pytester, clean_env: None, monkeypatch: pytest.MonkeyPatch,
    two_gpus_by_nvml: list[str | None], args: tuple[str, ...],
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-aaaa,GPU-bbbb")
    pytester.makeconftest(FAKE_WORKER)
    pytester.makepyfile(test_w="import os\ndef test_w(rnn_device):\n"
                        "    assert os.environ['CUDA_VISIBLE_DEVICES'] == 'GPU-bbbb'\n")
    pytester.runpytest_inprocess(*QUIET, *args).assert_outcomes(passed=1)
    assert two_gpus_by_nvml == ["GPU-bbbb"]  # discovery ran after pinning
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "GPU-aaaa,GPU-bbbb"  # restored at unconfigure


def test_a_worker_of_a_session_without_the_kit_is_never_pinned(
    pytester: pytest.Pytester, clean_env: None, monkeypatch: pytest.MonkeyPatch,
    two_gpus_by_nvml: list[str | None],
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    pytester.makeconftest(FAKE_WORKER)
    pytester.makepyfile(test_w="import os\ndef test_w():\n    assert os.environ['CUDA_VISIBLE_DEVICES'] == '0,1'\n")
    pytester.runpytest_inprocess(*QUIET).assert_outcomes(passed=1)
    assert two_gpus_by_nvml == []  # no discovery either


def test_pinning_when_cuda_is_already_initialised(
    pytester: pytest.Pytester, clean_env: None, monkeypatch: pytest.MonkeyPatch,
    two_gpus_by_nvml: list[str | None],
) -> None:
    """At start (an --rnn-* option) a usage error, as the worker could not be pinned; at
    collection (a test module may have touched CUDA by then) the workers share every GPU, and
    the header says so."""
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    pytester.makeconftest(FAKE_WORKER)
    pytester.makepyfile(test_w="def test_w(rnn_device):\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET, "--rnn-device", "cpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "CUDA was initialised before the xdist worker could be pinned" in result.errlines[0]
    result = pytester.runpytest_inprocess(*QUIET)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["rnn-contracts: CUDA was initialised before the xdist worker could "
                                 "be pinned to one GPU (*): workers share every GPU"])


@pytest.mark.slow
def test_real_xdist_workers_get_one_gpu_each(pytester: pytest.Pytester, clean_env: None,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # End to end with real workers: each worker (told by a conftest that NVML counts 2 GPUs, and
    # the controller that discovery finds 2) pins itself before discovery.
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    pytester.makeconftest("import rnn_contracts.devices as d\nd.cuda_count_before_init = lambda: 2\n"
                          "d.cuda_count = lambda: 2\n")
    pytester.makepyfile(test_w="""
import os
def test_w(worker_id, rnn_device):
    assert os.environ["CUDA_VISIBLE_DEVICES"] == {"gw0": "0", "gw1": "1"}[worker_id]
""")
    pytester.makepyfile(test_w2="def test_w2():\n    pass\n")
    result = pytester.runpytest_subprocess(*QUIET, "-n", "2", "-p", "xdist", "--rnn-device", "cpu")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["  xdist workers pinned round robin over CUDA_VISIBLE_DEVICES 0,1"])



DTYPE_WARNS = """
import warnings
import pytest
import torch
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, "bfloat16", torch.int64, "has_cuda"],
                         ids=["f32", "bf16", "bf16-name", "i64", "no-dtype-name"])
def test_warns(rnn_device, dtype):
    warnings.warn("RNN module weights are not part of single contiguous chunk of memory. "
                  "This means they need to be compacted at every call.", UserWarning)
"""


def test_the_warning_filter_spares_a_dtype_torch_cannot_flatten(
    pytester: pytest.Pytester, fake_gpus: None, clean_env: None
) -> None:
    """torch leaves bfloat16 weights unflattened (cudnn_flattens), so every call of such a layer
    warns: a CUDA item parametrized with bfloat16 (the dtype or its name) shows the warning
    without failing; float32 CUDA items still fail on it, and so do items whose dtype parameter
    is no floating dtype (seen on an H200: 352 bfloat16 items failed before)."""
    pytester.makepyfile(test_w=DTYPE_WARNS)
    # -W error: a string parameter is looked up without torch's __getattr__, which warns for
    # "has_cuda" (and imports torch.onnx for "onnx") during collection
    result = pytester.runpytest_inprocess(*QUIET, "-q", "-rA", "-W", "error:'has_cuda' is deprecated:UserWarning")
    result.assert_outcomes(passed=9, failed=6)
    result.stdout.fnmatch_lines(["*warnings summary*", "test_w.py::test_warns[[]cuda:0-bf16[]]"], consecutive=False)
    result.stdout.fnmatch_lines_random([f"FAILED test_w.py::test_warns[[]{d}-{t}[]] - UserWarning: *"
                                        for d in FAKE[1:] for t in ("f32", "i64", "no-dtype-name")])
    result.stdout.fnmatch_lines_random([f"PASSED test_w.py::test_warns[[]{d}-{t}[]]"
                                        for d in FAKE for t in ("bf16", "bf16-name")])
