"""verify_rnn: run every semantic contract of torch.nn.RNN / LSTM / GRU on a recurrent module.

verify_rnn leaves no trace: the training flags of the module and its submodules, its parameters,
buffers and gradients, the global RNG state (CPU and CUDA) and the TF32 flags are as they were.
Probes run in eval mode with inputs from a private generator.
"""
from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

import torch

from rnn_contracts.errors import ContractViolation, Violation, render_violation
from rnn_contracts.probes import (
    CONTRACT_NAMES, CONTRACTS, Context, Contract, KnownLimitation, NotApplicable, ProbeFailure,
)
from rnn_contracts.report import ContractReport, ContractResult
from rnn_contracts.spec import RNNSpec


def _module_device_dtype(module: Any) -> tuple[torch.device, torch.dtype]:
    tensors = list(module.parameters()) + list(module.buffers()) if isinstance(module, torch.nn.Module) else []
    device = tensors[0].device if tensors else torch.device("cpu")
    floats = [t.dtype for t in tensors if t.is_floating_point()]
    return device, (floats[0] if floats else torch.float32)


@contextlib.contextmanager
def _tf32_off(device: torch.device) -> Iterator[None]:
    """TF32 off while probing on CUDA (cuDNN RNNs use TF32 by default on Ampere and later, about
    1e-3 off, which would fail float32 comparisons); every flag restored after."""
    if device.type != "cuda":
        yield
        return
    from rnn_contracts.precision import tf32_disabled

    with tf32_disabled():
        yield


@contextlib.contextmanager
def _no_trace(module: Any, device: torch.device) -> Iterator[None]:
    """Restore training flags, parameters, buffers, gradients and the RNG state afterwards."""
    is_module = isinstance(module, torch.nn.Module)
    modes = [(m, m.training) for m in module.modules()] if is_module else []
    tensors = list(module.parameters()) + list(module.buffers()) if is_module else []
    saved = [(t, t._version, t.detach().clone()) for t in tensors]
    # The .grad tensor itself AND its values: a forward may replace .grad or write into it
    # (clip_grad_norm_ inside forward scaled a caller's 3.0 to 0.068 before this kept values).
    grads = [(p, p.grad, None if p.grad is None else p.grad.detach().clone())
             for p in (module.parameters() if is_module else [])]
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        try:
            yield
        finally:
            with torch.no_grad():
                for tensor, version, values in saved:
                    if tensor._version != version:
                        tensor.copy_(values)
            for param, grad, values in grads:
                param.grad = grad
                if grad is not None and values is not None and not torch.equal(grad, values):
                    with torch.no_grad():
                        grad.copy_(values)
            for sub, training in modes:
                sub.training = training


def _select(contracts: Iterable[str] | None) -> list[Contract]:
    if contracts is None:
        return list(CONTRACTS)
    wanted = list(contracts)
    unknown = [n for n in wanted if n not in CONTRACT_NAMES]
    if unknown:
        raise ValueError(f"unknown contract(s) {', '.join(unknown)}; known: {', '.join(CONTRACT_NAMES)}")
    return [c for c in CONTRACTS if c.name in wanted]


def _run_one(contract: Contract, ctx: Context) -> ContractResult:
    start = time.perf_counter()
    status, detail, evidence = "passed", "", None
    try:
        with torch.no_grad():
            contract.probe(ctx)
    except NotApplicable as exc:
        status, detail = "not applicable", str(exc)
    except KnownLimitation as exc:
        status, detail = "known limitation", str(exc)
    except ProbeFailure as exc:
        status, evidence = "failed", exc.violation
    except ContractViolation as exc:
        status, evidence = "failed", Violation("evidence", detail=exc.title, causes=tuple(exc.violations))
    except Exception as exc:  # the probe could not read the module's result: evidence too
        status, evidence = "failed", Violation(
            "evidence", detail=f"the module's result broke the probe: {type(exc).__name__}: {exc}")
    if evidence is not None:
        evidence = evidence.in_contract(contract.name)
        detail = render_violation(replace(evidence, contract=None))
    return ContractResult(contract.name, status, detail, time.perf_counter() - start, evidence)


def _run_reporting(contract: Contract, ctx: Context,
                   progress: Callable[[str, ContractResult | None], None] | None) -> ContractResult:
    if progress is not None:
        progress(contract.name, None)
    result = _run_one(contract, ctx)
    if progress is not None:
        progress(contract.name, result)
    return result


def describe_module(module: Any) -> str:
    """torch's one-line repr (``LSTM(4, 6, num_layers=2)``), or ``Name(...)`` for a module whose
    repr spans several lines."""
    text = repr(module).splitlines()
    if len(text) == 1:
        return text[0]
    return f"{type(module).__name__}(...)"


def verify_rnn(
    module: Any,
    spec: RNNSpec | None = None,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    contracts: Iterable[str] | None = None,
    progress: Callable[[str, ContractResult | None], None] | None = None,
) -> ContractReport:
    """Check that ``module`` honours the semantics of torch.nn.RNN / LSTM / GRU.

    ``spec`` defaults to ``RNNSpec.from_module(module)``. ``device`` / ``dtype`` default to the
    module's own; when they differ, a copy of the module is moved there (the module itself is
    never moved). ``contracts`` selects contracts by name (default: all, see CONTRACT_NAMES).
    ``progress(name, None)`` is called when a contract starts and ``progress(name, result)``
    when it has finished (the command line's live progress).

    Returns a :class:`ContractReport` when every applicable contract holds; raises
    :class:`ContractViolation` listing each failed contract with its evidence otherwise (the
    report is on the exception's ``report`` attribute).
    """
    if spec is None:
        spec = RNNSpec.from_module(module)
    selected = _select(contracts)
    own_device, own_dtype = _module_device_dtype(module)
    device = torch.device(device) if device is not None else own_device
    dtype = dtype or own_dtype
    target = module
    if isinstance(module, torch.nn.Module) and (device != own_device or dtype != own_dtype):
        target = copy.deepcopy(module).to(device=device, dtype=dtype)
    with _no_trace(module, device), _tf32_off(device):
        if isinstance(target, torch.nn.Module):
            target.eval()
        ctx = Context(target, spec, device, dtype)
        results = tuple(_run_reporting(c, ctx, progress) for c in selected)
    report = ContractReport(describe_module(module), spec, str(device),
                            str(dtype).replace("torch.", ""), results)
    if not report.ok:
        names = ", ".join(r.name for r in report.failures)
        raise ContractViolation(
            f"verify_rnn: {report.module} broke {len(report.failures)} of {len(results)} contracts "
            f"on {report.device} ({report.dtype}): {names}",
            [r.evidence for r in report.failures if r.evidence is not None],
            report,
        )
    return report
