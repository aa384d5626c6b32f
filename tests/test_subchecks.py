"""Negative controls for the sub-checks inside verify_rnn's probes.

A probe asserts several things in turn; the zoo (tests/test_zoo.py) only asks WHICH contract
failed, so deleting one assertion of a probe whose other assertions (or other contracts) still
reject the zoo's faults left the suite green. Each entry of tests/zoo/faulty_subchecks.py breaks
exactly one assertion, and the test below pins that assertion by a fragment of its evidence:
deleting the assertion fails this test (the mutation each entry kills is noted next to it).

The last tests pin the other half of verify_rnn's "no trace" promise that no probe checks: the
parameters' ``.grad`` are as they were, for a module whose forward touches them.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from rnn_contracts.errors import render_violation
from rnn_contracts import CONTRACT_NAMES, ContractViolation, verify_rnn
from zoo import FAULTY
from zoo.faulty_subchecks import ENTRIES, SubcheckEntry


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny tensors: torch's intra-op thread pool costs more than the arithmetic."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def test_subcheck_table_is_sound() -> None:
    ids = [e.id for e in ENTRIES]
    assert len(ids) == len(set(ids))
    assert all(e.expect in CONTRACT_NAMES and e.evidence and e.about for e in ENTRIES)
    assert set(ENTRIES) <= set(FAULTY), "the zoo's FAULTY table includes the sub-check entries"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_subcheck_fault_is_rejected_by_its_assertion(entry: SubcheckEntry) -> None:
    with pytest.raises(ContractViolation) as caught:
        verify_rnn(entry.build(), entry.spec)
    details = {r.name: r.detail for r in caught.value.report.failures}
    assert entry.expect in details, f"{entry.id}: expected {entry.expect} among {sorted(details)}"
    assert entry.evidence in details[entry.expect], (
        f"{entry.id}: the {entry.expect} evidence does not come from the sub-check "
        f"{entry.evidence!r}:\n{details[entry.expect]}"
    )
    assert f"[{entry.expect}] {details[entry.expect]}" in map(render_violation, caught.value.violations)


# -- .grad: verify_rnn leaves the parameters' gradients as they were ---------------------------
class ZeroGradInForward(nn.GRU):
    """Calls self.zero_grad() at the top of forward (set_to_none: every .grad becomes None)."""

    def forward(self, x: Any, hx: Any = None) -> Any:
        self.zero_grad()
        return super().forward(x, hx)


class FillsGradInForward(nn.GRU):
    """Gives every parameter a .grad in forward (L2 decay written straight into .grad)."""

    def forward(self, x: Any, hx: Any = None) -> Any:
        for p in self.parameters():
            p.grad = 1e-4 * p.detach().clone()
        return super().forward(x, hx)


class ClipsGradInForward(nn.GRU):
    """Calls clip_grad_norm_(self.parameters(), 1.0) in forward: the existing .grad scaled in place."""

    def forward(self, x: Any, hx: Any = None) -> Any:
        nn.utils.clip_grad_norm_(self.parameters(), 1.0)
        return super().forward(x, hx)


def _with_grads(module: nn.Module) -> list[tuple[torch.Tensor | None, torch.Tensor | None]]:
    """Every other parameter gets .grad = 3.0, the rest keep None; returns (grad, its values)."""
    for i, p in enumerate(module.parameters()):
        p.grad = torch.full_like(p, 3.0) if i % 2 else None
    return [(p.grad, None if p.grad is None else p.grad.clone()) for p in module.parameters()]


def _assert_grads_restored(module: nn.Module, saved: list[Any]) -> None:
    for (name, p), (grad, values) in zip(module.named_parameters(), saved):
        assert p.grad is grad, f"{name}.grad was {'None' if grad is None else 'a tensor'}, now {p.grad!r:.40}"
        if values is not None:
            assert torch.equal(p.grad, values), f"{name}.grad changed in place"


# kills: verify.py _no_trace without `param.grad = grad` (both modules: a None grad must stay
# None, an existing grad must come back after zero_grad set it to None)
@pytest.mark.parametrize("make", [ZeroGradInForward, FillsGradInForward], ids=["zero_grad", "fills_grad"])
def test_grads_set_in_forward_are_restored(make: type[nn.GRU]) -> None:
    module = make(4, 6)
    saved = _with_grads(module)
    verify_rnn(module)  # touching .grad is no contract of its own: every contract holds
    _assert_grads_restored(module, saved)


# kills: verify.py _no_trace restoring only the .grad reference, not its values (the fault this
# test found: clip_grad_norm_ inside forward left the caller's gradients scaled)
def test_grads_changed_in_place_in_forward_are_restored() -> None:
    module = ClipsGradInForward(4, 6)
    saved = _with_grads(module)
    verify_rnn(module)
    _assert_grads_restored(module, saved)
