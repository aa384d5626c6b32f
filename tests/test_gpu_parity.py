"""CPU / CUDA parity for torch's RNN, LSTM and GRU over the shape suite's configurations.

For every case of tests/cases.py (mode x layout x bidirectional x layers x proj x h_0, plus the
degenerate batch 1 / seq 1 cases) and every dtype (float64, float32 with TF32 off, float16,
bfloat16; pairs torch does not support on CUDA are strict xfails with rnn_contracts.support's reason):

* the module is built on the CPU under seed 0 and moved (CPU and CUDA generators differ), so both
  sides hold the same weights, rounded once to the dtype; the inputs are drawn on the CPU from a
  local generator and rounded to the dtype the same way;
* the reference is the CPU run in float64 of exactly those rounded weights and inputs, so the
  comparison measures what the CUDA kernels add, within ``tolerance_for("cuda", dtype)``.
  (Measured here on CPU: float16 / bfloat16 CPU runs stay within 84 % of that row against this
  reference, while two low-precision runs compared with each other would add both errors.)
* the CUDA call goes through ``rnn_contracts.check_forward`` under
  ``torch.cuda.set_sync_debug_mode("error")``: a contract check that synchronises fails;
* CUDA items carry the plugin's marks: ``cuda`` and the "weights are not part of single
  contiguous chunk of memory" warning as an error.

Without a CUDA device under test every CUDA test function collects ONE item, skipped with the
reason (never an early return, which would report PASSED). The parity body itself also runs
CPU-vs-CPU (float32 against the float64 reference, CPU tolerance), with a negative control.
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

import rnn_contracts
import pytest_rnn_contracts.plugin
from rnn_contracts import devices
from pytest_rnn_contracts.plugin import CONTIGUOUS_WARNING
from rnn_contracts.precision import Tolerance, run_context, tf32_active, tolerance_for
from rnn_contracts.support import unsupported_reason

try:  # tests/ is on sys.path under pytest's default "prepend" import mode
    import cases
except ImportError:  # tests/ became a package
    from tests import cases

pytest_plugins = ["pytester"]

DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
#: torch's text (aten/src/ATen/native/cudnn/RNN.cpp, WEIGHT_FORMAT_WARN).
TORCH_WEIGHT_FORMAT_WARN = (
    "RNN module weights are not part of single contiguous chunk of memory. This means they need "
    "to be compacted at every call, possibly greatly increasing memory usage. To compact weights "
    "again call flatten_parameters()."
)
CONTIGUOUS_FILTER = pytest.mark.filterwarnings(CONTIGUOUS_WARNING)
CUDA_MARKS = [pytest.mark.cuda, CONTIGUOUS_FILTER]
#: cuDNN checks hx.is_contiguous() (TORCH_CHECK "rnn: hx is not contiguous" in
#: aten/src/ATen/native/cudnn/RNN.cpp); torch.nn.RNNBase.forward passes h_0 through unchanged.
NONCONTIGUOUS_HX_ON_CUDA = (
    "cuDNN rejects a non-contiguous h_0: RuntimeError 'rnn: hx is not contiguous' "
    "(aten/src/ATen/native/cudnn/RNN.cpp; fastai/fastai2#141, harvardnlp/namedtensor#58); "
    "the CPU path accepts it"
)


def _dtype_id(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def torch_mode(case: cases.ShapeCase) -> str:
    """``nn.RNNBase.mode`` of the case's layer: RNN_TANH, RNN_RELU, LSTM or GRU."""
    return f"RNN_{case.nonlinearity.upper()}" if case.mode == "RNN" else case.mode


# --------------------------------------------------------------------------------------------
# the parity body (device-generic)
# --------------------------------------------------------------------------------------------
def moved(value: Any, **to: Any) -> Any:
    """A tensor, a tuple of tensors or None, moved with ``Tensor.to(**to)``."""
    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(t.to(**to) for t in value)
    return value.to(**to)


def noncontiguous(hx: Any) -> Any:
    """The same values laid out (batch, stacks, H) in memory, viewed as (stacks, batch, H)."""
    if isinstance(hx, tuple):
        return tuple(noncontiguous(t) for t in hx)
    return hx.transpose(0, 1).contiguous().transpose(0, 1)


def named_results(result: Any) -> dict[str, torch.Tensor]:
    """``(output, h_n)`` or ``(output, (h_n, c_n))`` by name."""
    output, state = result
    if isinstance(state, tuple):
        return {"output": output, "h_n": state[0], "c_n": state[1]}
    return {"output": output, "h_n": state}


