"""rnn_contracts.devices: discovery, selection, gatekeeping and xdist pinning, as pure functions.

No GPU runs here (CI has none): CUDA cases feed device lists, counts, environment strings and
fake probes to the same functions the plugin calls with real ones.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rnn_contracts import devices
from rnn_contracts.devices import DeviceInfo, DeviceSelectionError

TWO_GPUS = ["cpu", "cuda:0", "cuda:1"]
CPU_ONLY = ["cpu"]


# --- discovery -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("count", "mps", "expected"),
    [(0, False, ["cpu"]), (2, False, TWO_GPUS), (0, True, ["cpu", "mps"]),
     (1, True, ["cpu", "cuda:0", "mps"])],
)
def test_device_list(count: int, mps: bool, expected: list[str]) -> None:
    assert devices.device_list(count, mps) == expected


def test_discover_devices_on_this_machine_matches_torch() -> None:
    found = devices.discover_devices()
    assert found[0] == "cpu"
    assert sum(d.startswith("cuda:") for d in found) == (
        torch.cuda.device_count() if torch.cuda.is_available() else 0
    )


# --- --device / RNN_CONTRACTS_DEVICES --------------------------------------------------------
def test_no_request_selects_everything() -> None:
    assert devices.select_devices([], None, TWO_GPUS) == TWO_GPUS
    assert devices.select_devices([], " , ", TWO_GPUS) == TWO_GPUS


def test_cuda_means_every_cuda_device_and_order_follows_discovery() -> None:
    assert devices.select_devices(["cuda"], None, TWO_GPUS) == ["cuda:0", "cuda:1"]
    assert devices.select_devices(["cuda:1", "cpu", "cuda:1"], None, TWO_GPUS) == ["cpu", "cuda:1"]
    assert devices.select_devices([" CUDA:0 "], None, TWO_GPUS) == ["cuda:0"]


def test_option_wins_over_env_and_env_is_comma_separated() -> None:
    assert devices.select_devices([], "cpu, cuda:1", TWO_GPUS) == ["cpu", "cuda:1"]
    assert devices.select_devices(["cuda:0"], "cpu", TWO_GPUS) == ["cuda:0"]


@pytest.mark.parametrize(
    ("requested", "env", "available", "message"),
    [
        (["cuda"], None, CPU_ONLY, "--device cuda: not available: no CUDA device is visible"),
        (["cuda:2"], None, TWO_GPUS, "--device cuda:2: not available: visible CUDA devices are cuda:0, cuda:1"),
        ([], "cuda:0", CPU_ONLY, "RNN_CONTRACTS_DEVICES cuda:0: not available"),
        (["mps"], None, CPU_ONLY, "--device mps: not available: MPS is not available"),
        (["gpu"], None, TWO_GPUS, "--device 'gpu': not a device name (use cpu, cuda, cuda:N or mps)"),
        (["cuda:x"], None, TWO_GPUS, "not a device name"),
    ],
)
def test_unavailable_or_unknown_device_is_a_one_line_error(
    requested: list[str], env: str | None, available: list[str], message: str
) -> None:
    with pytest.raises(DeviceSelectionError) as info:
        devices.select_devices(requested, env, available, env_name="RNN_CONTRACTS_DEVICES")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_names_specific_cuda() -> None:
    assert devices.names_specific_cuda(["cuda:1"], None)
    assert devices.names_specific_cuda([], "cpu,cuda:0")
    assert not devices.names_specific_cuda(["cuda", "cpu"], "cuda:1")  # the option wins
    assert not devices.names_specific_cuda([], None)


# --- --rnn-require-device --------------------------------------------------------------------
def _fake_probe(broken: set[str]):
    calls: list[str] = []

    def probe(device: str) -> str | None:
        calls.append(device)
        return f"{device}: probe failed: RuntimeError: CUDA error: no kernel image" if device in broken else None

    probe.calls = calls  # type: ignore[attr-defined]
    return probe


def test_required_devices_that_work_pass_and_every_cuda_device_is_probed() -> None:
    probe = _fake_probe(set())
    assert devices.check_required(["cuda", "cpu"], TWO_GPUS, TWO_GPUS, probe) is None
    assert probe.calls == ["cuda:0", "cuda:1", "cpu"]  # type: ignore[attr-defined]


def test_required_cuda_missing_names_the_reason() -> None:
    reason = devices.check_required(["cuda"], CPU_ONLY, CPU_ONLY, _fake_probe(set()))
    assert reason is not None and reason.startswith("--rnn-require-device cuda: not available: no CUDA")


def test_required_device_that_fails_its_probe_fails() -> None:
    reason = devices.check_required(["cuda"], TWO_GPUS, TWO_GPUS, _fake_probe({"cuda:1"}))
    assert reason == "--rnn-require-device cuda: cuda:1: probe failed: RuntimeError: CUDA error: no kernel image"


def test_required_device_excluded_by_selection_fails() -> None:
    reason = devices.check_required(["cuda:1"], TWO_GPUS, ["cpu", "cuda:0"], _fake_probe(set()))
    assert reason is not None and "cuda:1 is excluded by the device selection" in reason


def test_real_probe_on_cpu_passes() -> None:
    assert devices.probe_device("cpu") is None


def test_real_probe_reports_an_exception_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> torch.Tensor:
        raise RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be reported later")

    monkeypatch.setattr(torch, "ones", broken)
    assert devices.probe_device("cpu") == "cpu: probe failed: RuntimeError: CUDA error: out of memory"


def test_real_probe_catches_a_wrong_value(monkeypatch: pytest.MonkeyPatch) -> None:
    real = torch.ones
    monkeypatch.setattr(torch, "ones", lambda *a, **k: real(*a, **k) * 0)  # a device that computes 0
    assert devices.probe_device("cpu") == "cpu: probe computed 0.0, expected 263168.0"


def test_real_probe_of_a_device_torch_cannot_reach() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the unreachable-device case needs a CPU-only torch")
    reason = devices.probe_device("cuda:0")
    assert reason is not None and reason.startswith("cuda:0: probe failed:") and "\n" not in reason


# --- xdist pinning ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("worker", "outer", "count", "expected"),
    [
        ("gw0", None, 2, "0"),
        ("gw1", None, 2, "1"),
        ("gw5", None, 2, "1"),
        ("gw5", None, 4, "1"),
        ("gw2", None, 1, "0"),
        ("gw0", "2,3", 2, "2"),
        ("gw1", "2,3", 2, "3"),
        ("gw5", "2,3", 2, "3"),
        ("gw1", " 2 , 3 ", 2, "3"),
        ("gw3", "2,3,5", 2, "3"),  # the driver saw only 2 of the 3 entries (e.g. one invalid)
        ("gw0", None, 0, None),
        ("gw0", "", 0, None),
        ("gw1", "2,3", 0, None),
        ("master", None, 2, None),
        ("", "0", 1, None),
        ("gw1", "GPU-8f6c1a2b-0000-1111-2222-333344445555,GPU-aa", 2, "GPU-aa"),
        ("gw2", "GPU-8f6c1a2b-0000-1111-2222-333344445555,MIG-1", 2,
         "GPU-8f6c1a2b-0000-1111-2222-333344445555"),
    ],
)
def test_pin_worker(worker: str, outer: str | None, count: int, expected: str | None) -> None:
    assert devices.pin_worker(worker, outer, count) == expected


# --- descriptions ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("version", "text"), [(None, "none"), (0, "none"), (8902, "8.9.2"), (90100, "9.1.0"), (91002, "9.10.2")]
)
def test_format_cudnn_version(version: int | None, text: str) -> None:
    assert devices.format_cudnn_version(version) == text


def test_header_lines_with_a_faked_cuda_description() -> None:
    infos = [
        DeviceInfo("cpu", "x86_64"),
        DeviceInfo("cuda:0", "NVIDIA H200", (9, 0), 139.8),
        DeviceInfo("cuda:1", "NVIDIA A100-SXM4-80GB", (8, 0), 79.2),
    ]
    lines = devices.header_lines(
        infos, torch_version="2.13.0+cu128", cuda_version="12.8", cudnn_version=91002,
        checker="beartype", precision="TF32 off (...)", pinned="2,3",
    )
    assert lines == [
        "rnn-contracts: torch 2.13.0+cu128 (CUDA 12.8, cuDNN 9.10.2), contract checker: beartype",
        "rnn-contracts precision: TF32 off (...)",
        "rnn-contracts devices: cpu, cuda:0, cuda:1",
        "  cpu: x86_64",
        "  cuda:0: NVIDIA H200, compute capability 9.0, 139.8 GiB",
        "  cuda:1: NVIDIA A100-SXM4-80GB, compute capability 8.0, 79.2 GiB",
        "  xdist workers pinned round robin over CUDA_VISIBLE_DEVICES 2,3",
    ]


def test_header_lines_cpu_build() -> None:
    lines = devices.header_lines([DeviceInfo("cpu", "aarch64")], torch_version="2.13.0+cpu",
                                 cuda_version=None, cudnn_version=None, checker="typeguard",
                                 precision="TF32 off")
    assert lines[0] == "rnn-contracts: torch 2.13.0+cpu (no CUDA), contract checker: typeguard"


def test_describe_for_failure_uses_known_infos_and_never_raises() -> None:
    infos = {"cuda:0": DeviceInfo("cuda:0", "NVIDIA H200", (9, 0))}
    assert devices.describe_for_failure("cuda:0", infos) == "cuda:0: NVIDIA H200, compute capability 9.0"
    assert devices.describe_for_failure("cpu").startswith("cpu")
    if not torch.cuda.is_available():
        assert devices.describe_for_failure("cuda:7") == "cuda:7"


# --- RNG isolation ---------------------------------------------------------------------------
def test_seeded_rng_seeds_and_restores_the_global_state() -> None:
    torch.manual_seed(1234)
    torch.rand(3)
    before = torch.get_rng_state()
    with devices.seeded_rng(0) as seed:
        assert seed == 0
        inside = torch.rand(2)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(0)
    assert torch.equal(inside, torch.rand(2))


@pytest.mark.parametrize("seed", [3, np.int64(3)], ids=["int", "numpy-int64"])
def test_seeded_rng_seeds_as_manual_seed_without_formatting_the_callers_stack(
        seed: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.manual_seed seeds CUDA, XPU and MTIA lazily, each keeping the formatted stack of
    its caller (0.57 ms a call 60 frames deep); seeded_rng seeds the generators it forks (which
    initialises CUDA where there is one, so its seeding is direct) and none other, so a seeded
    test costs microseconds. It takes what torch.manual_seed takes (int() of it)."""
    import traceback

    def refuse(*args: object, **kwargs: object) -> list[str]:
        raise AssertionError("seeded_rng formatted the caller's stack")

    monkeypatch.setattr(traceback, "format_stack", refuse)
    with devices.seeded_rng(seed):  # type: ignore[arg-type]
        drawn = torch.rand(2)
    monkeypatch.undo()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        assert torch.equal(drawn, torch.rand(2))


def test_seeded_rng_restores_after_an_exception() -> None:
    before = torch.get_rng_state()
    with pytest.raises(RuntimeError), devices.seeded_rng(0):
        torch.rand(5)
        raise RuntimeError("boom")
    assert torch.equal(torch.get_rng_state(), before)
