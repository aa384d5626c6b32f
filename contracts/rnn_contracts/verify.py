"""verify_rnn: run every semantic contract of torch.nn.RNN / LSTM / GRU on a recurrent module.

verify_rnn leaves no trace (:mod:`rnn_contracts.trace`): the module's parameters, buffers and
submodules (values and identity), requires_grad, gradients and training flags, the global RNG
states (torch's CPU and CUDA, Python's, NumPy's), the environment variables, the TF32 flags, the
default dtype and grad mode are as they were. Probes run in eval mode with inputs from a private
generator. Every argument is validated before any probe
runs: a wrong argument is the caller's error (TypeError / ValueError naming it), never the
module's violation. Each contract runs under a time limit (:mod:`rnn_contracts.timeout`).
"""
from __future__ import annotations

import contextlib
import copy
import numbers
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

import torch
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

from rnn_contracts.conventions import requires_hx_note
from rnn_contracts.diagnose import first_line
from rnn_contracts.precision import tf32_disabled
from rnn_contracts.errors import ContractViolation, Violation, render_violation
from rnn_contracts.probes import (
    CELL_CONTRACT, CONTRACT_NAMES, CONTRACTS, Context, Contract, KnownLimitation, NotApplicable,
    ProbeFailure,
)
from rnn_contracts.probes.deploy import DEPLOY_CONTRACTS, DEPLOY_NAMES
from rnn_contracts.probes.hygiene import DECLARE_BUFFERS
from rnn_contracts.report import ContractReport, ContractResult
from rnn_contracts.rounding import rounding_note
from rnn_contracts.spec import RNNSpec
from rnn_contracts.timeout import ContractTimeout, Limited, time_limits
from rnn_contracts.trace import Change, no_trace

#: Seconds one contract may take by default: generous for a large LSTM on a slow CPU
#: (LSTM(64, 1024, num_layers=4, bidirectional=True) took ~10 s for all of them here).
DEFAULT_TIMEOUT = 120.0
#: The dtypes whose values the probes compare (torch's recurrent layers compute in these).
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _module_device_dtype(module: Any) -> tuple[torch.device, torch.dtype | None]:
    """The device and dtype the module computes in: its first tensor's device, and its
    floating-point parameters' dtype (else its buffers', else float32); None where its
    parameters come in several dtypes (:func:`_mixed_dtypes` says which)."""
    params = list(module.parameters()) if isinstance(module, torch.nn.Module) else []
    tensors = params + (list(module.buffers()) if isinstance(module, torch.nn.Module) else [])
    device = tensors[0].device if tensors else torch.device("cpu")
    if len({p.dtype for p in params if p.is_floating_point()}) > 1:
        return device, None
    floats = [t.dtype for t in tensors if t.is_floating_point()]
    return device, (floats[0] if floats else torch.float32)


def _mixed_dtypes(module: torch.nn.Module) -> str:
    """``float64: scale; float32: core.weight_ih_l0 and 3 more``: the module's floating-point
    parameters by dtype."""
    by_dtype: dict[torch.dtype, list[str]] = {}
    for name, p in module.named_parameters():
        if p.is_floating_point():
            by_dtype.setdefault(p.dtype, []).append(name)
    return "; ".join(f"{str(d).removeprefix('torch.')}: {names[0]}"
                     + (f" and {len(names) - 1} more" if len(names) > 1 else "") for d, names in by_dtype.items())


#: The start of torch's notice that oneDNN leaves an LSTM with proj_size to torch's own CPU
#: kernel (aten/src/ATen/native/RNN.cpp).
ONEDNN_NO_PROJECTION = "LSTM with projections is not supported with oneDNN"


