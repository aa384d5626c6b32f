"""Running the command line's job: verify_rnn on every column, then the seed's own checks."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

import torch

from rnn_contracts import engine
from rnn_contracts.errors import ContractViolation
from rnn_contracts.outcome import Column, JobResult, SeedResult
from rnn_contracts.report import ContractReport, ContractResult
from rnn_contracts.spec import RNNSpec
from rnn_contracts.usage import UsageError
from rnn_contracts.verify import verify_rnn

#: The dtypes ``--dtype`` accepts.
DTYPES = ("float32", "float64", "float16", "bfloat16")


class Reporter(Protocol):
    """Where a run reports its progress (rnn_contracts.progress)."""

    def start(self, where: str, name: str) -> None:
        """Check ``name`` begins in column ``where``."""

    def finish(self, where: str, name: str, status: str, seconds: float) -> None:
        """Check ``name`` ended in column ``where``."""


def _verify(module: Any, spec: RNNSpec, column: Column, contracts: Sequence[str] | None,
            deploy: Sequence[str], reporter: Reporter, timeout: float | None,
            cell: Any = None) -> ContractReport:
    def progress(name: str, result: ContractResult | None) -> None:
        if result is None:
            reporter.start(column.label, name)
        else:
            reporter.finish(column.label, name, result.status, result.seconds)

    options: dict[str, Any] = {"device": column.device, "contracts": contracts, "progress": progress}
    if deploy:
        options["deploy"] = list(deploy)
    if cell is not None:
        options["cell"] = cell
    if column.dtype is not None:
        options["dtype"] = getattr(torch, column.dtype)
    if timeout is not None:
        options["timeout"] = timeout
    try:
        return verify_rnn(module, spec, **options)
    except ContractViolation as exc:
        return exc.report
    except Exception as exc:  # moving or copying the module failed: no contract could run
        raise UsageError(f"verify_rnn could not run on {column.label}: {type(exc).__name__}: {exc}") from None


def _seed(devices: Sequence[str], reporter: Reporter) -> SeedResult:
    from rnn_contracts.seed import layout_verdict, seed_checks

    checks, outputs = {}, {}
    for device in devices:
        reporter.start(device, "seed checks")
        checks[device], outputs[device] = seed_checks(device)
        for check in checks[device]:
            reporter.finish(device, f"seed: {check.name}", check.status, check.seconds)
    return SeedResult(checks, outputs[devices[0]], layout_verdict())


def run_job(module: Any, target: str, spec: RNNSpec, columns: Sequence[Column], *,
            contracts: Sequence[str] | None, reporter: Reporter, timeout: float | None = None,
            seed: bool = False, deploy: Sequence[str] = (), cell: Any = None) -> JobResult:
    """verify_rnn on each column (a ContractViolation becomes its report), then, for the seed's
    job, the seed's checks on each device; the whole outcome as a :class:`JobResult`."""
    from rnn_contracts.devices import describe_device

    started = datetime.now(timezone.utc)
    reports = {c: _verify(module, spec, c, contracts, deploy, reporter, timeout, cell) for c in columns}
    devices = list(dict.fromkeys(c.device for c in columns))
    return JobResult(
        target=target,
        spec=spec,
        columns=tuple(columns),
        reports=reports,
        devices=tuple(describe_device(d) for d in devices),
        checker=engine.get_checker(),
        started=started,
        seed=_seed(devices, reporter) if seed else None,
    )
