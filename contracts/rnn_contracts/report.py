"""ContractReport: what verify_rnn found, contract by contract."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from rnn_contracts.errors import Violation
from rnn_contracts.spec import RNNSpec

#: "known limitation": the module failed exactly as torch's own layers do on this path (the
#: detail names the upstream issue); it does not make the report fail. "not run": a contract
#: it relies on failed (the detail names it) or an earlier call never returned; the failure that
#: caused it makes the report fail, not this.
Status = Literal["passed", "failed", "not applicable", "known limitation", "not run"]


@dataclass(frozen=True)
class ContractResult:
    """One contract's outcome: ``detail`` is the evidence as text (failed), the reason (not
    applicable) or the upstream limitation (known limitation); ``evidence`` the failure's
    structured record."""

    name: str
    status: Status
    detail: str = ""
    seconds: float = 0.0
    evidence: Violation | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "status": self.status, "detail": self.detail, "seconds": self.seconds}
        out["evidence"] = self.evidence.to_dict() if self.evidence is not None else None
        return out


@dataclass(frozen=True)
class ContractReport:
    """The outcome of verify_rnn for one module on one device and dtype."""

    module: str
    spec: RNNSpec
    device: str
    dtype: str
    results: tuple[ContractResult, ...] = field(default_factory=tuple)
    #: What the kit did that a reader must know (e.g. the zeros passed to a module that requires hx).
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """No contract failed, and none was left unrun because of a failure outside the report
        (a prerequisite run unselected: such a result carries that failure as its evidence)."""
        return not self.failures and not any(r.status == "not run" and r.evidence for r in self.results)

    @property
    def failures(self) -> tuple[ContractResult, ...]:
        return tuple(r for r in self.results if r.status == "failed")

    def status_of(self, name: str) -> Status:
        for result in self.results:
            if result.name == name:
                return result.status
        raise KeyError(f"no contract named {name!r} in this report")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the CLI's --json)."""
        return {
            "module": self.module,
            "spec": asdict(self.spec),
            "device": self.device,
            "dtype": self.dtype,
            "ok": self.ok,
            "notes": list(self.notes),
            "results": [r.to_dict() for r in self.results],
        }

    def table(self) -> str:
        """A plain-text table: contract, status, time, detail."""
        width = max([len(r.name) for r in self.results] + [8])
        lines = [f"{self.module} on {self.device} ({self.dtype})"]
        for r in self.results:
            detail = f"  {r.detail}" if r.status in ("not applicable", "known limitation", "not run") else ""
            lines.append(f"  {r.name:<{width}}  {r.status:<14} {r.seconds * 1e3:7.1f} ms{detail}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()
