"""Every tolerance row, from both sides: a deviation just inside its bound passes, one just
outside fails, at a golden of 0 (atol alone) and of 1000 (rtol dominates).

tests/test_precision.py checks the table's shape and reasons; a row made 10x looser (or tighter)
kept it green. The rows are pinned here against the numbers the table's comments cite (torch's
assert_close defaults, torch's CPU-vs-cuDNN test, one ulp at 1.0 for half-precision probes), and
each is exercised through torch.testing.assert_close and through verify_rnn's own comparison
(Context.assert_close) for the run-vs-run rows. Kills: any float constant of
rnn_contracts.precision.TOLERANCES made 10x larger (mutation/README.md).
"""
from __future__ import annotations

import pytest
import torch

from rnn_contracts.precision import RUN_VS_RUN, TOLERANCES, probe_tolerance, tf32_active, tolerance_for
from rnn_contracts.probes.base import Context, ProbeFailure
from rnn_contracts.spec import RNNSpec

F16, BF16, F32, F64 = torch.float16, torch.bfloat16, torch.float32, torch.float64
#: (device type, dtype, tf32) -> (rtol, atol), written out independently of the module.
EXPECTED = {
    ("cpu", F16, False): (1e-3, 1e-5), ("cpu", BF16, False): (1.6e-2, 1e-5),
    ("cpu", F32, False): (1.3e-6, 1e-5), ("cpu", F64, False): (1e-7, 1e-7),
    ("cuda", F32, False): (1e-5, 5e-5), ("cuda", F32, True): (1e-3, 1e-3),
    ("cuda", F64, False): (1e-7, 5e-5), ("cuda", F16, False): (1e-2, 1e-3),
    ("cuda", BF16, False): (1.6e-2, 1e-2),
    ("mps", F32, False): (1e-5, 1e-5), ("mps", F16, False): (1e-2, 1e-3), ("mps", BF16, False): (1.6e-2, 1e-2),
    (RUN_VS_RUN, F16, False): (1e-3, 1e-3), (RUN_VS_RUN, BF16, False): (1.6e-2, 1e-2),
    (RUN_VS_RUN, F32, False): (1.3e-6, 1e-5), (RUN_VS_RUN, F64, False): (1e-7, 1e-7),
}
ROWS = [pytest.param(key, id=f"{key[0]}-{str(key[1]).removeprefix('torch.')}-tf32={key[2]}") for key in EXPECTED]
#: golden values: 0 (the bound is atol) and 1000 (the bound is mostly rtol * 1000)
GOLDENS = [0.0, 1000.0]


def test_the_table_has_exactly_the_expected_rows() -> None:
    assert set(TOLERANCES) == set(EXPECTED)


@pytest.mark.parametrize("key", ROWS)
def test_row_values(key: tuple[str, torch.dtype, bool]) -> None:
    tol = tolerance_for(*key)
    assert (tol.rtol, tol.atol) == EXPECTED[key]


@pytest.mark.parametrize("golden", GOLDENS)
@pytest.mark.parametrize("key", ROWS)
def test_deviation_inside_passes_and_outside_fails(key: tuple[str, torch.dtype, bool], golden: float) -> None:
    rtol, atol = EXPECTED[key]
    kwargs = tolerance_for(*key).as_kwargs()
    bound = atol + rtol * golden
    want = torch.tensor([golden], dtype=F64)
    torch.testing.assert_close(want + 0.9 * bound, want, **kwargs)  # just inside
    with pytest.raises(AssertionError, match="Tensor-likes are not close"):
        torch.testing.assert_close(want + 1.1 * bound, want, **kwargs)  # just outside


@pytest.mark.parametrize("golden", GOLDENS)
@pytest.mark.parametrize("dtype", [F16, BF16, F32, F64], ids=str)
def test_probe_comparison_bound_in_each_dtype(dtype: torch.dtype, golden: float) -> None:
    """verify_rnn's own comparison (Context.assert_close) in each dtype, from both sides."""
    rtol, atol = EXPECTED[(RUN_VS_RUN, dtype, False)]
    assert (probe_tolerance(dtype).rtol, probe_tolerance(dtype).atol) == (rtol, atol)
    ctx = Context(torch.nn.RNN(4, 6), RNNSpec(mode="RNN", input_size=4, hidden_size=6), torch.device("cpu"), dtype)
    bound = atol + rtol * golden
    want = torch.full((2, 3), golden, dtype=F64)
    ctx.assert_close("output", want + 0.9 * bound, want, "inside")
    with pytest.raises(ProbeFailure, match=r"^\[?.*outside: output\[0, 0\] expected"):
        ctx.assert_close("output", want + 1.1 * bound, want, "outside")


def test_unknown_dtype_falls_back_to_float32_probe_row() -> None:
    assert probe_tolerance(torch.complex64) == TOLERANCES[(RUN_VS_RUN, F32, False)]


@pytest.fixture
def tf32_flags():
    backends = torch.backends
    saved = backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32
    rnn = getattr(backends.cudnn, "rnn", None)
    saved_rnn = getattr(rnn, "fp32_precision", None)
    yield backends
    if saved_rnn is not None:
        rnn.fp32_precision = saved_rnn
    backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32 = saved


def _cudnn_off(backends) -> None:
    rnn = getattr(backends.cudnn, "rnn", None)
    if rnn is not None and hasattr(rnn, "fp32_precision"):
        rnn.fp32_precision = "ieee"
    else:
        backends.cudnn.allow_tf32 = False


# kills: tf32_active ignoring torch.backends.cuda.matmul.allow_tf32
def test_tf32_active_follows_the_matmul_flag_alone(tf32_flags) -> None:
    _cudnn_off(tf32_flags)
    tf32_flags.cuda.matmul.allow_tf32 = False
    assert tf32_active() is False
    tf32_flags.cuda.matmul.allow_tf32 = True
    assert tf32_active() is True