@contextlib.contextmanager
def _kernel_notices_ignored() -> Iterator[None]:
    """torch's notice that oneDNN leaves an LSTM's projection to torch's own kernel, ignored for
    the run, the module's calls and the reference's (the warnings filters as they were after
    it): torch gives it once per process, from whichever call comes first, about its kernel
    choice, not the module; under ``-W error`` it failed that one call's contract, a different
    one by test order, and otherwise printed from the kit's reference run (user-view reviews)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=ONEDNN_NO_PROJECTION)
        yield


def _tf32_off(device: torch.device) -> contextlib.AbstractContextManager[None]:
    """TF32 off while probing on CUDA (cuDNN RNNs use TF32 by default on Ampere and later, about
    1e-3 off, which would fail float32 comparisons); every flag restored after."""
    return tf32_disabled() if device.type == "cuda" else contextlib.nullcontext()


# --------------------------------------------------------------------------------------------
# arguments: the caller's mistakes are the caller's errors
# --------------------------------------------------------------------------------------------
def _names(argument: str, names: Any) -> list[str]:
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise TypeError(f"verify_rnn({argument}=...) takes a list of contract names, got "
                        f"{type(names).__name__} {names!r}")
    wanted = list(names)
    wrong = [c for c in wanted if not isinstance(c, str)]
    if wrong:
        raise TypeError(f"verify_rnn({argument}=...) takes contract names (str), got {wrong[0]!r}")
    return wanted


def _select(contracts: Iterable[str] | None, deploy: Iterable[str] = (),
            opt_in: tuple[Contract, ...] = ()) -> list[Contract]:
    """The contracts to run, in their order, then the opt-in ones (the cell contract), then the
    deployment contracts asked for."""
    wanted_deploy = _names("deploy", deploy)
    unknown = [n for n in wanted_deploy if n not in DEPLOY_NAMES]
    if unknown:
        raise ValueError(f"unknown deployment target(s) {', '.join(unknown)}; known: {', '.join(DEPLOY_NAMES)}")
    chosen_deploy = [*opt_in, *(c for c in DEPLOY_CONTRACTS if c.name in wanted_deploy)]
    if contracts is None:
        return list(CONTRACTS) + chosen_deploy
    wanted = [n for n in _names("contracts", contracts) if n not in {c.name for c in opt_in}]
    if not wanted and not chosen_deploy:
        raise ValueError(f"verify_rnn(contracts=[]) selects no contract: it would check nothing; "
                         f"known: {', '.join(CONTRACT_NAMES)}")
    unknown = [n for n in wanted if n not in CONTRACT_NAMES]
    if unknown:
        raise ValueError(f"unknown contract(s) {', '.join(unknown)}; known: {', '.join(CONTRACT_NAMES)}")
    return [c for c in CONTRACTS if c.name in wanted] + chosen_deploy


def _device(device: Any) -> torch.device | None:
    if device is None:
        return None
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"verify_rnn(device=...) takes a device name or torch.device, got "
                        f"{type(device).__name__} {device!r}")
    try:
        found = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"verify_rnn(device={device!r}): not a device: {first_line(exc)}") from None
    if found.type == "meta":
        raise ValueError(f"verify_rnn(device={device!r}): the meta device holds no values, and every "
                         f"contract compares values")
    try:
        torch.empty(1, device=found)
    except Exception as exc:  # noqa: BLE001 - any failure means: not usable here
        raise ValueError(f"verify_rnn(device={device!r}): not available: {type(exc).__name__}: "
                         f"{first_line(exc)}") from None
    return found


def _dtype(dtype: Any) -> torch.dtype | None:
    if dtype is None:
        return None
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"verify_rnn(dtype=...) takes a torch.dtype, got {type(dtype).__name__} {dtype!r}")
    if dtype not in FLOAT_DTYPES:
        names = ", ".join(str(d).removeprefix("torch.") for d in FLOAT_DTYPES)
        raise ValueError(f"verify_rnn(dtype={dtype}): recurrent layers compute in {names}")
    return dtype


def _weight_map(weight_map: Any, spec: RNNSpec, module: Any) -> dict[str, str]:
    """The reference placements the caller gives: every key a parameter of the torch layer the
    spec describes, every value a parameter of the module (``name.T``: transposed) of that shape."""
    if weight_map is None:
        return {}
    if not isinstance(weight_map, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()):
        raise TypeError("verify_rnn(weight_map=...) takes {torch parameter name: module parameter name}, "
                        f"got {type(weight_map).__name__}")
    from rnn_contracts.probes.reference import behind_parametrization, build_reference, parametrized_names

    slots = {n: p.shape for n, p in build_reference(spec).named_parameters()}
    params: dict[str, Any] = {}
    if isinstance(module, torch.nn.Module):
        params = {n: p.shape for n, p in module.named_parameters() if not behind_parametrization(n)}
        # a parametrized weight's shape is known only once computed, which the probes do (in eval
        # mode: spectral_norm advances its power iteration in training mode); reference checks it
        params.update(dict.fromkeys(parametrized_names(module)))
    for torch_name, name in weight_map.items():
        if torch_name not in slots:
            raise ValueError(f"verify_rnn(weight_map=...): {torch_name!r} is no parameter of torch.nn."
                             f"{spec.describe()}; its parameters: {', '.join(slots)}")
        base, transposed = (name[:-2], True) if name.endswith(".T") else (name, False)
        if base not in params:
            raise ValueError(f"verify_rnn(weight_map=...): {name!r} names no parameter of the module; "
                             f"its parameters: {', '.join(params) or 'none'}")
        if params[base] is None:
            continue
        shape = tuple(params[base])[::-1] if transposed else tuple(params[base])
        if shape != tuple(slots[torch_name]):
            raise ValueError(f"verify_rnn(weight_map=...): {name} has shape {shape}, {torch_name} needs "
                             f"{tuple(slots[torch_name])}")
    return dict(weight_map)


def check_timeout(timeout: Any, who: str = "verify_rnn(timeout=...)") -> float | None:
    """Seconds as any real number (a NumPy float too), positive and below 1e6; None: no limit. A
    wrong one is the caller's error naming ``who`` (the conformance suite's contract_timeout too)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise TypeError(f"{who} takes a number of seconds or None (no limit), got "
                        f"{type(timeout).__name__} {timeout!r}")
    if not 0 < timeout < 1e6:
        raise ValueError(f"{who} takes a positive number of seconds below 1e6 or None (no limit), got {timeout!r}")
    return float(timeout)


