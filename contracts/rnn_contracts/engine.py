"""The runtime checking engine: jaxtyping aliases checked by typeguard (default) or beartype.

Form used, and why: ``typeguard.check_type(value, alias)`` inside ``with jaxtyped("context"):``.
typeguard 4 under ``@jaxtyped(typechecker=typechecked)`` emits an InstrumentationWarning and then
checks NOTHING; the context form checks, and dimension names bind across every check of the block
(the batch of h_n must equal the batch of the input). :func:`selftest` proves the engine fires.

The checker is chosen once per process: ``RNN_CONTRACTS_CHECKER`` (typeguard | beartype) or
:func:`set_checker` (the pytest plugin's ``--contract-checker``).
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch
from jaxtyping import jaxtyped

from rnn_contracts.aliases import SpecDims
from rnn_contracts.errors import SelfTestError
from rnn_contracts.layouts import SPEC_DIMS

CHECKERS = ("typeguard", "beartype")
ENV_CHECKER = "RNN_CONTRACTS_CHECKER"


def _typeguard_accepts(value: Any, alias: Any) -> bool:
    import typeguard

    try:
        typeguard.check_type(value, alias)
    except typeguard.TypeCheckError:
        return False
    return True


def _beartype_accepts(value: Any, alias: Any) -> bool:
    from beartype.door import is_bearable

    return bool(is_bearable(value, alias))


_ACCEPTS: dict[str, Callable[[Any, Any], bool]] = {
    "typeguard": _typeguard_accepts,
    "beartype": _beartype_accepts,
}
_state = {"checker": "typeguard"}


def set_checker(name: str) -> None:
    """Choose the checker: "typeguard" (default) or "beartype" (needs the beartype package)."""
    if name not in CHECKERS:
        raise ValueError(f"unknown contract checker {name!r}; choose one of {', '.join(CHECKERS)}")
    if name == "beartype":
        try:
            import beartype  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ValueError("contract checker 'beartype' needs: pip install beartype") from exc
    _state["checker"] = name


def get_checker() -> str:
    """The checker in use."""
    return _state["checker"]


def accepts(value: Any, alias: Any) -> bool:
    """Whether ``value`` satisfies ``alias`` under the current checker (inside :func:`scope`)."""
    return _ACCEPTS[_state["checker"]](value, alias)


@contextlib.contextmanager
def scope() -> Iterator[None]:
    """One binding scope: dimension names bound by one check hold for every later check in it."""
    with jaxtyped("context"):
        yield


def bind_spec(dims: dict[str, int]) -> None:
    """Bind the sizes the spec fixes (layouts.SPEC_DIMS, in SpecDims' order) in the current scope.

    A zero-strided view of a 0-d tensor carries the shape without allocating its elements.
    """
    carrier = torch.empty(()).expand(*(dims[name] for name in SPEC_DIMS))
    if not accepts(carrier, SpecDims):  # pragma: no cover - a fresh scope always binds
        raise SelfTestError("could not bind the spec's dimensions in a fresh jaxtyped scope")


def selftest(checker: str | None = None) -> None:
    """Feed the engine one accepted and several deliberate mismatches; raise if any is missed.

    Raises :class:`SelfTestError` when a mismatch is accepted (the checker checks nothing) or a
    correct tensor is rejected. The pytest plugin runs it when the kit activates in a session.
    """
    from rnn_contracts.aliases import BatchFirstInput, HiddenState, SeqFirstOutput

    previous = get_checker()
    if checker is not None:
        set_checker(checker)
    try:
        dims = {"layers": 1, "directions": 1, "hidden": 2, "cell": 2, "dim": 4}
        cases = [
            ("the seed's (3, 5, 4) batch as (batch, seq, dim)", torch.zeros(3, 5, 4), BatchFirstInput, True),
            ("h_n with batch 5 after an input of batch 3", torch.zeros(1, 5, 2), HiddenState, False),
            ("output with 3 features where directions*hidden is 2", torch.zeros(5, 3, 3), SeqFirstOutput, False),
            ("an int64 tensor where a float tensor is due", torch.zeros(1, 3, 2, dtype=torch.int64), HiddenState, False),
            ("a 2-D tensor where a 3-D state is due", torch.zeros(3, 2), HiddenState, False),
        ]
        with scope():
            bind_spec(dims)
            for what, value, alias, expected in cases:
                got = accepts(value, alias)
                if got != expected:
                    verdict = "accepted" if got else "rejected"
                    raise SelfTestError(
                        f"contract self-test failed: the {get_checker()} checker {verdict} {what}; "
                        f"contracts would not be enforced"
                    )
    finally:
        _state["checker"] = previous


def checker_from_env() -> str | None:
    """The checker RNN_CONTRACTS_CHECKER names, or None; ValueError for an unknown name.

    Read at import, but an unknown name does not break ``import rnn_contracts``: the default stays,
    and the plugin and the CLI call this to report the bad value as a usage error."""
    name = os.environ.get(ENV_CHECKER, "").strip()
    if not name:
        return None
    if name not in CHECKERS:
        raise ValueError(f"{ENV_CHECKER}={name!r}: unknown contract checker; choose one of {', '.join(CHECKERS)}")
    return name


try:
    _from_env = checker_from_env()
    if _from_env:
        set_checker(_from_env)
except ValueError:
    pass  # reported by the plugin / CLI, which call checker_from_env() again
