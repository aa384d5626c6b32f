"""Deployment contracts (opt-in): the exported, ONNX and compiled module keeps the contract.

Each probe builds the deployed form of the module from an example call at the kit's sizes
(``pick_sizes``), runs it at two other (batch, seq) sizes (``unseen_sizes``: no size of one call
equals another, nor the example's), and compares output, h_n and c_n with the eager module under
the kit's per-dtype tolerances. Every call form the spec allows is checked: ``module(x)``,
``module(x, hx)``, and the unbatched ``module(x)`` when ``spec.unbatched``; hx goes where the eager
probes put it (second, or by the forward's own name: :func:`_by_name`).

A failure names the deploying tool that broke the contract (torch.export, an ONNX exporter,
torch.compile), the call form, and the frozen axis, the rejected size or the worst position.
Exporters print warnings and progress lines; those are kept out of the kit's output, exceptions
never are (they become the evidence). onnx / onnxruntime / onnxscript are imported inside the
probe, so ``import rnn_contracts`` never needs them.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import itertools
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rnn_contracts.conventions import hx_by_name
from rnn_contracts.dynamic import BATCH, SEQ, axes, dynamic_axes, dynamic_shapes, onnx_names
from rnn_contracts.probes import Contract
from rnn_contracts.probes.base import Context, NotApplicable, ProbeFailure, Result
from rnn_contracts.spec import RNNSpec

#: What to install for the onnx contract (the pyproject extra, and its plain-pip equivalent).
INSTALL = "pip install 'rnn-contracts[deploy]' (or: pip install onnx onnxruntime onnxscript)"
#: The ONNX exporters of torch.onnx.export, by the name the evidence uses: the torch.export-based
#: one (dynamo=True, needs onnxscript) and the TorchScript-based one (dynamo=False).
EXPORTERS = ("dynamo", "torchscript")


# -- call forms and sizes -----------------------------------------------------------------------
@dataclass(frozen=True)
class Form:
    """One way of calling the module: with or without hx, batched or unbatched."""

    with_hx: bool
    unbatched: bool

    @property
    def label(self) -> str:
        return ("unbatched " if self.unbatched else "") + ("module(x, hx)" if self.with_hx else "module(x)")

    def free(self) -> tuple[str, ...]:
        """The free axis names of this form."""
        return (SEQ,) if self.unbatched else (BATCH, SEQ)


def forms(spec: RNNSpec) -> tuple[Form, ...]:
    """module(x), module(x, hx), and unbatched module(x) when the spec accepts 2-D input."""
    found = [Form(False, False), Form(True, False)]
    if spec.unbatched:
        found.append(Form(False, True))
    return tuple(found)


def unseen_sizes(spec: RNNSpec) -> tuple[tuple[int, int], tuple[int, int]]:
    """Two (batch, seq) pairs after ``pick_sizes``'s own: all four sizes differ from each other,
    from the example's batch and seq, and from every size the spec fixes."""
    taken = {spec.input_size, spec.hidden_size, spec.h_out, spec.num_layers * spec.num_directions}
    free = [n for n in range(3, 64) if n not in taken]
    return (free[2], free[3]), (free[4], free[5])


def _sizes(form: Form, batch: int, seq: int) -> str:
    return f"seq={seq}" if form.unbatched else f"batch={batch}, seq={seq}"


def _args(ctx: Context, form: Form, batch: int, seq: int) -> tuple[Any, ...]:
    """Positional arguments of one call, in the module's layout."""
    spec = ctx.spec
    if form.unbatched:
        x = ctx.randn(seq, spec.input_size)
    else:
        x = ctx.feed(ctx.randn(seq, batch, spec.input_size))
    if not form.with_hx:
        return (x,)
    state_batch = None if form.unbatched else batch
    h = ctx.randn(*spec.state_shape(state_batch, "h").sizes)
    if spec.has_cell:
        return (x, (h, ctx.randn(*spec.state_shape(state_batch, "c").sizes)))
    return (x, h)