def _moved(module: Any, device: torch.device, dtype: torch.dtype | None, what: str = "the module") -> Any:
    """A copy of ``module`` on ``device`` in ``dtype`` (None: each tensor's own; anything but an
    nn.Module as it is)."""
    if not isinstance(module, torch.nn.Module):
        return module
    try:
        return copy.deepcopy(module).to(device=device, dtype=dtype)
    except Exception as exc:  # noqa: BLE001 - the caller asked for this device / dtype
        raise ValueError(f"verify_rnn could not move a copy of {what} to {device} ({dtype or 'its own dtypes'}): "
                         f"{type(exc).__name__}: {first_line(exc)}") from None


def _require_initialised(module: Any) -> None:
    """A module with lazy parameters not yet initialised (torch.nn.LazyLinear before its first
    forward), or with tensors on the meta device (deferred initialisation: built under
    ``torch.device("meta")``), has no values to snapshot, restore or compare: the caller's to
    fix, named."""
    if not isinstance(module, torch.nn.Module):
        return
    lazy = [name for name, p in module.named_parameters() if isinstance(p, UninitializedParameter)]
    lazy += [name for name, b in module.named_buffers() if isinstance(b, UninitializedBuffer)]
    if lazy:
        raise ValueError(f"verify_rnn: the module's {', '.join(lazy)} {'is' if len(lazy) == 1 else 'are'} "
                         f"not initialised yet (a lazy layer): run one forward pass on an input of the "
                         f"right size first, then verify it")
    meta = [name for name, t in (*module.named_parameters(), *module.named_buffers()) if t.is_meta]
    if meta:
        raise ValueError(f"verify_rnn: the module's {', '.join(meta[:3])}{', ...' if len(meta) > 3 else ''} "
                         f"{'is' if len(meta) == 1 else 'are'} on the meta device, which holds no values "
                         f"(deferred initialisation): materialise the module first (module.to_empty(device=...), "
                         f"then load or initialise its weights), then verify it")


def _allocate(ctx: Context) -> None:
    """Build the probe inputs before any contract runs: a spec too large for the device is the
    caller's error, not a violation of every contract."""
    try:
        ctx.x  # noqa: B018 - cached on first access
        ctx.state("h")
    except Exception as exc:  # noqa: BLE001 - out of memory, or a size torch refuses
        spec = ctx.spec
        raise ValueError(
            f"verify_rnn could not allocate its probe inputs (seq={ctx.seq}, batch={ctx.batch}, "
            f"input_size={spec.input_size}, states {tuple(spec.state_shape(ctx.batch).sizes)}) on "
            f"{ctx.device} in {str(ctx.dtype).removeprefix('torch.')}: {type(exc).__name__}: "
            f"{first_line(exc)}") from None


