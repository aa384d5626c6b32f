"""The probes' shared machinery (rnn_contracts.probes.base), pinned where the zoo cannot see it.

The zoo asks which contract failed; a guard inside Context whose deletion turns the evidence into
a crash (or a silent broadcast) still "fails the contract", so nothing noticed. Kills
(mutation/README.md): split() without its (output, h_n) / LSTM (h_n, c_n) guards or with their
``or`` made ``and``; assert_close without its shape guard (a (3,) tensor broadcast against (2, 3)
passed); require_states deleted.
"""
from __future__ import annotations

import pytest
import torch

from rnn_contracts import RNNSpec, verify_rnn
from rnn_contracts.probes.base import NO_STATES, Context, NotApplicable, ProbeFailure, require_states


def _ctx(mode: str = "GRU", **fields) -> Context:
    spec = RNNSpec(mode=mode, input_size=4, hidden_size=6, **fields)
    return Context(None, spec, torch.device("cpu"), torch.float32)


@pytest.mark.parametrize(("raw", "name"), [
    (torch.zeros(5, 3, 6), "Tensor"),
    ((torch.zeros(5, 3, 6),), "tuple"),
    ((torch.zeros(5, 3, 6), torch.zeros(1, 3, 6), torch.zeros(1)), "tuple"),
    ([torch.zeros(5, 3, 6)] * 3, "list"),
])
def test_split_rejects_what_is_not_output_and_state(raw: object, name: str) -> None:
    with pytest.raises(ProbeFailure) as caught:
        _ctx().split(raw)
    assert str(caught.value) == f"the module returned {name}, not (output, h_n)"


@pytest.mark.parametrize("state", [
    torch.zeros(1, 3, 6),                                   # one tensor
    (torch.zeros(1, 3, 6),),                                # a 1-tuple
    (torch.zeros(1, 3, 6), torch.zeros(1, 3, 6), torch.zeros(1, 3, 6)),  # three
])
def test_split_wants_an_lstm_state_pair(state: object) -> None:
    with pytest.raises(ProbeFailure) as caught:
        _ctx("LSTM").split((torch.zeros(5, 3, 6), state))
    assert str(caught.value) == "an LSTM must return (output, (h_n, c_n))"


def test_split_accepts_the_convention() -> None:
    out, h, c = torch.zeros(5, 3, 6), torch.ones(1, 3, 6), torch.full((1, 3, 6), 2.0)
    got = _ctx("LSTM").split((out, (h, c)))
    assert got.output is out and got.h_n is h and got.c_n is c


INF, NAN = float("inf"), float("nan")


@pytest.mark.parametrize(("actual", "expected", "close"), [
    (1.0, 1.0, True), (1.0 + 1e-7, 1.0, True), (1.01, 1.0, False), (0.0, 1e-9, True),
    (NAN, NAN, True), (NAN, 1.0, False), (1.0, NAN, False),
    (INF, INF, True), (-INF, -INF, True), (INF, 1.0, False),
    # an infinite expectation is met only by the same infinity: |a - e| - (atol + rtol * inf)
    # is inf - inf = NaN, which no comparison with 0 calls a violation
    (1.0, INF, False), (-INF, INF, False), (NAN, INF, False),
])
def test_assert_close_verdicts_on_special_values(actual: float, expected: float, close: bool) -> None:
    """The fused allclose decision and the worst-position search agree with the rule
    |actual - expected| <= atol + rtol * |expected|, NaN matching NaN only, infinity only itself."""
    ctx = _ctx()
    a, e = torch.tensor([0.5, actual]), torch.tensor([0.5, expected])
    if close:
        ctx.assert_close("output", a, e, "why")
    else:
        with pytest.raises(ProbeFailure) as info:
            ctx.assert_close("output", a, e, "why")
        assert info.value.violation.position == (1,)


@pytest.mark.parametrize(("actual", "expected", "position"), [
    ([NAN, 1.0], [NAN, INF], (1,)),  # NaN against NaN first, the unmet infinity second
    ([INF, 2.0, 1.0], [INF, 1.0, INF], (2,)),  # an unmet infinity outranks a finite excess
    ([INF, 2.0, 1.0], [INF, 1.0, 1.0], (1,)),
])
def test_assert_close_points_at_a_real_violation(actual: list[float], expected: list[float],
                                                 position: tuple[int, ...]) -> None:
    with pytest.raises(ProbeFailure) as info:
        _ctx().assert_close("output", torch.tensor(actual), torch.tensor(expected), "why")
    assert info.value.violation.position == position


@pytest.mark.parametrize(("share", "close"), [(0.5, True), (0.99, True), (1.5, False), (3.0, False)])
def test_assert_close_draws_the_line_at_the_tolerance(share: float, close: bool) -> None:
    """A difference of ``share`` times what the tolerance allows at 1.0 (atol + rtol)."""
    ctx = _ctx()
    e = torch.tensor([1.0], dtype=torch.float64)
    a = e + share * (ctx.atol + ctx.rtol)
    if close:
        ctx.assert_close("output", a, e, "why")
    else:
        with pytest.raises(ProbeFailure):
            ctx.assert_close("output", a, e, "why")


def test_assert_close_refuses_a_shape_that_would_broadcast() -> None:
    ctx = _ctx()
    with pytest.raises(ProbeFailure) as caught:
        ctx.assert_close("h_n", torch.zeros(2, 3), torch.zeros(3), "why")
    assert str(caught.value) == "why: h_n has shape (2, 3), expected (3,)"


def test_require_states() -> None:
    require_states(_ctx())  # a module that returns its states: nothing to say
    with pytest.raises(NotApplicable, match=f"^{NO_STATES.replace('(', '[(]').replace(')', '[)]')}$"):
        require_states(_ctx(returns_states=False))


class OutputOnly(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rnn = torch.nn.GRU(4, 6)

    def forward(self, x, hx=None):
        return self.rnn(x, hx)[0]


def test_state_contracts_do_not_apply_to_an_output_only_module() -> None:
    spec = RNNSpec(mode="GRU", input_size=4, hidden_size=6, returns_states=False, packed=False, unbatched=False)
    report = verify_rnn(OutputOnly(), spec, contracts=["final_state"])
    (result,) = report.results
    assert (result.status, result.detail) == ("not applicable", NO_STATES)


def test_final_state_probe_names_a_batch_major_h_n() -> None:
    """final_state's own shape check, on the probe itself: verify_rnn now marks final_state "not
    run" whenever shapes fails (selected or not), so no verify_rnn call reaches it. Kills: that
    check deleted (the view then reinterprets the values)."""
    from rnn_contracts.probes.structure import final_state
    from zoo.faulty_subchecks import StateBatchMajor

    with torch.random.fork_rng():
        torch.manual_seed(0)
        module = StateBatchMajor("GRU", 4, 6).eval()
    ctx = Context(module, RNNSpec.from_module(module), torch.device("cpu"), torch.float32)
    with pytest.raises(ProbeFailure) as caught:
        final_state(ctx)
    assert str(caught.value) == ("h_n has shape (3, 1, 6), expected (1, 3, 6) (num_layers * D, batch, H_out); "
                                 "LSTM must return (h_n, c_n) in that order")
