"""Exceptions of the contract library, and the records a violation is made of.

A :class:`Violation` is one broken promise kept as data (which contract, which tensor, expected,
actual, the dimensions bound, the position and tolerance of a value mismatch, a hint and the
code of the known mistake it names). :func:`render_violation` is the one place that turns it into
text; :class:`ContractViolation` carries a list of them, and the report when verify_rnn raised it.
Code that needs to know what went wrong reads the fields, never the rendered text.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

#: What a violation is about: a tensor's shape, dtype or device, a wrong type or structure
#: ("type"), a value that differs from what the contract says ("value"), or a sentence of
#: evidence that fits none of these ("evidence").
Kind = Literal["shape", "dtype", "device", "type", "value", "evidence"]

#: The order in which bound dimensions are listed.
_BOUND_ORDER = ("batch", "seq", "total", "dim", "hidden", "cell", "layers", "directions")


@dataclass(frozen=True)
class Violation:
    """One broken promise.

    ``detail`` is the sentence of evidence: for "type" and "evidence" violations the whole
    statement, for "dtype" / "device" whose value was expected, for "value" why the two values
    must agree. ``mistake`` names the known mistake ``hint`` explains (e.g. "batch_first": the
    layer read the input in the other layout), for code that acts on it.
    """

    kind: Kind
    tensor: str | None = None
    detail: str = ""
    expected: Any = None
    actual: Any = None
    bound: Mapping[str, int] = field(default_factory=dict)
    hint: str | None = None
    mistake: str | None = None
    contract: str | None = None
    position: tuple[int, ...] | None = None
    tolerance: tuple[float, float] | None = None  # (rtol, atol) of a value comparison
    difference: float | None = None
    causes: tuple["Violation", ...] = ()  # the violations this one summarises (shapes probe)

    def in_contract(self, name: str) -> "Violation":
        """The same violation, attributed to verify_rnn's contract ``name``."""
        return _replace(self, contract=name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (shapes as lists, dtypes and devices as text)."""
        out: dict[str, Any] = {"kind": self.kind, "contract": self.contract, "tensor": self.tensor,
                               "detail": self.detail, "expected": _plain(self.expected),
                               "actual": _plain(self.actual), "bound": dict(self.bound),
                               "hint": self.hint, "mistake": self.mistake,
                               "position": list(self.position) if self.position is not None else None,
                               "tolerance": ({"rtol": self.tolerance[0], "atol": self.tolerance[1]}
                                             if self.tolerance else None),
                               "difference": self.difference,
                               "causes": [c.to_dict() for c in self.causes],
                               "text": render_violation(self)}
        return out


def position(flat: int, shape: Sequence[int]) -> tuple[int, ...]:
    """The index of element ``flat`` of a contiguous tensor of ``shape``: the position a
    violation names (torch.unravel_index for one element, in Python: under 1 us where that took
    30, once per placement the reference contract tries and rejects)."""
    index = []
    for size in reversed(shape):
        flat, i = divmod(flat, size)
        index.append(i)
    return tuple(reversed(index))


def _replace(v: Violation, **changes: Any) -> Violation:
    import dataclasses

    return dataclasses.replace(v, **changes)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple) and all(isinstance(x, tuple) and len(x) == 2 for x in value):
        return {str(name): size for name, size in value}  # a NamedShape
    if isinstance(value, (tuple, list)):
        return [_plain(x) for x in value]
    return str(value).removeprefix("torch.")


def shape_text(shape: Sequence[Any]) -> str:
    """``(3, 5, 4)``."""
    return "(" + ", ".join(str(s) for s in shape) + ")"


def bound_text(bound: Mapping[str, int]) -> str:
    """``batch=3 seq=5 dim=4 ...``: the sizes a check bound, in a stable order."""
    return " ".join(f"{name}={bound[name]}" for name in _BOUND_ORDER if name in bound)


def render_violation(v: Violation) -> str:
    """The one rendering of a violation as text (messages, reports, pytest failures)."""
    if v.kind == "shape":
        head = f"{v.tensor}: expected {v.expected}, got {shape_text(v.actual)}"
    elif v.kind in ("dtype", "device"):
        head = f"{v.tensor}: {v.kind} {v.actual}, expected {v.expected} ({v.detail})"
    elif v.kind == "value":
        rtol, atol = v.tolerance or (0.0, 0.0)
        where = ", ".join(map(str, v.position or ()))
        head = (f"{v.detail}: {v.tensor}[{where}] expected {v.expected:.6g}, actual {v.actual:.6g}, "
                f"|difference| {v.difference:.3g} (allowed atol {atol:g} + rtol {rtol:g} * |expected|)")
    else:
        head = f"{v.tensor}: {v.detail}" if v.tensor else v.detail
    lines = [head]
    if v.bound:
        lines.append(f"  bound: {bound_text(v.bound)}")
    if v.hint:
        lines.append(f"  hint: {v.hint}")
    text = "\n".join(lines + [f"\n{render_violation(c)}" for c in v.causes])
    return f"[{v.contract}] {text}" if v.contract else text


class ContractViolation(AssertionError):
    """A recurrent module broke a contract of the torch recurrent API.

    An ``AssertionError`` subclass, so pytest shows it as a test failure. ``violations`` holds
    the :class:`Violation` records; ``report`` is verify_rnn's :class:`ContractReport` when
    verify_rnn raised it (None for check_forward / checked). ``str(exc)`` is the title and every
    violation rendered by :func:`render_violation`.
    """

    title: str
    violations: list[Violation]
    report: Any

    def __init__(self, title: str, violations: Sequence[Violation], report: Any = None) -> None:
        self.title = title
        self.violations = list(violations)
        self.report = report
        body = "\n\n".join(render_violation(v) for v in self.violations)
        super().__init__(f"{title}\n\n{body}" if body else title)

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (pytest-xdist sends failures across)
        return (type(self), (self.title, self.violations, self.report))


class SpecError(ValueError):
    """An RNNSpec cannot be built: a bad field value, or a module lacking required attributes."""


class SelfTestError(RuntimeError):
    """The runtime checker accepted a tensor it must reject: contracts would check nothing."""
