"""The shape suite: torch's own recurrent layers honour the contract on every configuration.

device x mode (RNN, LSTM, LSTM with proj_size, GRU) x layout (seq-first, batch-first, unbatched)
x bidirectional x num_layers x with/without h_0 x dtype, plus degenerate batch 1 / seq 1 cases
(tests/cases.py). Each case runs rnn_contracts.check_forward AND compares every returned shape with
the one cases.py wrote down by torch-doc arithmetic, so the suite does not trust RNNSpec to be
right about itself. Dtype/device pairs torch does not support are strict xfails, never skips.
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import rnn_contracts
from rnn_contracts import ContractViolation, RNNSpec
from rnn_contracts.support import unsupported_reason

try:  # tests/ is on sys.path under pytest's default "prepend" import mode
    import cases
except ImportError:  # tests/ became a package
    from tests import cases


@pytest.fixture(scope="module", autouse=True)
def _one_intra_op_thread():
    """Run this module's tiny layers on one intra-op thread, restoring the count afterwards.

    Under ``-n 2`` on 2 cores each worker's default thread pool oversubscribes the CPU, and the
    float16 / bfloat16 kernels then spin: measured 31 s for this module instead of 5 s.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _dtype_id(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def assert_doc_shapes(case: cases.ShapeCase, result, x: torch.Tensor) -> None:
    """Every returned tensor has the case table's shape and the input's dtype and device."""
    output, state = result
    got = {"output": output}
    if case.mode == "LSTM":
        got["h_n"], got["c_n"] = state
    else:
        got["h_n"] = state
    want = {"output": case.output_shape, "h_n": case.h_shape, "c_n": case.c_shape}
    for name, tensor in got.items():
        assert tuple(tensor.shape) == want[name], f"{name} {tuple(tensor.shape)} != {want[name]} [{case.id}]"
        assert tensor.dtype == x.dtype, f"{name} dtype {tensor.dtype} != input dtype {x.dtype}"
        assert tensor.device == x.device, f"{name} device {tensor.device} != input device {x.device}"


def test_main_sizes_are_pairwise_distinct():
    sizes = cases.main_sizes()
    values = list(sizes.values())
    assert len(set(values)) == len(values), f"colliding sizes: {sizes}"
    assert cases.PROJ < cases.HIDDEN  # torch requires proj_size < hidden_size


def test_table_covers_the_matrix():
    """Every axis value of the issue's matrix occurs in the table, and no case id repeats."""
    ids = [case.id for case in cases.ALL_CASES]
    assert len(ids) == len(set(ids))
    main = cases.MAIN_CASES
    assert {(c.mode, c.proj_size > 0) for c in main} == {
        ("RNN", False), ("LSTM", False), ("LSTM", True), ("GRU", False)
    }
    assert {c.num_layers for c in main} == {1, 2, 3}
    for axis in ("bidirectional", "batch_first", "with_h0"):
        assert {getattr(c, axis) for c in main} == {False, True}
    assert {c.batch for c in main} == {cases.BATCH, None}
    assert len(main) == 4 * 3 * 2 * 3 * 2
    degenerate = {(c.batch, c.seq) for c in cases.DEGENERATE_CASES}
    assert degenerate == {(1, cases.SEQ), (cases.BATCH, 1), (1, 1)}


@pytest.mark.parametrize("dtype", cases.DTYPES, ids=_dtype_id)
@pytest.mark.parametrize("case", [c.param() for c in cases.ALL_CASES])
def test_torch_layer_meets_contract(case, dtype, device, rnn_seeded, request):
    module = case.build()  # on the CPU under the seed: CPU and CUDA generators differ
    reason = unsupported_reason(device, dtype, module.mode)
    if reason is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    module = module.to(device=device, dtype=dtype)
    x, hx = cases.draw_call(case, dtype, device)
    assert tuple(x.shape) == case.input_shape
    result = rnn_contracts.check_forward(module, x, hx)
    assert_doc_shapes(case, result, x)


# -- property-based: sizes and configurations drawn by hypothesis -------------------------------
@st.composite
def shape_cases(draw) -> cases.ShapeCase:
    mode = draw(st.sampled_from(("RNN", "LSTM", "GRU")))
    hidden = draw(st.integers(1, 6))
    proj = draw(st.integers(0, hidden - 1)) if mode == "LSTM" else 0
    return cases.ShapeCase(
        mode=mode,
        nonlinearity=draw(st.sampled_from(("tanh", "relu"))) if mode == "RNN" else "tanh",
        num_layers=draw(st.integers(1, 3)),
        bidirectional=draw(st.booleans()),
        batch_first=draw(st.booleans()),
        proj_size=proj,
        batch=draw(st.one_of(st.none(), st.integers(1, 4))),
        seq=draw(st.integers(1, 5)),
        with_h0=draw(st.booleans()),
        input_size=draw(st.integers(1, 5)),
        hidden_size=hidden,
    )


PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same examples on every run and machine
    database=None,
    # `device` and `seeded` are constant across examples (a device string, the seed 0 once).
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


class TransposedHn(torch.nn.Module):
    """Wraps a torch layer and returns h_n with its first two axes swapped (a deliberate bug)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x, hx=None):
        output, state = self.inner(x, hx)
        if isinstance(state, tuple):
            return output, (state[0].transpose(0, 1), state[1])
        return output, state.transpose(0, 1)


# proj_size cases fall back from oneDNN in some dtypes; torch's notice, see cases.ONEDNN_PROJ_FILTER.
@cases.ONEDNN_PROJ_FILTER
@PROPERTY_SETTINGS
@given(case=shape_cases())
def test_property_torch_layers_pass(case, device, rnn_seeded):
    module = case.build().to(device)
    x, hx = cases.draw_call(case, torch.float32, device)
    result = rnn_contracts.check_forward(module, x, hx)
    assert_doc_shapes(case, result, x)


@cases.ONEDNN_PROJ_FILTER
@PROPERTY_SETTINGS
@given(case=shape_cases())
def test_property_transposed_h_n_is_rejected(case, device, rnn_seeded):
    transposed = (case.h_shape[1], case.h_shape[0], *case.h_shape[2:])
    assume(transposed != case.h_shape)  # e.g. batch == num_layers * D: no shape can tell
    inner = case.build().to(device)
    x, hx = cases.draw_call(case, torch.float32, device)
    with pytest.raises(ContractViolation, match=r"(?m)^h_n: expected "):
        rnn_contracts.check_forward(TransposedHn(inner), x, hx, spec=RNNSpec.from_module(inner))
