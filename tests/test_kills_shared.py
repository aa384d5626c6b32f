"""The shared calls' fallback (rnn_contracts.probes.shared, Context.merged), pinned where the zoo
cannot see it: a module that mixes the sequences of a batch through their initial states closes
the batch gate, and initial_state then checks the zero and the non-contiguous h_0 in calls of
their own, so its verdict is the module's own, not the mixing's.

Kills (mutation/README.md): state.py's ``rejected is None and merged`` made ``or`` (the shared
calls read although the gate is closed: the stack copies' states leak into the compared
sequences), ``elif rejected is None`` negated and the fallback's comparison deleted (a
non-contiguous h_0 that gives another result passes).
"""
from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from zoo import contract_result as result_of


class MixesStates(nn.GRU):
    """Adds a thousandth of the batch mean of |h_0| to every sequence's h_0 (a "shared context"
    left in): each sequence's result depends on the others' states, and on nothing else."""

    def forward(self, x: Any, hx: Any = None) -> Any:
        if hx is not None:
            hx = hx + 1e-3 * hx.abs().mean(dim=1, keepdim=True)
        return super().forward(x, hx)


class MixesStatesAndScramblesStrided(MixesStates):
    """The same, and a non-contiguous h_0 read as if it were laid out batch-major."""

    def forward(self, x: Any, hx: Any = None) -> Any:
        if hx is not None and not hx.is_contiguous():
            hx = hx.transpose(0, 1).contiguous().view(hx.shape)
        return super().forward(x, hx)


@pytest.fixture
def seeded() -> None:
    torch.manual_seed(0)


def test_a_module_that_mixes_states_fails_batch_independence_only(seeded: None) -> None:
    """Its h_0 is used and a non-contiguous h_0 is read right: initial_state holds, on calls of
    its own, while batch_independence names the mixing."""
    module = MixesStates(4, 6, num_layers=2)
    assert result_of(module, "batch_independence").status == "failed"
    result = result_of(module, "initial_state")
    assert (result.status, result.detail) == ("passed", "")


def test_a_non_contiguous_h0_read_wrong_fails_initial_state_behind_a_closed_gate(seeded: None) -> None:
    result = result_of(MixesStatesAndScramblesStrided(4, 6, num_layers=2), "initial_state")
    assert result.status == "failed"
    assert result.detail.startswith("a non-contiguous h_0 must give the result of its contiguous copy: output[")


def test_an_error_of_the_checker_itself_is_no_contract_violation(monkeypatch: pytest.MonkeyPatch,
                                                                 seeded: None) -> None:
    """shapes turns the contract's violations on a shared call into its evidence, and nothing
    else: an error out of the checker itself surfaces as what it is. Kills: _check's ``except
    ContractViolation`` widened to ``except Exception``."""
    import rnn_contracts.probes.structure as structure

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the checker broke")

    monkeypatch.setattr(structure, "check_call", broken)
    result = result_of(nn.GRU(4, 6), "shapes")
    assert (result.status, result.detail) == (
        "failed", "the module's result broke the probe: RuntimeError: the checker broke")


class DeafWithLearnedH0(nn.GRU):
    """Ignores its input (a GRU fed zeros) and starts from a learned state when no h_0 is given."""

    def forward(self, x: Any, hx: Any = None) -> Any:
        if hx is None:
            hx = torch.full((self.num_layers, x.shape[1], self.hidden_size), 0.5)
        return super().forward(torch.zeros_like(x), hx)


def test_batch_independence_tries_keep_the_states_of_the_call_they_are_compared_with(seeded: None) -> None:
    """The tries of batch_independence's "must change" half are the states call's input with
    sequence 0 changed more, run with the states call's own initial states: a try without them
    would start this module from its learned state and read that as sequence 0's change. Kills:
    the tries' ``given is None`` negated (no h_0 given to the tries)."""
    result = result_of(DeafWithLearnedH0(4, 6), "batch_independence")
    assert (result.status, result.detail) == (
        "failed", "replacing sequence 0 must change sequence 0's output: output[:, 0] did not change at "
        "any position")


def test_batch_independence_run_early_for_the_gate_is_not_run_again(seeded: None) -> None:
    """finite asks the batch gate before its own result is in, so batch_independence runs early,
    unreported; at its turn that result is reported as it is, not computed again. The module
    fails its "must change" half after 8 tries, which are not shared calls: shapes' 5 calls,
    finite's 3 (the gate is closed), the replaced call and 8 tries make 17 (25 when run twice)."""
    module = DeafWithLearnedH0(4, 6)
    calls: list[int] = []
    module.register_forward_pre_hook(lambda *_: calls.append(1))
    assert result_of(module, "batch_independence").status == "failed"
    assert len(calls) == 17
