"""The shared calls' fallback (rnn_contracts.probes.shared, Context.merged), pinned where the zoo
cannot see it: a module that mixes the sequences of a batch through their initial states closes
the batch gate, and initial_state then checks the zero and the non-contiguous h_0 in calls of
their own, so its verdict is the module's own, not the mixing's.

Kills (mutation/README.md): state.py's ``rejected is None and merged`` made ``or`` (the shared
calls read although the gate is closed: the stack copies' states leak into the compared
sequences), ``elif rejected is None`` negated and the fallback's comparison deleted (a
non-contiguous h_0 that gives another result passes); Context.call's copy of hx dropped (a
module that writes into its h_0 is blamed by packed as well), same_layout_copy made clone();
packed's own calls behind a closed gate without the h_0 of their sequences.
"""
from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from rnn_contracts import ContractViolation, verify_rnn
from rnn_contracts.probes.base import same_layout_copy
from rnn_contracts.probes.temporal import COPY_OUTPUT
from zoo import contract_result as result_of
from zoo.faulty_math import WritesIntoH0
from zoo.faulty_subchecks import LearnedInitialState


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


class MixesTensorStates(nn.GRU):
    """Adds a thousandth of each h_0's deviation from the batch mean on tensor input (nothing for
    a batch of one, or of equal states); a PackedSequence runs as torch's GRU runs it."""

    def forward(self, x: Any, hx: Any = None) -> Any:
        if hx is not None and not isinstance(x, PackedSequence):
            hx = hx + 1e-3 * (hx - hx.mean(dim=1, keepdim=True))
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


def test_packed_behind_a_closed_gate_runs_each_length_alone_from_its_own_h0(seeded: None) -> None:
    """The gate closed, packed runs the sequences of each length in calls of their own, each from
    its h_0 in the packed call (the longest one's random): without it, the correct packed branch
    failed against a run from zeros. Kills: the own call's ``_columns(ctx, hx, idx)`` made None."""
    module = MixesTensorStates(4, 6)
    assert result_of(module, "batch_independence").status == "failed"
    result = result_of(module, "packed")
    assert (result.status, result.detail) == ("passed", "")


def test_a_learned_default_state_fails_initial_state_and_not_packed(seeded: None) -> None:
    """packed hands its short sequences a zero h_0 and reads them off the prefix run, which has
    none, only where an explicit zero h_0 gives the result of none: a module that starts from a
    learned state without h_0 failed packed too, "from the same h_0" (a review). Kills:
    _zero_h0_is_none's answer ignored."""
    module = LearnedInitialState("GRU", 4, 6)
    assert result_of(module, "initial_state").status == "failed"
    result = result_of(module, "packed")
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
        "failed", "replacing sequence 0's input must change its output from the same state: "
        f"{COPY_OUTPUT} did not change at any position")


def test_batch_independence_run_early_for_the_gate_is_not_run_again(seeded: None) -> None:
    """finite asks the batch gate before its own result is in, so batch_independence runs early,
    unreported; at its turn that result is reported as it is, not computed again. The module
    fails its "must change" half after 8 tries, which are not shared calls: shapes' 6 calls (the
    repeat among them), finite's 3 (the gate is closed), the replaced call and 8 tries make 18
    (26 when run twice)."""
    module = DeafWithLearnedH0(4, 6)
    calls: list[int] = []
    module.register_forward_pre_hook(lambda *_: calls.append(1))
    assert result_of(module, "batch_independence").status == "failed"
    assert len(calls) == 18


# -- every call gets its own initial states -------------------------------------------------------
class GRUWritesBackIntoH0(nn.GRU):
    """torch's GRU that copies h_n into the h_0 it was given (a buffer reused): autograd then
    raises its other in-place error ("Output 1 of Unbind is a view ... modified inplace")."""

    def forward(self, x: Any, hx: Any = None) -> Any:
        output, h_n = super().forward(x, hx)
        if hx is not None:
            hx.copy_(h_n)
        return output, h_n


@pytest.mark.parametrize("make", [lambda: WritesIntoH0("GRU", 4, 6), lambda: GRUWritesBackIntoH0(4, 6)],
                         ids=["loop", "torch-gru"])
