"""What one command-line run found, and the words every format uses for it.

A :class:`JobResult` holds the verify_rnn reports of one module, one per :class:`Column`
(a device, and a dtype when ``--dtype`` asked for one), the seed's checks when the job is the
seed's, and the run's context (checker, devices, time). The text, JSON, Markdown and JUnit
renderings all read it; the status marks, the time format, the heading of a failure and the
verdict line are written here once.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import torch

from rnn_contracts.devices import DeviceInfo
from rnn_contracts.errors import Violation
from rnn_contracts.report import ContractReport
from rnn_contracts.spec import RNNSpec

#: Short marks of a contract's status (text table, progress lines, Markdown cells).
MARK = {"passed": "ok", "failed": "FAIL", "not applicable": "n/a", "known limitation": "known", "not run": "not run"}

#: Statuses that neither pass nor fail: listed with their reason under the table.
NOTED = ("not applicable", "known limitation", "not run")


def mark(status: str) -> str:
    """The short mark of ``status`` (an unknown status as it is)."""
    return MARK.get(status, status)


def milliseconds(seconds: float) -> str:
    """``0.3 ms``."""
    return f"{seconds * 1e3:.1f} ms"


@dataclass(frozen=True)
class Column:
    """One verify_rnn run: a device, and the dtype ``--dtype`` asked for (None: the module's own)."""

    device: str
    dtype: str | None = None

    @property
    def label(self) -> str:
        """``cpu``, or ``cpu float64`` when a dtype was asked for."""
        return self.device if self.dtype is None else f"{self.device} {self.dtype}"


@dataclass(frozen=True)
class Row:
    """One named check in one column: a verify_rnn contract or a seed check."""

    where: str  # the column's label
    name: str
    status: str
    seconds: float
    detail: str = ""
    evidence: Violation | None = None


def heading(where: str, name: str) -> str:
    """How every format names one failed check: ``[cpu] differentiability``."""
    return f"[{where}] {name}"


@dataclass(frozen=True)
class Note:
    """A contract that neither passed nor failed, its reason, and the columns it applies to."""

    status: str
    name: str
    reason: str
    where: tuple[str, ...]


@dataclass(frozen=True)
class SeedResult:
    """The seed's own checks per device, its printed output and its layout verdict."""

    checks: Mapping[str, Sequence[Any]]  # device -> [SeedCheck]
    output: torch.Tensor  # the first device's (discovery order: the CPU's when selected)
    verdict: str


@dataclass(frozen=True)
class JobResult:
    """Everything one run of the command line found."""

    target: str
    spec: RNNSpec
    columns: tuple[Column, ...]
    reports: Mapping[Column, ContractReport]
    devices: tuple[DeviceInfo, ...]
    checker: str
    started: datetime
    seed: SeedResult | None = None

    @property
    def module(self) -> str:
        """The checked module in one line (``RNN(4, 2)``)."""
        return next(iter(self.reports.values())).module if self.reports else self.spec.describe()

    def contract_rows(self) -> list[Row]:
        """Every contract in every column, column by column."""
        return [Row(c.label, r.name, r.status, r.seconds, r.detail, r.evidence)
                for c in self.columns for r in self.reports[c].results]

    def seed_rows(self) -> list[Row]:
        """Every seed check on every device (none when the job is not the seed's)."""
        if self.seed is None:
            return []
        return [Row(device, c.name, c.status, c.seconds, c.detail)
                for device, checks in self.seed.checks.items() for c in checks]

    def failures(self) -> list[Row]:
        """Failed seed checks, then failed contracts."""
        return [r for r in self.seed_rows() + self.contract_rows() if r.status == "failed"]

    def notes(self) -> list[Note]:
        """Contracts not applicable or known limitations, one per (status, name, reason)."""
        grouped: dict[tuple[str, str, str], list[str]] = {}
        for row in self.contract_rows():
            if row.status in NOTED:
                grouped.setdefault((row.status, row.name, row.detail), []).append(row.where)
        return [Note(status, name, reason, tuple(where)) for (status, name, reason), where in grouped.items()]

    def report_notes(self) -> list[str]:
        """What the kit did that a reader must know (the reports' notes), once each."""
        return list(dict.fromkeys(n for report in self.reports.values() for n in report.notes))

    @property
    def ok(self) -> bool:
        """No contract and no seed check failed, and no selected contract was left unrun by a
        failure outside the report (verify_rnn's own verdict, ContractReport.ok)."""
        return not self.failures() and all(report.ok for report in self.reports.values())

    def verdict(self) -> str:
        """The last line of every report."""
        if self.ok:
            return "all contracts hold"
        if self.failures():
            return f"{len(self.failures())} contract failure(s)"
        return "contracts not run: a contract they rely on failed (select it for its evidence)"

    def device_info(self, device: str) -> DeviceInfo:
        return next((i for i in self.devices if i.device == device), DeviceInfo(device))

    def spec_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.spec)