def _probe(contract: Contract, ctx: Context) -> None:
    """Run the contract's probe; a half-precision failure that a float64 copy of the module does
    not reproduce is rounding (rnn_contracts.rounding): the contract holds, with a note."""
    with torch.no_grad():
        try:
            contract.probe(ctx)
        except ProbeFailure as failure:
            note = rounding_note(contract.probe, ctx, failure) if contract.rounding else None
            if note is None:
                raise
            ctx.cached("notes", dict)[contract.name] = note
            ctx.cached("rounding", dict)[contract.name] = note  # the report's notes show it too


def _run_one(contract: Contract, ctx: Context, limited: Limited) -> ContractResult:
    start = time.perf_counter()
    status, detail, evidence = "passed", "", None
    try:
        limited(lambda: _probe(contract, ctx))
    except ContractTimeout as exc:
        status, evidence = "failed", Violation(
            "evidence", detail=f"the module did not return within the time limit of {exc.seconds:g} s "
            "(verify_rnn(timeout=...), --timeout, RNNContractTests.contract_timeout)")
        ctx.abandoned = contract.name if exc.abandoned else None
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
    elif status == "passed":
        detail = ctx.cached("notes", dict).get(contract.name, "")  # e.g. how reference placed the weights
    return ContractResult(contract.name, status, detail, time.perf_counter() - start, evidence)


_BY_NAME = {c.name: c for c in (*CONTRACTS, CELL_CONTRACT, *DEPLOY_CONTRACTS)}
#: The contract whose verdict lets probes share calls along the batch (Context.merged), and the
#: statuses that count as held: "not applicable" is only its "must change" half unobservable.
BATCH_GATE = "batch_independence"
HELD = ("passed", "not applicable")


def _blocked_by(contract: Contract, ctx: Context, done: dict[str, ContractResult],
                limited: Limited, selected: set[str]) -> ContractResult | None:
    """The "not run" result of ``contract`` when a contract it relies on failed (run first,
    unreported, when it was not selected: then its evidence comes along), or None."""
    for name in contract.requires:
        if name not in done:
            done[name] = _run_one(_BY_NAME[name], ctx, limited)
        cause = done[name]
        if cause.status in ("failed", "not run"):
            if name in selected:
                return ContractResult(contract.name, "not run", f"not run: {name} failed")
            detail = f"not run: {name} failed (not selected: select it for its evidence)"
            evidence = Violation("evidence", detail=detail, contract=contract.name,
                                 causes=(cause.evidence,) if cause.evidence else ())
            return ContractResult(contract.name, "not run", detail, evidence=evidence)
    return None


def _run_all(selected: list[Contract], ctx: Context, limited: Limited,
             progress: Callable[[str, ContractResult | None], None] | None) -> list[ContractResult]:
    """Every selected contract in order. A contract whose prerequisites failed is "not run",
    with one line naming the failure, instead of crashing inside its probe or blaming the wrong
    property; after a contract whose module call had to be abandoned (it still runs in another
    thread), the rest are not run on that module."""
    done: dict[str, ContractResult] = {}
    early: dict[str, ContractResult] = {}  # run out of turn, before their prerequisites held
    results: list[ContractResult] = []
    names = {c.name for c in selected}

    def independent() -> bool:
        """Whether probes may read a shared call's sequences as if each ran alone: batch_
        independence held (run now when it has not run, reported at its turn). Asked from inside
        one of its own prerequisites (finite), its probe runs unreported: a module whose results
        are not finite fails it there too (its "must change" half reads NaN against NaN as no
        change), so the gate stays closed and finite makes its own calls."""
        if getattr(ctx, "abandoned", False):
            return False
        contract = _BY_NAME[BATCH_GATE]
        if BATCH_GATE not in done and all(name in done for name in contract.requires):
            done[BATCH_GATE] = _blocked_by(contract, ctx, done, limited, names) or run(contract)
        if BATCH_GATE in done:
            return done[BATCH_GATE].status in HELD
        if BATCH_GATE not in early:
            early[BATCH_GATE] = _run_one(contract, ctx, limited)
        return early[BATCH_GATE].status in HELD

    def run(contract: Contract) -> ContractResult:
        """The contract's result: the one of its early run, once its prerequisites held (the
        same probe on the same cached calls), else a run now."""
        return early.pop(contract.name, None) or _run_one(contract, ctx, limited)

    ctx.independence = independent
    for contract in selected:
        if progress is not None:
            progress(contract.name, None)
        abandoned = getattr(ctx, "abandoned", False)
        blocked = None if abandoned or contract.name in done else _blocked_by(contract, ctx, done, limited, names)
        if abandoned:
            result = ContractResult(contract.name, "not run",
                                    f"not run: the module did not return from {ctx.abandoned} "
                                    "and is still in use by that call")
        elif contract.name in done:  # run early, as a prerequisite or for the batch gate
            result = done[contract.name]
        elif blocked is not None:
            result = blocked
        else:
            result = run(contract)
        done[contract.name] = result
        results.append(result)
        if progress is not None:
            progress(contract.name, result)
    return results