def parity_mismatch(name: str, actual: torch.Tensor, expected: torch.Tensor,
                    tol: Tolerance) -> str | None:
    """None when ``actual`` is within ``tol`` of ``expected`` everywhere, else one line of
    evidence: the worst position, both values, the difference and the allowance."""
    if tuple(actual.shape) != tuple(expected.shape):
        return f"{name} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
    a = actual.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    excess = (a - e).abs() - (tol.atol + tol.rtol * e.abs())
    excess = torch.where(torch.isnan(a) | torch.isnan(e), torch.full_like(excess, float("inf")), excess)
    bad = int((excess > 0).sum())
    if bad == 0:
        return None
    pos = tuple(int(i) for i in torch.unravel_index(torch.argmax(excess), excess.shape))
    where = ", ".join(map(str, pos))
    return (f"{name}[{where}] is {float(a[pos]):.6g}, expected {float(e[pos]):.6g} "
            f"(|difference| {float((a[pos] - e[pos]).abs()):.3g} > atol {tol.atol:g} + rtol "
            f"{tol.rtol:g} * |expected|); {bad} of {a.numel()} elements outside the tolerance")


def assert_parity(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                  tol: Tolerance, label: str, device: str, dtype: torch.dtype) -> None:
    """Raise AssertionError listing every returned tensor outside the tolerance, then the
    tolerance's reason and the run's context (torch, GPU model, dtype, precision flags, cuDNN)."""
    problems = [p for name in expected
                if (p := parity_mismatch(name, actual[name], expected[name], tol)) is not None]
    if problems:
        raise AssertionError(f"{label}:\n" + "\n".join(problems) + f"\ntolerance: {tol.why}"
                             f"\nrun: {run_context(device, dtype)}")


@contextlib.contextmanager
def sync_forbidden(device: str) -> Iterator[None]:
    """On CUDA, ``torch.cuda.set_sync_debug_mode("error")`` for the block (restored after):
    any synchronising call raises. Nothing to forbid elsewhere."""
    if not device.startswith("cuda"):
        yield
        return
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(previous)


def check_parity(rnn_make_module: Callable[..., torch.nn.Module], case: cases.ShapeCase,
                 dtype: torch.dtype, device: str, tol: Tolerance) -> None:
    """The module of ``case`` in ``dtype`` on ``device``, called through check_forward without
    synchronising, agrees with the CPU float64 run of the same rounded weights and inputs."""
    module = rnn_make_module(case.build, device=device, dtype=dtype).eval()
    reference = rnn_make_module(case.build, device="cpu", dtype=dtype).double().eval()
    x, hx = cases.draw_call(case, dtype)
    with torch.no_grad():
        expected = named_results(reference(x.double(), moved(hx, dtype=torch.float64)))
        x_dev, hx_dev = x.to(device), moved(hx, device=device)
        with sync_forbidden(device):
            result = rnn_contracts.check_forward(module, x_dev, hx_dev)
    label = f"{case.id} {_dtype_id(dtype)} on {device} vs the CPU float64 reference"
    assert_parity(named_results(result), expected, tol, label, device, dtype)


# --------------------------------------------------------------------------------------------
# CUDA-only parametrization: one skipped item per function when no CUDA device is under test
# --------------------------------------------------------------------------------------------
_CUDA_KEY = pytest.StashKey[tuple[list[str], str]]()


def cuda_under_test(config: pytest.Config) -> tuple[list[str], str]:
    """The cuda:N devices the plugin's ``device`` fixture offers in this run, and why none
    when empty. Same inputs as the plugin's selection: --device, RNN_CONTRACTS_DEVICES and
    discovery, as the plugin resolved them."""
    if _CUDA_KEY not in config.stash:
        available = pytest_rnn_contracts.plugin.available_devices(config)
        selected = pytest_rnn_contracts.plugin.selected_devices(config)
        cudas = [d for d in selected if d.startswith("cuda:")]
        if any(d.startswith("cuda:") for d in available):
            why = f"CUDA devices are excluded by the device selection ({', '.join(selected)})"
        else:
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
            why = f"no CUDA device is visible (torch {torch.__version__}, {build})"
        config.stash[_CUDA_KEY] = (cudas, why)
    return config.stash[_CUDA_KEY]