def _by_name(ctx: Context, args: tuple[Any, ...]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """One call's (positional, keyword) arguments as the deployed module takes them: hx under
    the name its forward takes it by where that is not second (``forward(x, lengths=None,
    hx=None)``, ``forward(x, *, hx=None)``: rnn_contracts.conventions.hx_by_name), as the eager
    probes pass it; else positional, as torch's layers take it."""
    name = hx_by_name(ctx.module) if len(args) > 1 else None
    return (args, {}) if name is None else (args[:1], {name: args[1]})


def _flat(args: tuple[Any, ...]) -> list[torch.Tensor]:
    """x, h_0[, c_0] as a flat list (the ONNX file's inputs)."""
    out: list[torch.Tensor] = []
    for arg in args:
        out.extend(arg if isinstance(arg, tuple) else (arg,))
    return out


def _eager(ctx: Context, form: Form, args: tuple[Any, ...], where: str) -> Result:
    raw = ctx.call(*args, label=f"{form.label} at ({where})")
    return ctx.split(raw, batched=not form.unbatched)


def _compare(ctx: Context, got: Result, want: Result, why: str) -> None:
    ctx.assert_close("output", got.output, want.output, why)
    ctx.assert_close("h_n", got.h_n, want.h_n, why)
    if ctx.spec.has_cell:
        ctx.assert_close("c_n", got.c_n, want.c_n, why)


def _check_runs(ctx: Context, form: Form, run: Any, tool: str, sizes: Any) -> None:
    """Run ``run`` (a callable standing for the deployed module) at ``sizes`` against eager."""
    for batch, seq in sizes:
        where = _sizes(form, batch, seq)
        args = _args(ctx, form, batch, seq)
        want = _eager(ctx, form, args, where)
        positional, keywords = _by_name(ctx, args)
        try:
            with _quiet():
                raw = run(*positional, **keywords)
        except Exception as exc:
            raise ProbeFailure(f"{tool} rejected ({where}): {type(exc).__name__}: {_one_line(exc)}") from exc
        got = ctx.split(raw, batched=not form.unbatched)
        _compare(ctx, got, want, f"{tool} at ({where}) must equal the eager module")


# -- output hygiene ------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep exporters' warnings, log lines and progress prints out of the kit's output.

    Only what they print: an exception passes through untouched and becomes the evidence. File
    descriptor 2 is redirected too: torch 2.13's TorchScript ONNX exporter turns its C++ log on
    whatever the caller set (setup_onnx_logging tests the function object, not its result) and
    writes "Torch IR graph at exception" there before raising."""
    previous = logging.root.manager.disable
    sink = io.StringIO()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile() as native, warnings.catch_warnings(), \
            contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        for fd in saved:
            os.dup2(native.fileno(), fd)
        warnings.simplefilter("ignore")
        logging.disable(logging.CRITICAL)
        try:
            yield
        finally:
            logging.disable(previous)
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)


def _one_line(exc: BaseException, limit: int = 240) -> str:
    """The exception's message on one line, without onnxruntime's "Please fix ..." tail."""
    text = " ".join(str(exc).split())
    text = text.split(" Please fix")[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _require_module(ctx: Context, tool: str) -> torch.nn.Module:
    """The module, when it is an nn.Module in torch's layer convention: the deployed artifact is
    called as the layer is (a cell, an output-only module, or one that requires hx or takes none,
    is deployed inside the layer or model that calls it; check that one)."""
    if not isinstance(ctx.module, torch.nn.Module):
        raise NotApplicable(f"{tool} takes a torch.nn.Module; got {type(ctx.module).__name__}")
    spec = ctx.spec
    other = [text for text, differs in (("is a cell", spec.convention == "cell"),
                                         ("returns only its output", not spec.returns_states),
                                         ("requires hx", spec.requires_hx),
                                         ("takes no hx", not spec.takes_hx)) if differs]
    if other:
        raise NotApplicable(f"the deployment contracts call the deployed module as torch's layers are "
                            f"called, and this module {' and '.join(other)}: deploy and check the "
                            f"layer or model that calls it")
    return ctx.module


# -- torch.export --------------------------------------------------------------------------------
_SPECIALIZED = re.compile(r"You marked (\w+) as dynamic but your code specialized it to be a constant \((\d+)\)")


def _keep(shapes: Any, names: set[str]) -> Any:
    """``shapes`` with only the Dims named in ``names`` (others become static)."""
    if isinstance(shapes, dict):
        kept = {axis: dim for axis, dim in shapes.items() if dim.__name__ in names}
        return kept or None
    if isinstance(shapes, tuple):
        return tuple(_keep(s, names) for s in shapes)
    return shapes


def _export(ctx: Context, module: torch.nn.Module, args: tuple[Any, ...], shapes: Any) -> Any:
    """torch.export.export on one call; ``shapes`` (one entry per argument, x's first) matches
    the arguments in the forward's order, hx passed by name or not."""
    positional, keywords = _by_name(ctx, args)
    with _quiet():
        return torch.export.export(module, positional, kwargs=keywords or None, dynamic_shapes=shapes)


def _what_still_works(ctx: Context, module: torch.nn.Module, form: Form) -> str:
    """Export again with fewer dynamic axes, the others fixed at the example's sizes: the largest
    set that exports and equals eager at a new size of its dynamic axes, in words."""
    example = {BATCH: ctx.batch, SEQ: ctx.seq}
    shapes = dynamic_shapes(ctx.spec, with_hx=form.with_hx, unbatched=form.unbatched)
    free = form.free()
    last = ""
    for count in range(len(free) - 1, -1, -1):
        for names in itertools.combinations(free, count):
            fixed = [n for n in free if n not in names]
            fixed_text = ", ".join(f"{n} fixed at {example[n]}" for n in fixed)
            try:
                program = _export(ctx, module, _args(ctx, form, ctx.batch, ctx.seq), _keep(shapes, set(names)))
                new = unseen_sizes(ctx.spec)[0]
                size = {BATCH: new[0] if BATCH in names else ctx.batch,
                        SEQ: new[1] if SEQ in names else ctx.seq}
                _check_runs(ctx, form, program.module(), "torch.export's program", [(size[BATCH], size[SEQ])])
            except Exception as exc:  # noqa: BLE001 - any failure means: not this set
                last = f"{type(exc).__name__}: {_one_line(exc, 160)}"
                continue
            if names:
                return f"exports with {' and '.join(names)} dynamic, {fixed_text}"
            return f"exports only with every axis fixed ({fixed_text.replace(' fixed at ', '=')})"
    return f"does not export even with every axis fixed ({last})"


def _export_form(ctx: Context, module: torch.nn.Module, form: Form) -> str | None:
    """None when the form keeps the contract under torch.export, else the evidence."""
    free = " and ".join(form.free())
    shapes = dynamic_shapes(ctx.spec, with_hx=form.with_hx, unbatched=form.unbatched)
    try:
        program = _export(ctx, module, _args(ctx, form, ctx.batch, ctx.seq), shapes)
    except Exception as exc:  # noqa: BLE001 - the exporter's refusal is the evidence
        marked = _SPECIALIZED.findall(str(exc))
        if marked:
            frozen = ", ".join(f"{name} at {value}" for name, value in marked)
            cause = f"froze {frozen} ({marked[0][0]} was marked dynamic, the code specialized it)"
        else:
            cause = f"failed: {type(exc).__name__}: {_one_line(exc, 200)}"
        return (f"torch.export.export with {free} dynamic {cause}; "
                f"{_what_still_works(ctx, module, form)}")
    try:
        _check_runs(ctx, form, program.module(), "torch.export's program", unseen_sizes(ctx.spec))
    except ProbeFailure as exc:
        return str(exc)
    return None


def export(ctx: Context) -> None:
    """torch.export.export(module, args, dynamic_shapes=...) with batch and seq dynamic (the
    Dims of rnn_contracts.dynamic.dynamic_shapes) gives a program that, at two (batch, seq) sizes
    other than the example's, equals the eager module: output, h_n and c_n, with and without
    h_0, and unbatched when the spec accepts it (torch.export docs, "Expressing Dynamism"; the
    shapes of the torch.nn.RNN/LSTM/GRU docs). When export specializes an axis, the evidence
    names the axis and the value it was frozen at, and what still exports."""
    module = _require_module(ctx, "torch.export")
    problems = []
    with torch.no_grad():
        for form in forms(ctx.spec):
            problem = _export_form(ctx, module, form)
            if problem:
                problems.append(f"[{form.label}] {problem}")
    if problems:
        raise ProbeFailure("; ".join(problems))


# -- ONNX ----------------------------------------------------------------------------------------
def _import(name: str) -> Any:
    try:
        with _quiet():
            return importlib.import_module(name)
    except ImportError as exc:
        raise NotApplicable(f"the onnx contract needs {name}, which is not installed: {INSTALL}") from exc


def _exporter_available(exporter: str) -> str | None:
    """None when the exporter can run, else why not."""
    if exporter == "dynamo":
        try:
            with _quiet():
                importlib.import_module("onnxscript")
        except ImportError:
            return "not available: the dynamo exporter needs onnxscript (pip install onnxscript)"
    return None


def _declared(onnx_pkg: Any, path: Path, spec: RNNSpec, form: Form, names: list[str]) -> str | None:
    """What the file declares against the contract: missing inputs, or free axes fixed to a size."""
    graph = onnx_pkg.load(str(path), load_external_data=False).graph
    weights = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    found = [i.name for i in inputs]
    if found != names:
        why = (": the initial state is baked into the file, a given h_0 is ignored"
               if len(found) < len(names) else "")
        return f"the file's inputs are {found}, expected {names}{why}"
    role = {"x": "input", "h_0": "h_0", "c_0": "c_0"}
    frozen = []
    for value in inputs:
        dims = value.type.tensor_type.shape.dim
        for axis, axis_name in axes(spec, role[value.name], unbatched=form.unbatched).items():
            if axis < len(dims) and dims[axis].HasField("dim_value"):
                frozen.append(f"{value.name}'s {axis_name} axis (dim {axis}) fixed at {dims[axis].dim_value}")
    if frozen:
        return "the exporter reported success, and the file declares " + ", ".join(frozen)
    return None


def _onnx_form(ctx: Context, module: torch.nn.Module, form: Form, exporter: str,
               onnx_pkg: Any, ort: Any, folder: Path) -> str | None:
    """None when this exporter's file keeps the contract for this form, else the evidence."""
    spec = ctx.spec
    path = folder / f"{exporter}-{int(form.with_hx)}{int(form.unbatched)}.onnx"
    inputs, outputs = onnx_names(spec, with_hx=form.with_hx)
    example, keywords = _by_name(ctx, _args(ctx, form, ctx.batch, ctx.seq))
    try:
        with _quiet():
            if exporter == "dynamo":
                torch.onnx.export(module, example, str(path), kwargs=keywords or None, dynamo=True, input_names=inputs,
                                  output_names=outputs, external_data=False,
                                  dynamic_shapes=dynamic_shapes(spec, with_hx=form.with_hx,
                                                                unbatched=form.unbatched))
            else:
                torch.onnx.export(module, example, str(path), kwargs=keywords or None, dynamo=False,
                                  input_names=inputs,
                                  output_names=outputs,
                                  dynamic_axes=dynamic_axes(spec, with_hx=form.with_hx,
                                                            unbatched=form.unbatched))
    except Exception as exc:  # noqa: BLE001 - the exporter's refusal is the evidence
        return f"export failed: {type(exc).__name__}: {_one_line(exc, 200)}"
    declared = _declared(onnx_pkg, path, spec, form, inputs)
    if declared:
        return declared
    options = ort.SessionOptions()
    options.log_severity_level = 4  # fatal only: its own error log repeats the exception we report
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001
        return f"onnxruntime cannot load the file: {_one_line(exc, 200)}"

    def run(*args: Any, **keywords: Any) -> Any:  # the file's inputs: x, then hx's tensors
        feeds = {name: t.detach().cpu().numpy() for name, t in zip(inputs, _flat(args + tuple(keywords.values())))}
        got = [torch.from_numpy(a).to(device=ctx.device, dtype=ctx.dtype) for a in session.run(outputs, feeds)]
        return (got[0], (got[1], got[2])) if spec.has_cell else (got[0], got[1])

    try:
        _check_runs(ctx, form, run, "onnxruntime", unseen_sizes(spec))
    except ProbeFailure as exc:
        return str(exc)
    return None


def onnx_verdicts(ctx: Context) -> dict[str, str | None]:
    """Each ONNX exporter's verdict: None when its files keep the contract on every call form,
    else the evidence (the first broken form, or why the exporter is not available)."""
    module = _require_module(ctx, "ONNX export")
    if ctx.dtype != torch.float32:
        raise NotApplicable(f"the onnx contract runs in float32 (the module is {ctx.dtype})")
    onnx_pkg = _import("onnx")
    ort = _import("onnxruntime")
    verdicts: dict[str, str | None] = {}
    with tempfile.TemporaryDirectory(prefix="rnn-contracts-onnx-") as tmp, torch.no_grad():
        for exporter in EXPORTERS:
            verdicts[exporter] = _exporter_available(exporter)
            if verdicts[exporter]:
                continue
            for form in forms(ctx.spec):
                problem = _onnx_form(ctx, module, form, exporter, onnx_pkg, ort, Path(tmp))
                if problem:
                    verdicts[exporter] = f"[{form.label}] {problem}"
                    break
    return verdicts


def onnx(ctx: Context) -> None:
    """torch.onnx.export with batch and seq dynamic (dynamo=True with rnn_contracts.dynamic's
    dynamic_shapes, dynamo=False with its dynamic_axes) gives a file that loads in onnxruntime
    and, at two (batch, seq) sizes other than the example's, equals the eager module: output,
    h_n, c_n, with and without h_0, unbatched when the spec accepts it (torch.onnx.export docs;
    the torch.nn.RNN/LSTM/GRU shapes). The contract holds when at least one exporter keeps it;
    the note ``ctx.cached("notes", dict)["onnx"]`` names what each exporter did, and a
    failure lists every exporter's evidence (a frozen axis with its size, a rejected size, a
    missing h_0 input, or the worst position of a value drift)."""
    verdicts = onnx_verdicts(ctx)
    text = "; ".join(f"{name} exporter: {problem or 'kept the contract'}" for name, problem in verdicts.items())
    ctx.cached("notes", dict)["onnx"] = text
    if all(_exporter_available(exporter) is not None for exporter in verdicts):
        raise NotApplicable(f"no ONNX exporter can run: {text}")
    if not any(problem is None for problem in verdicts.values()):
        raise ProbeFailure(text)


# -- torch.compile -------------------------------------------------------------------------------
def compile(ctx: Context) -> None:  # noqa: A001 - the contract's name
    """torch.compile(module) (inductor, the default backend) equals the eager module at the
    example size and at a second (batch, seq) size, for every call form; and the contracts
    state_carry and causality hold on the compiled module (torch.compile docs: a compiled module
    computes what the eager one does; torch 2.13's Dynamo graph-breaks on nn.RNN/LSTM/GRU and
    runs them eagerly, so for torch's own layers this mostly checks the code around them)."""
    from rnn_contracts.probes.state import state_carry
    from rnn_contracts.probes.temporal import causality

    module = _require_module(ctx, "torch.compile")
    try:
        with _quiet():
            compiled = torch.compile(module)
    except Exception as exc:  # noqa: BLE001
        raise ProbeFailure(f"torch.compile refused the module: {type(exc).__name__}: {_one_line(exc)}") from exc
    sizes = [(ctx.batch, ctx.seq), unseen_sizes(ctx.spec)[0]]
    with torch.no_grad():
        for form in forms(ctx.spec):
            _check_runs(ctx, form, compiled, f"torch.compile(module) on {form.label}", sizes)
        inner = Context(compiled, ctx.spec, ctx.device, ctx.dtype)
        for contract in (state_carry, causality):
            try:
                with _quiet():
                    contract(inner)
            except NotApplicable:
                continue
            except ProbeFailure as exc:
                raise ProbeFailure(f"on the compiled module, {contract.__name__}: {exc}") from exc


#: The deployment contracts, opt-in (verify_rnn runs CONTRACTS by default, never these).
DEPLOY_CONTRACTS: tuple[Contract, ...] = tuple(Contract(fn.__name__, fn, ("shapes", "finite"))
                                               for fn in (export, onnx, compile))
DEPLOY_NAMES: tuple[str, ...] = tuple(c.name for c in DEPLOY_CONTRACTS)
__all__ = ["DEPLOY_CONTRACTS", "DEPLOY_NAMES", "EXPORTERS", "INSTALL", "Form", "compile", "export", "forms", "onnx",
           "onnx_verdicts", "unseen_sizes"]
