"""rnn_contracts.checked: the always-on wrapper and decorator (verdicts cached per call signature)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from rnn_contracts import CheckedModule, ContractViolation, RNNSpec, check_forward, checked
from rnn_contracts import wrapper as wrapper_module

SPEC = RNNSpec(mode="RNN", input_size=4, hidden_size=2)


class Flaky(torch.nn.Module):
    """Right on the first call, h_n laid out batch-first from the second call on."""

    mode, input_size, hidden_size = "RNN", 4, 2

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x, hx=None):
        self.calls += 1
        seq, batch, _ = x.shape
        h = x.new_zeros(1, batch, 2) if self.calls == 1 else x.new_zeros(batch, 1, 2)
        return x.new_zeros(seq, batch, 2), h


@pytest.fixture
def rnn(rnn_seeded) -> torch.nn.RNN:
    return torch.nn.RNN(4, 2)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts the full checks the wrapper runs (inputs, calls)."""
    counts = {"inputs": 0, "calls": 0}
    real_inputs, real_call = wrapper_module.check_inputs, wrapper_module.check_call

    def inputs(*a, **k):
        counts["inputs"] += 1
        return real_inputs(*a, **k)

    def call(*a, **k):
        counts["calls"] += 1
        return real_call(*a, **k)

    monkeypatch.setattr(wrapper_module, "check_inputs", inputs)
    monkeypatch.setattr(wrapper_module, "check_call", call)
    return counts


def test_wrapped_module_returns_the_modules_result(rnn: torch.nn.RNN) -> None:
    x = torch.randn(5, 3, 4)
    wrapped = checked(rnn)
    assert isinstance(wrapped, CheckedModule)
    out, h = wrapped(x)
    ref_out, ref_h = rnn(x)
    assert torch.equal(out, ref_out) and torch.equal(h, ref_h)


def test_a_known_signature_is_not_checked_again(rnn: torch.nn.RNN, counted: dict[str, int]) -> None:
    wrapped = checked(rnn)
    for _ in range(5):
        wrapped(torch.randn(5, 3, 4))
    assert counted == {"inputs": 1, "calls": 1}
    wrapped(torch.randn(6, 3, 4))  # a new seq length is a new signature: checked in full
    assert counted == {"inputs": 2, "calls": 2}
    wrapped(torch.randn(5, 3, 4).double().float())  # same signature again
    assert counted == {"inputs": 2, "calls": 2}


def test_a_new_result_signature_is_checked_even_for_a_known_input(counted: dict[str, int]) -> None:
    wrapped = checked(Flaky())
    x = torch.zeros(5, 3, 4)
    wrapped(x)
    with pytest.raises(ContractViolation, match=r"h_n is laid out batch-first"):
        wrapped(x)
    assert counted == {"inputs": 1, "calls": 2}


def test_a_wrong_input_is_diagnosed_before_the_module_runs(rnn: torch.nn.RNN) -> None:
    calls = []
    rnn.register_forward_pre_hook(lambda *a: calls.append(1))
    wrapped = checked(rnn)
    bad = torch.randn(5, 3, 7)
    with pytest.raises(ContractViolation) as caught:
        wrapped(bad)
    assert calls == []
    with pytest.raises(ContractViolation) as direct:
        check_forward(rnn, bad)
    assert str(caught.value) == str(direct.value)  # the full diagnosis of check_forward


def test_the_wrapper_reads_spec_attributes_through(rnn: torch.nn.RNN) -> None:
    wrapped = checked(rnn)
    assert wrapped.hidden_size == 2
    assert RNNSpec.from_module(wrapped) == RNNSpec.from_module(rnn)


@pytest.mark.parametrize("kind", ["lstm_hx", "packed", "unbatched"])
def test_the_general_path_checks_and_caches(kind: str, rnn_seeded, counted: dict[str, int]) -> None:
    if kind == "lstm_hx":
        module = torch.nn.LSTM(4, 3)
        args = (torch.randn(5, 2, 4), (torch.zeros(1, 2, 3), torch.zeros(1, 2, 3)))
        bad = (args[0], torch.zeros(1, 2, 3))  # one tensor where LSTM wants (h_0, c_0)
    elif kind == "packed":
        module = torch.nn.GRU(4, 3)
        args = (pack_padded_sequence(torch.randn(5, 2, 4), torch.tensor([5, 3])),)
        bad = (pack_padded_sequence(torch.randn(5, 2, 6), torch.tensor([5, 3])),)
    else:
        module = torch.nn.RNN(4, 3)
        args = (torch.randn(5, 4),)
        bad = (torch.randn(5, 4, 4, 4),)
    wrapped = checked(module)
    wrapped(*args)
    wrapped(*args)
    assert counted == {"inputs": 1, "calls": 1}
    with pytest.raises(ContractViolation):
        wrapped(*bad)


def test_decorated_forward_method_takes_the_spec_from_self() -> None:
    class Loop(torch.nn.Module):
        mode, input_size, hidden_size = "RNN", 4, 2

        @checked
        def forward(self, x, hx=None):
            seq, batch, _ = x.shape
            return x.new_zeros(seq, batch, 2), x.new_zeros(batch, 1, 2)  # h_n batch-first

    with pytest.raises(ContractViolation, match="h_n is laid out batch-first"):
        Loop()(torch.zeros(5, 3, 4))


def test_decorated_function_needs_a_spec() -> None:
    def forward(x, hx=None):
        return x, x

    with pytest.raises(TypeError) as caught:
        checked(forward)
    assert str(caught.value) == (
        "checked(forward): a plain function needs a spec, e.g. "
        "@checked(spec=RNNSpec(mode='GRU', input_size=4, hidden_size=2))"
    )
    good = checked(spec=SPEC)(lambda x, hx=None: (x.new_zeros(5, 3, 2), x.new_zeros(1, 3, 2)))
    good(torch.zeros(5, 3, 4))
    with pytest.raises(ContractViolation, match="dim = input_size = 4"):
        good(torch.zeros(5, 3, 5))


def test_the_cache_is_bounded(rnn: torch.nn.RNN, monkeypatch: pytest.MonkeyPatch, counted) -> None:
    monkeypatch.setattr(wrapper_module, "CACHE_SIZE", 2)
    wrapped = checked(rnn)
    for seq in (2, 3, 4, 2):  # the third signature starts the cache over; 2 is checked again
        wrapped(torch.randn(seq, 3, 4))
    assert len(wrapped._verdicts.inputs) <= 2
    assert counted["inputs"] == 4


def test_the_off_switch_returns_targets_unwrapped() -> None:
    code = (
        "import torch, rnn_contracts\n"
        "m = torch.nn.RNN(4, 2)\n"
        "f = lambda x, hx=None: (x, x)\n"
        "assert rnn_contracts.checked(m) is m\n"
        "assert rnn_contracts.checked(f, rnn_contracts.RNNSpec('RNN', 4, 2)) is f\n"
        "print('unwrapped')\n"
    )
    env = {**__import__("os").environ, "RNN_CONTRACTS_OFF": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "unwrapped"
    # and without the variable (this process), checked() does wrap: the switch is what differs
    assert not wrapper_module.DISABLED
