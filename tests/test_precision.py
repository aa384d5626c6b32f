"""rnn_contracts.precision (tolerance table, precision flags, TF32 off) and rnn_contracts.support
(known-unsupported dtype/device pairs). GPU rows are checked as data; nothing pretends a GPU ran.
"""
from __future__ import annotations

import pytest
import torch
from packaging.version import Version

from rnn_contracts import precision, support
from rnn_contracts.precision import TOLERANCES, Tolerance

# torch.testing.assert_close's documented defaults (https://pytorch.org/docs/stable/testing.html)
ASSERT_CLOSE_DEFAULTS = {
    torch.float16: (1e-3, 1e-5),
    torch.bfloat16: (1.6e-2, 1e-5),
    torch.float32: (1.3e-6, 1e-5),
    torch.float64: (1e-7, 1e-7),
}


@pytest.mark.parametrize("dtype", list(ASSERT_CLOSE_DEFAULTS))
def test_cpu_rows_are_assert_close_defaults(dtype: torch.dtype) -> None:
    tol = precision.tolerance_for("cpu", dtype)
    assert (tol.rtol, tol.atol) == ASSERT_CLOSE_DEFAULTS[dtype]


@pytest.mark.parametrize("dtype", list(ASSERT_CLOSE_DEFAULTS))
def test_cpu_rows_behave_like_assert_close_defaults(dtype: torch.dtype) -> None:
    # Not only the numbers: at the boundary our row and assert_close's defaults agree.
    rtol, atol = ASSERT_CLOSE_DEFAULTS[dtype]
    ref = torch.tensor([1.0], dtype=torch.float64)
    inside, outside = ref + 0.5 * (atol + rtol), ref + 4 * (atol + rtol)
    kw = precision.tolerance_for("cpu", dtype).as_kwargs()
    torch.testing.assert_close(inside.to(dtype), ref.to(dtype))
    torch.testing.assert_close(inside.to(dtype), ref.to(dtype), **kw)
    for extra in ({}, kw):
        if dtype in (torch.float32, torch.float64):  # low precisions round the probe away
            with pytest.raises(AssertionError, match="Tensor-likes are not close"):
                torch.testing.assert_close(outside.to(dtype), ref.to(dtype), **extra)
    # Every dtype, float16 and bfloat16 included: the row's bound itself, from both sides, on
    # float64 values (a 10x looser row passes the 1.1x probe; a tighter one fails the 0.9x).
    bound = atol + rtol * 1.0
    torch.testing.assert_close(ref + 0.9 * bound, ref, **kw)
    with pytest.raises(AssertionError, match="Tensor-likes are not close"):
        torch.testing.assert_close(ref + 1.1 * bound, ref, **kw)


def test_every_looser_row_says_why_and_is_not_tighter_than_cpu() -> None:
    for (device_type, dtype, tf32), tol in TOLERANCES.items():
        cpu = TOLERANCES[("cpu", dtype, False)]
        assert tol.rtol >= cpu.rtol and tol.atol >= cpu.atol, (device_type, dtype, tf32)
        if (tol.rtol, tol.atol) != (cpu.rtol, cpu.atol):
            assert tol.why and "default" not in tol.why, (device_type, dtype, tf32)


def test_cuda_float32_rows() -> None:
    off = precision.tolerance_for("cuda", torch.float32, tf32=False)
    on = precision.tolerance_for("cuda:1", torch.float32, tf32=True)
    assert off.atol == 5e-5  # torch's own CPU-vs-cuDNN RNN test
    assert on.rtol == 1e-3 and on.atol == 1e-3  # TF32 ~ 1e-3 (IBM/aihwkit#766)
    assert on.rtol > off.rtol


def test_tf32_falls_back_to_its_non_tf32_row_where_it_does_not_matter() -> None:
    assert precision.tolerance_for("cpu", torch.float32, tf32=True) is TOLERANCES[("cpu", torch.float32, False)]
    assert precision.tolerance_for("cuda", torch.float16, tf32=True) is TOLERANCES[("cuda", torch.float16, False)]


def test_missing_row_names_the_key() -> None:
    with pytest.raises(KeyError, match=r"no tolerance for \(mps, float64, tf32=False\)"):
        precision.tolerance_for("mps", torch.float64)
    with pytest.raises(KeyError, match=r"\(xla, float32"):
        precision.tolerance_for("xla", torch.float32)


def test_as_kwargs() -> None:
    assert Tolerance(1.0, 2.0, "x").as_kwargs() == {"rtol": 1.0, "atol": 2.0}


# --- flags -----------------------------------------------------------------------------------
def _snapshot() -> tuple[dict[str, str], dict[str, bool]]:
    return precision.save_flags()