def _audit(results: list[ContractResult], changes: list[Change], spec: RNNSpec) -> list[ContractResult]:
    """What the probes changed on the module (restored since) decides inputs_untouched too:
    a change to parameters, buffers' identity, submodules or requires_grad fails it; updated
    buffer values fail it unless the spec declares updates_buffers, and are reported either way."""
    undeclared = [c for c in changes if not (c.declarable and spec.updates_buffers)]
    declared = [c for c in changes if c not in undeclared]
    out = []
    for result in results:
        if result.name == "inputs_untouched" and result.status != "failed" and undeclared:
            evidence = Violation("evidence", detail=(
                "during the probes the module changed " + ", ".join(map(str, undeclared))
                + f" ({'; '.join(['restored by verify_rnn', *_untouched_advice(undeclared)])})"),
                contract=result.name)
            result = replace(result, status="failed", evidence=evidence,
                             detail=render_violation(replace(evidence, contract=None)))
        elif result.name == "inputs_untouched" and result.status == "passed" and declared:
            result = replace(result, detail="buffers updated by design (RNNSpec.updates_buffers), "
                             "restored: " + ", ".join(c.name for c in declared))
        out.append(result)
    return out


def _untouched_advice(undeclared: list[Change]) -> list[str]:
    """What to do about the changes inputs_untouched reports, for the kinds among them: buffer
    values (the one change a spec may declare), and parts a forward added (built on its first
    call, as a lazy submodule: a warm-up call builds them before verify_rnn snapshots)."""
    advice = []
    if any(c.declarable for c in undeclared):
        advice.append(DECLARE_BUFFERS)
    if any(c.how == "added" for c in undeclared):
        advice.append("a module that builds parts of itself on its first call is called once before "
                      "verify_rnn")
    return advice


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
    deploy: Iterable[str] = (),
    weight_map: Mapping[str, str] | None = None,
    cell: Any = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    progress: Callable[[str, ContractResult | None], None] | None = None,
) -> ContractReport:
    """Check that ``module`` honours the semantics of torch.nn.RNN / LSTM / GRU.

    ``spec`` defaults to ``RNNSpec.from_module(module)``. ``device`` / ``dtype`` default to the
    module's own; when they differ, a copy of the module is moved there (the module itself is
    never moved). A callable that is no nn.Module is not moved (there is no copy to make): its
    probes come in ``device`` / ``dtype`` (default: the CPU, float32), whatever it computes in. ``contracts`` selects contracts by name (default: all, see CONTRACT_NAMES).
    ``deploy`` adds deployment contracts, opt-in because they take seconds and optional packages
    (``"export"``, ``"onnx"``, ``"compile"``: rnn_contracts.probes.deploy), after the others.
    ``cell`` (the cell a one-layer layer unrolls, ``cell(x_t, h) -> h`` or ``(h, c)``) adds the
    ``cell_equivalence`` contract: the layer equals that cell unrolled over time.
    ``weight_map`` places parameters for ``reference`` by hand: {torch's name (``weight_ih_l0``,
    ...): the module's parameter name, ``name.T`` for its transpose}, for the ones order and
    shape cannot place.
    ``timeout`` limits each contract, in seconds (None: no limit); a module that does not
    return fails that contract naming the limit. ``progress(name, None)`` is called when a
    contract starts and ``progress(name, result)`` when it has finished (the command line's
    live progress).

    Arguments are checked before anything runs: a spec, contracts, device, dtype or timeout of
    the wrong kind is a TypeError or ValueError naming the argument, and so are a device that is
    not available and probe inputs that cannot be allocated.

    Returns a :class:`ContractReport` when every applicable contract holds; raises
    :class:`ContractViolation` listing each failed contract with its evidence otherwise (the
    report is on the exception's ``report`` attribute).
    """
    if not callable(module):
        raise TypeError(f"verify_rnn() takes a recurrent module (or a callable with its calling "
                        f"convention), got {type(module).__name__}")
    if spec is not None and not isinstance(spec, RNNSpec):
        raise TypeError(f"verify_rnn(spec=...) takes an RNNSpec or None, got {type(spec).__name__} {spec!r}")
    if cell is not None and not callable(cell):
        raise TypeError(f"verify_rnn(cell=...) takes the layer's cell, a callable, got {type(cell).__name__}")
    if isinstance(cell, type):
        raise TypeError(f"verify_rnn(cell=...) takes the layer's cell, got the class {cell.__name__}: "
                        f"pass the instance the layer unrolls (layer.cell)")
    if progress is not None and not callable(progress):
        raise TypeError(f"verify_rnn(progress=...) takes a callable progress(name, result) or None, got "
                        f"{type(progress).__name__} {progress!r}")
    selected = _select(contracts, deploy, (CELL_CONTRACT,) if cell is not None else ())
    device, dtype, timeout = _device(device), _dtype(dtype), check_timeout(timeout)
    _require_initialised(module)
    if spec is None:
        spec = RNNSpec.from_module(module)
    given_map = _weight_map(weight_map, spec, module)
    own_device, own_dtype = _module_device_dtype(module)
    if dtype is None and own_dtype is None:
        raise ValueError(f"verify_rnn: the module's floating-point parameters come in several dtypes "
                         f"({_mixed_dtypes(module)}): pass dtype=, the dtype its input takes")
    device, dtype = device or own_device, dtype or own_dtype
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"verify_rnn: the module computes in {dtype}; pass dtype= one of "
                         f"{', '.join(str(d).removeprefix('torch.') for d in FLOAT_DTYPES)}")
    # a module of several dtypes is fed dtype as it is (moved to another device only, its
    # parameters' dtypes kept): they are its design
    same = device == own_device and own_dtype in (None, dtype)
    target = module if same else _moved(module, device, dtype if own_dtype is not None else None)
    with no_trace(target, device) as snapshot, _tf32_off(device), _kernel_notices_ignored():
        if isinstance(target, torch.nn.Module):
            target.eval()
        ctx = Context(target, spec, device, dtype)
        ctx.saved = {id(t): (values, version) for _, _, t, version, values, _ in snapshot.tensors}
        ctx.weight_map = given_map
        ctx.cell = cell if target is module else _moved(cell, device, dtype, "the cell")
        _allocate(ctx)
        with time_limits(timeout) as limited:
            results = _run_all(selected, ctx, limited, progress)
    results = tuple(_audit(results, snapshot.found, spec))
    notes = ((requires_hx_note(spec),) if spec.requires_hx else ()) + tuple(
        f"{name}: {note}" for name, note in ctx.cached("rounding", dict).items())
    report = ContractReport(describe_module(module), spec, str(device),
                            str(dtype).replace("torch.", ""), results, notes)
    if not report.ok:
        broken = [r for r in report.results if r.evidence is not None and r.status in ("failed", "not run")]
        names = ", ".join(r.name if r.status == "failed" else f"{r.name} (not run)" for r in broken)
        raise ContractViolation(
            f"verify_rnn: {report.module} broke {len(report.failures)} of {len(results)} contracts"
            + (f" and could not run {len(broken) - len(report.failures)} (a prerequisite failed)"
               if len(broken) > len(report.failures) else "")
            + f" on {report.device} ({report.dtype}): {names}",
            [r.evidence for r in broken],
            report,
        )
    return report
