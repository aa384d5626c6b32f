"""The contracts of verify_rnn, in the order they run. Each probe's docstring says what the
contract means and which torch documentation it encodes (the README lists them)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rnn_contracts.probes.base import Context, KnownLimitation, NotApplicable, ProbeFailure
from rnn_contracts.probes.cell import cell_equivalence
from rnn_contracts.probes.finite import finite
from rnn_contracts.probes.hygiene import determinism, differentiability, inputs_untouched
from rnn_contracts.probes.packed import packed
from rnn_contracts.probes.reference import reference
from rnn_contracts.probes.state import initial_state, state_carry
from rnn_contracts.probes.structure import final_state, shapes, unbatched
from rnn_contracts.probes.temporal import batch_independence, causality


@dataclass(frozen=True)
class Contract:
    """A named semantic contract, the probe that checks it, and the contracts it relies on: where
    one of those fails, this one is not run (its evidence would be a consequence, or a crash).
    ``rounding``: a half-precision failure of this contract is put to a float64 copy of the
    module (rnn_contracts.rounding) before it is reported: the contracts that compare two
    computations' values, where a half dtype's rounding can look like a broken property."""

    name: str
    probe: Callable[[Context], None]
    requires: tuple[str, ...] = ()
    rounding: bool = False

    @property
    def doc(self) -> str:
        return " ".join((self.probe.__doc__ or "").split())


#: Every other contract feeds the module probe inputs of the shapes ``shapes`` checks and reads
#: the results by those shapes; every contract that compares values relies on ``finite``.
_ON_SHAPES = ("shapes",)
_ON_VALUES = ("shapes", "finite")
CONTRACTS: tuple[Contract, ...] = (
    Contract("shapes", shapes),
    Contract("finite", finite, _ON_SHAPES),
    *(Contract(fn.__name__, fn, _ON_VALUES, rounding=True) for fn in (
        final_state, initial_state, state_carry, causality, batch_independence)),
    # determinism compares a call with itself: the same kernels on the same numbers, bitwise,
    # so rounding is no excuse there
    Contract("determinism", determinism, _ON_VALUES),
    # a gradient through time can underflow or meet a tanh saturated to exactly 1.0 in float16
    # (torch's own nn.RNN(1, 1, num_layers=2, bidirectional=True), seed 573: d output[-1] / d x[0]
    # is exactly 0 in float16, nonzero in float64); a detached state is detached in float64 too
    Contract("differentiability", differentiability, _ON_VALUES, rounding=True),
    Contract("inputs_untouched", inputs_untouched, _ON_SHAPES),
    *(Contract(fn.__name__, fn, _ON_VALUES, rounding=True) for fn in (reference, packed, unbatched)),
)
CONTRACT_NAMES: tuple[str, ...] = tuple(c.name for c in CONTRACTS)
#: Opt-in: runs when verify_rnn is given the layer's cell (verify_rnn(layer, cell=...)).
CELL_CONTRACT = Contract("cell_equivalence", cell_equivalence, _ON_VALUES, rounding=True)

__all__ = [
    "CELL_CONTRACT", "CONTRACTS", "CONTRACT_NAMES", "Context", "Contract", "KnownLimitation", "NotApplicable", "ProbeFailure",
]