def test_a_module_that_writes_into_its_h0_fails_inputs_untouched_and_nothing_else(seeded: None, make: Any) -> None:
    """The probes share their initial states (the states call's groups) and hand one call's h_n
    to the next (the prefix's h_n is the last step's h_0): a module that writes into the h_0 it
    gets would rewrite what later probes read, and they would blame it for what they then saw
    (packed did: the cached prefix's h_n had become the last step's). Each call gets copies, so
    inputs_untouched, which watches the states call's own tensors, is the one contract it
    breaks: differentiability follows such a module without h_0 (autograd's error on the
    written h_0 failed it, a review). Kills: that decision dropped."""
    with pytest.raises(ContractViolation) as caught:
        verify_rnn(make())
    assert [(r.name, r.detail) for r in caught.value.report.failures] == [
        ("inputs_untouched", "forward modified h_0 in place")]


@pytest.mark.parametrize("make", [
    pytest.param(lambda: torch.randn(2, 3, 8)[..., ::2], id="strided"),
    pytest.param(lambda: torch.randn(3, 2, 4).transpose(0, 1), id="transposed"),
    pytest.param(lambda: (torch.randn(2, 3, 4), torch.randn(2, 3, 4).transpose(1, 2).transpose(1, 2)), id="lstm-tuple"),
])
def test_the_copy_a_call_gets_keeps_the_layout_and_nothing_else(make: Any) -> None:
    """The non-contiguous h_0 probe must still hand over a non-contiguous h_0: the copy keeps the
    sizes and strides (clone() makes a strided view contiguous), and shares no storage."""
    given = make()
    copied = same_layout_copy(given)
    pairs = zip(given, copied) if isinstance(given, tuple) else [(given, copied)]
    assert type(copied) is type(given)
    for a, b in pairs:
        assert (b.shape, b.stride(), b.dtype) == (a.shape, a.stride(), a.dtype) and torch.equal(a, b)
        assert b.untyped_storage().data_ptr() != a.untyped_storage().data_ptr()


# -- the repeat comes right after the main call, and shapes checks it ----------------------------
class SqueezesOnItsSecondCall(nn.GRU):
    """From its second call on, returns h_n without the layer axis (a cached path that forgets to
    unsqueeze)."""

    def forward(self, x: Any, hx: Any = None) -> Any:
        output, h_n = super().forward(x, hx)
        self.calls = getattr(self, "calls", 0) + 1
        return output, (h_n[0] if self.calls == 2 else h_n)


class RemembersItsLastCall(nn.GRU):
    """Starts from the h_n of its last call when no h_0 is given and that call's input had the
    same shape (a streaming cache keyed on the whole input shape, not only the batch)."""

    def forward(self, x: Any, hx: Any = None) -> Any:
        last = self.__dict__.get("last")
        if hx is None and last is not None and last[0] == tuple(x.shape):
            hx = last[1]
        output, h_n = super().forward(x, hx)
        self.__dict__["last"] = (tuple(x.shape), h_n.detach())
        return output, h_n


def test_shapes_checks_the_repeat(seeded: None) -> None:
    """The repeat is one of shapes' calls: its second call, so a result that only goes wrong from
    then on is named there. Kills: repeat_call's ``check`` dropped, the repeat left to
    determinism (the first wrong result is then batch 1's)."""
    result = result_of(SqueezesOnItsSecondCall(4, 6), "shapes")
    assert result.status == "failed"
    assert result.detail.startswith("on the main probe input, a second time:"), result.detail


def test_a_memory_keyed_on_the_input_shape_fails_determinism(seeded: None) -> None:
    """The repeat comes right after the main call: a module that keeps its last call's state for
    the next call of the same shape starts the repeat from the main call's, whatever calls of
    other shapes the contracts make later. Kills: the repeat left to determinism (the call before
    it is then batch_independence's, of another shape)."""
    result = result_of(RemembersItsLastCall(4, 6), "determinism")
    assert result.status == "failed"
    assert result.detail.startswith("two eval-mode calls on the same input disagree: output["), result.detail