def test_tf32_disabled_turns_tf32_off_and_restores_every_flag() -> None:
    before = _snapshot()
    with precision.tf32_disabled():
        assert torch.backends.cuda.matmul.allow_tf32 is False
        assert torch.backends.cudnn.allow_tf32 is False
        assert not precision.tf32_active()
        assert precision.describe_precision_flags().startswith("TF32 off (")
    assert _snapshot() == before


def test_tf32_disabled_restores_a_non_default_state_and_after_an_exception() -> None:
    outer = _snapshot()
    try:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        start = _snapshot()
        assert precision.tf32_active()
        with pytest.raises(ValueError), precision.tf32_disabled():
            raise ValueError("inside")
        assert _snapshot() == start
        assert precision.describe_precision_flags().startswith("TF32 on (")
    finally:
        precision.restore_flags(outer)
    assert _snapshot() == outer


@pytest.mark.parametrize("matmul_precision", ["medium", "high", "highest"])
def test_tf32_disabled_leaves_a_users_matmul_precision_readable(matmul_precision: str) -> None:
    """A user's torch.set_float32_matmul_precision survives the kit's TF32-off block: before
    restore_flags set it back last, "medium" left torch 2.9+ in its "mixed legacy and new API"
    state, where torch.get_float32_matmul_precision() (and precision_flags) raised."""
    outer = precision.save_flags()  # other tests may leave the process "mixed": not readable
    try:
        torch.set_float32_matmul_precision(matmul_precision)  # a consistent start, as a user's
        before = precision.precision_flags()
        with precision.tf32_disabled():
            assert not precision.tf32_active()
        assert torch.get_float32_matmul_precision() == matmul_precision
        assert precision.precision_flags() == before
    finally:
        precision.restore_flags(outer)


def test_precision_flags_names_what_a_failure_message_needs() -> None:
    text = precision.describe_precision_flags()
    for name in ("cuda.matmul.allow_tf32=", "cudnn.allow_tf32=", "float32_matmul_precision=",
                 "cudnn.deterministic=", "deterministic_algorithms="):
        assert name in text
    assert "\n" not in text


def test_describe_precision_flags_from_given_flags() -> None:
    flags = {"cuda.matmul.allow_tf32": "off", "cudnn.allow_tf32": "mixed (RuntimeError)",
             "cudnn.rnn.fp32_precision": "tf32"}
    assert precision.describe_precision_flags(flags) == (
        "TF32 on (cuda.matmul.allow_tf32=off, cudnn.allow_tf32=mixed (RuntimeError), "
        "cudnn.rnn.fp32_precision=tf32)"
    )


# --- support ---------------------------------------------------------------------------------
@pytest.mark.parametrize("row", support.UNSUPPORTED, ids=lambda r: f"{r.device_type}-{r.dtype}")
def test_every_row_is_found_by_its_own_key(row: support.Unsupported) -> None:
    inside = next(v for v in ("1.13.0", "2.0.0", "2.2.1", "2.4.0", "2.13.0") if row.torch.contains(v))
    for mode in row.modes:
        reason = support.unsupported_reason(row.device_type, row.dtype, mode, inside)
        assert reason is not None and row.reason in reason and row.source in reason
    for mode in support.MODES - row.modes:
        assert support.unsupported_reason(row.device_type, row.dtype, mode, inside) is None


def test_rows_outside_their_torch_range_do_not_apply() -> None:
    assert support.unsupported_reason("cuda:0", torch.bfloat16, "LSTM", "2.2.1") is not None
    assert support.unsupported_reason("cuda:0", torch.bfloat16, "LSTM", "2.3.0") is None
    assert support.unsupported_reason("cuda", torch.bfloat16, "RNN_TANH", "2.2.1") is None


def test_mps_float64_is_unsupported_in_every_mode() -> None:
    for mode in support.MODES:
        assert "float64" in (support.unsupported_reason("mps", torch.float64, mode) or "")


def test_no_row_applies_to_cpu_on_this_torch() -> None:
    # float16 and bfloat16 nn.RNN/LSTM/GRU run on CPU with torch 2.13 (checked below for real).
    if Version(torch.__version__) < Version("2.13"):
        pytest.skip("the table's CPU claim is about torch >= 2.13")
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        for mode in support.MODES:
            assert support.unsupported_reason("cpu", dtype, mode) is None


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("cls", [torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU])
def test_low_precision_recurrent_layers_do_run_on_this_cpu(cls: type, dtype: torch.dtype) -> None:
    module = cls(4, 2).to(dtype)
    out, _ = module(torch.zeros(3, 5, 4, dtype=dtype))
    assert out.dtype == dtype and out.shape == (3, 5, 2)


def test_unknown_mode_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown mode 'RNN'"):
        support.unsupported_reason("cpu", torch.float32, "RNN")