def on_cuda(argnames: str, params: list[Any]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Parametrize a test taking ``cuda_device`` over ``argnames``/``params`` and every CUDA
    device under test; see pytest_generate_tests."""
    def mark(fn: Callable[..., None]) -> Callable[..., None]:
        fn.cuda_axes = (argnames, params)  # type: ignore[attr-defined]
        return fn
    return mark


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cuda_device" not in metafunc.fixturenames:
        return
    argnames, params = metafunc.function.cuda_axes
    cudas, why = cuda_under_test(metafunc.config)
    if not cudas:
        names = ["cuda_device", *argnames.split(",")]
        skip = pytest.mark.skip(reason=f"CUDA test: {why}")
        metafunc.parametrize(names, [pytest.param(*[None] * len(names), id="no-cuda", marks=skip)])
        return
    metafunc.parametrize("cuda_device", [pytest.param(d, id=d, marks=CUDA_MARKS) for d in cudas])
    metafunc.parametrize(argnames, params)


def _parity_param(case: cases.ShapeCase, dtype: torch.dtype) -> Any:
    marks = list(case.param().marks)
    reason = unsupported_reason("cuda", dtype, torch_mode(case))
    if reason is not None:
        marks.append(pytest.mark.xfail(strict=True, raises=RuntimeError, reason=reason))
    return pytest.param(case, dtype, id=f"{case.id}-{_dtype_id(dtype)}", marks=marks)


PARITY_PARAMS = [_parity_param(case, dtype) for case in cases.ALL_CASES for dtype in DTYPES]
#: One layer per mode where h_0 really is non-contiguous: num_layers * D > 1 and batch > 1.
NONCONTIGUOUS_CASES = [
    cases.ShapeCase(mode=mode, nonlinearity="tanh", num_layers=2, bidirectional=True,
                    batch_first=False, proj_size=0, batch=cases.BATCH, seq=cases.SEQ, with_h0=True)
    for mode in ("RNN", "LSTM", "GRU")
]


# --------------------------------------------------------------------------------------------
# CUDA tests
# --------------------------------------------------------------------------------------------
@on_cuda("case,dtype", PARITY_PARAMS)
def test_cpu_cuda_parity(cuda_device: str, case: cases.ShapeCase, dtype: torch.dtype,
                         rnn_make_module: Callable[..., torch.nn.Module], rnn_tf32_off: None) -> None:
    assert not tf32_active(), "rnn_tf32_off left TF32 on: float32 would be compared at TF32 precision"
    check_parity(rnn_make_module, case, dtype, cuda_device, tolerance_for("cuda", dtype, tf32=False))


@on_cuda("case", [pytest.param(
    c, id=c.mode, marks=pytest.mark.xfail(strict=True, raises=RuntimeError,
                                          reason=NONCONTIGUOUS_HX_ON_CUDA))
    for c in NONCONTIGUOUS_CASES])
def test_noncontiguous_h0_on_cuda(cuda_device: str, case: cases.ShapeCase,
                                  rnn_make_module: Callable[..., torch.nn.Module], rnn_tf32_off: None) -> None:
    """A non-contiguous h_0 (and c_0) on CUDA gives the result of its contiguous copy, as on
    the CPU (the initial_state contract of verify_rnn)."""
    module = rnn_make_module(case.build, device=cuda_device).eval()
    x, hx = cases.draw_call(case, torch.float32)
    x, hx = x.to(cuda_device), moved(hx, device=cuda_device)
    strided = noncontiguous(hx)
    assert not (strided[0] if isinstance(strided, tuple) else strided).is_contiguous()
    with torch.no_grad():
        expected = named_results(module(x, hx))
        actual = named_results(module(x, strided))
    assert_parity(actual, expected, tolerance_for("cuda", torch.float32),
                  f"{case.id} on {cuda_device}: non-contiguous h_0 vs its contiguous copy",
                  cuda_device, torch.float32)


# --------------------------------------------------------------------------------------------
# CPU: the same body, its negative control, the messages, the skip and the warning filter
# --------------------------------------------------------------------------------------------
#: A CPU subset: every mode (incl. proj_size) x layout x direction, two layers, with h_0.
CPU_CASES = [c.param() for c in cases.MAIN_CASES if c.num_layers == 2 and c.with_h0]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread (restored after): tiny LSTMs spin on 2 threads under xdist."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("case", CPU_CASES)
def test_parity_body_cpu_float32(case: cases.ShapeCase, rnn_make_module: Callable[..., torch.nn.Module],
                                 one_thread: None) -> None:
    check_parity(rnn_make_module, case, torch.float32, "cpu", tolerance_for("cpu", torch.float32))


def test_parity_body_catches_a_changed_weight(rnn_make_module: Callable[..., torch.nn.Module],
                                              one_thread: None) -> None:
    case = NONCONTIGUOUS_CASES[1]  # LSTM, bidirectional, 2 layers

    built: list[torch.nn.Module] = []

    def nudged(*args: Any, device: str, dtype: torch.dtype) -> torch.nn.Module:
        module = rnn_make_module(*args, device=device, dtype=dtype)
        if not built:  # check_parity builds the module under test first, then the reference
            with torch.no_grad():
                module.weight_hh_l1_reverse[0, 0] += 0.05
        built.append(module)
        return module

    with pytest.raises(AssertionError) as excinfo:
        check_parity(nudged, case, torch.float32, "cpu", tolerance_for("cpu", torch.float32))
    lines = str(excinfo.value).splitlines()
    assert lines[0] == "LSTM-sf-bi-L2-h0 float32 on cpu vs the CPU float64 reference:"
    assert [line.split("[")[0] for line in lines[1:-2]] == ["output", "h_n", "c_n"]
    assert lines[-2] == "tolerance: torch.testing.assert_close default for this dtype"
    assert lines[-1].startswith(f"run: torch {torch.__version__}, device cpu")
    for part in ("dtype float32, TF32 ", "cudnn.allow_tf32=", ", cuDNN "):  # flags, precision, cuDNN
        assert part in lines[-1]


def test_parity_mismatch_message_is_pinned() -> None:
    tol = Tolerance(rtol=0.1, atol=0.01, why="test row")
    expected = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert parity_mismatch("h_n", expected + 0.1, expected, tol) is None
    actual = expected.clone()
    actual[1, 0], actual[0, 1] = 3.5, 2.25
    assert parity_mismatch("h_n", actual, expected, tol) == (
        "h_n[1, 0] is 3.5, expected 3 (|difference| 0.5 > atol 0.01 + rtol 0.1 * |expected|); "
        "2 of 4 elements outside the tolerance")
    actual[1, 1] = float("nan")
    assert parity_mismatch("h_n", actual, expected, tol) == (
        "h_n[1, 1] is nan, expected 4 (|difference| nan > atol 0.01 + rtol 0.1 * |expected|); "
        "3 of 4 elements outside the tolerance")
    assert parity_mismatch("output", expected[0], expected, tol) == (
        "output has shape (2,), expected (2, 2)")


@CONTIGUOUS_FILTER
def test_cuda_marks_make_torchs_flatten_warning_an_error() -> None:
    """The filter every CUDA item carries matches torch's exact warning text."""
    with pytest.raises(UserWarning, match="call flatten_parameters"):
        warnings.warn(TORCH_WEIGHT_FORMAT_WARN, UserWarning, stacklevel=1)


def test_without_cuda_each_cuda_test_is_one_skipped_item(pytester: pytest.Pytester) -> None:
    """With no CUDA device under test (--device cpu excludes any), each CUDA test function
    collects one item, skipped with the reason, and nothing passes."""
    result = pytester.runpytest(__file__, "--rnn-device", "cpu", "-k", "cuda_parity or h0_on_cuda",
                                "-p", "no:randomly", "-p", "no:benchmark", "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED [[]2[]] *test_gpu_parity.py: CUDA test: *"])


def test_with_a_cuda_device_every_config_is_an_item_marked_cuda(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Collection only (nothing runs on a device): were discovery to report cuda:0, the CUDA
    tests would parametrize over it, every item carrying the ``cuda`` marker."""
    monkeypatch.setattr(devices, "discover_devices", lambda: ["cpu", "cuda:0"])
    result = pytester.runpytest(__file__, "--collect-only", "-q", "-m", "cuda", "-p", "no:randomly",
                                "-p", "no:benchmark", "-p", "no:cacheprovider")
    ids = [line.split("::", 1)[1] for line in result.outlines if "::" in line]
    assert len(ids) == len(PARITY_PARAMS) + len(NONCONTIGUOUS_CASES)
    assert ids[0] == "test_cpu_cuda_parity[cuda:0-RNN-sf-uni-L1-noh0-float64]"
    assert ids[-1] == "test_noncontiguous_h0_on_cuda[cuda:0-GRU]"
