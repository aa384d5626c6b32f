"""The contracts of verify_rnn, in the order they run. Each probe's docstring says what the
contract means and which torch documentation it encodes (the README lists them)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rnn_contracts.probes.base import Context, KnownLimitation, NotApplicable, ProbeFailure
from rnn_contracts.probes.hygiene import determinism, differentiability, inputs_untouched
from rnn_contracts.probes.packed import packed
from rnn_contracts.probes.reference import reference
from rnn_contracts.probes.state import initial_state, state_carry
from rnn_contracts.probes.structure import final_state, shapes, unbatched
from rnn_contracts.probes.temporal import batch_independence, causality


@dataclass(frozen=True)
class Contract:
    """A named semantic contract and the probe that checks it."""

    name: str
    probe: Callable[[Context], None]

    @property
    def doc(self) -> str:
        return " ".join((self.probe.__doc__ or "").split())


CONTRACTS: tuple[Contract, ...] = tuple(
    Contract(fn.__name__, fn)
    for fn in (
        shapes, final_state, initial_state, state_carry, causality, batch_independence,
        determinism, differentiability, inputs_untouched, reference, packed, unbatched,
    )
)
CONTRACT_NAMES: tuple[str, ...] = tuple(c.name for c in CONTRACTS)

__all__ = [
    "CONTRACTS", "CONTRACT_NAMES", "Context", "Contract", "KnownLimitation", "NotApplicable", "ProbeFailure",
]
