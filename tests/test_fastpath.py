"""rnn_contracts.fastpath against the engine: a fast "yes" is always the engine's "yes".

The fast path may only pass what the engine (jaxtyping + typeguard / beartype) would pass: for
random specs and random calls, right and wrong in every field the contract reads, whenever the
fast path says a call conforms the engine finds no violation. And it must say so for real calls
of torch's own layers, or the speed it buys is not there: checked() and check_forward never
consult the engine on a conforming call (shown with an engine that raises when asked).
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnn_contracts import ContractViolation, RNNSpec, check_forward, checked, engine, fastpath
from rnn_contracts.checks import call_violations, inputs_violations

DTYPES = (torch.float32, torch.float64, torch.float16, torch.int64)


@st.composite
def specs(draw: st.DrawFn) -> RNNSpec:
    mode = draw(st.sampled_from(["RNN", "GRU", "LSTM"]))
    hidden = draw(st.integers(1, 4))
    proj = draw(st.integers(0, hidden - 1)) if mode == "LSTM" else 0
    return RNNSpec(mode=mode, input_size=draw(st.integers(1, 4)), hidden_size=hidden,
                   num_layers=draw(st.integers(1, 2)), bidirectional=draw(st.booleans()),
                   batch_first=draw(st.booleans()), proj_size=proj, unbatched=draw(st.booleans()),
                   returns_states=draw(st.booleans()) if mode != "LSTM" else True)


def _maybe_wrong(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape``, or (sometimes) one axis off by one, one axis dropped, or one axis added."""
    how = draw(st.sampled_from(["right"] * 4 + ["off", "drop", "add"]))
    if how == "right" or not shape:
        return shape
    i = draw(st.integers(0, len(shape) - 1))
    if how == "off":
        return shape[:i] + (shape[i] + draw(st.sampled_from([-1, 1])),) + shape[i + 1:]
    if how == "drop":
        return shape[:i] + shape[i + 1:]
    return shape[:i] + (1,) + shape[i:]


def _tensor(draw: st.DrawFn, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    shape = tuple(max(n, 0) for n in _maybe_wrong(draw, shape))
    wrong_dtype = draw(st.sampled_from([None] * 5 + list(DTYPES)))
    return torch.zeros(shape, dtype=wrong_dtype or dtype)


@st.composite
def calls(draw: st.DrawFn):
    spec = draw(specs())
    batch, seq = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    unbatched = spec.unbatched and draw(st.booleans())
    b = None if unbatched else batch
    dtype = draw(st.sampled_from(DTYPES[:3]))
    x = _tensor(draw, spec.input_shape(b, seq).sizes, dtype)
    h = _tensor(draw, spec.state_shape(b, "h").sizes, dtype)
    state = (h, _tensor(draw, spec.state_shape(b, "c").sizes, dtype)) if spec.has_cell else h
    if spec.has_cell and draw(st.booleans()):
        state = draw(st.sampled_from([h, [h, state[1]], (h,)]))  # the wrong structures
    hx = draw(st.sampled_from([None, state]))
    output = _tensor(draw, spec.output_shape(b, seq).sizes, dtype)
    result = draw(st.sampled_from([(output, state), (output, state), [output, state], output,
                                   (output, state, state)]))
    return spec, x, hx, result


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call=calls())
def test_a_fast_pass_is_an_engine_pass(call) -> None:
    spec, x, hx, result = call
    facts = fastpath.read_inputs(spec, x, hx)
    if facts is not None:
        assert inputs_violations(spec, x, hx) == []
        if fastpath.result_ok(facts, x, result):
            assert call_violations(spec, x, hx, result) == []


LAYERS = [
    pytest.param(lambda: torch.nn.RNN(4, 3), (5, 2, 4), id="rnn"),
    pytest.param(lambda: torch.nn.GRU(4, 3, num_layers=2, bidirectional=True), (5, 2, 4), id="gru-2l-bi"),
    pytest.param(lambda: torch.nn.LSTM(4, 3, proj_size=2, batch_first=True), (2, 5, 4), id="lstm-proj-bf"),
    pytest.param(lambda: torch.nn.LSTM(4, 3), (5, 4), id="lstm-unbatched"),
]


@pytest.fixture
def engine_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    def asked(value, alias):
        raise AssertionError("the engine was consulted on a conforming call")

    monkeypatch.setattr(engine, "accepts", asked)


@pytest.mark.parametrize(("make", "shape"), LAYERS)
def test_conforming_calls_of_torch_layers_never_reach_the_engine(make, shape, engine_refuses) -> None:
    torch.manual_seed(0)
    module = make()
    x = torch.randn(shape)
    check_forward(module, x)
    hx = module(x)[1]
    check_forward(module, x, hx)
    checked(module)(x)


def test_a_violation_still_goes_to_the_engine(engine_refuses) -> None:
    """The fast path passes nothing it does not recognise: a wrong input reaches the engine
    (here, the refusing one) instead of passing."""
    with pytest.raises(AssertionError, match="the engine was consulted"):
        check_forward(torch.nn.RNN(4, 3), torch.randn(5, 2, 3))


class HoldsNone(torch.nn.Module):
    """A GRU whose first registered parameter is None (an optional parameter switched off, as
    nn.Linear(bias=False) registers it) and whose weights live in a submodule."""

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.register_parameter("scale", None)
        self.gru = torch.nn.GRU(4, 3).to(dtype)

    def forward(self, x, hx=None):
        return self.gru(x, hx)


def test_the_first_float_parameter_skips_none_and_looks_into_submodules() -> None:
    torch.manual_seed(0)
    module = HoldsNone()
    assert fastpath.first_float_parameter(module) is module.gru.weight_ih_l0
    check_forward(module, torch.randn(5, 2, 4), spec=RNNSpec("GRU", 4, 3))


def test_a_submodules_parameters_of_another_dtype_are_a_violation_before_the_call() -> None:
    """The module's own parameters are none: the dtype the input must have is its submodule's."""
    torch.manual_seed(0)
    module = HoldsNone(torch.float64)
    with pytest.raises(ContractViolation) as caught:
        check_forward(module, torch.randn(5, 2, 4), spec=RNNSpec("GRU", 4, 3))
    assert "input: dtype torch.float32, expected torch.float64 (the module's parameters)" in str(caught.value)
