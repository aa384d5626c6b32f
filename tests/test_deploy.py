"""Deployment contracts: dynamic shapes from the spec, and what torch 2.13's exporters, onnxruntime
and torch.compile really do to torch's recurrent layers and to hand-written ones.

The verdicts asserted here are torch 2.13.0's (CPU), measured: torch.export freezes the time axis
of nn.RNN/LSTM/GRU; the dynamo ONNX exporter reports success and writes a file that rejects other
sizes; the TorchScript ONNX exporter keeps both axes except for LSTM with proj_size, which it
refuses; torch.compile keeps the contract. Exporter runs take seconds: they are marked slow.
"""
from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.export import Dim

from rnn_contracts import RNNSpec
from rnn_contracts.dynamic import axes, dynamic_axes, dynamic_shapes, onnx_names
from rnn_contracts.probes.base import Context, NotApplicable, ProbeFailure, pick_sizes
from rnn_contracts.probes.deploy import (
    DEPLOY_CONTRACTS, DEPLOY_NAMES, INSTALL, compile, export, forms, onnx, onnx_verdicts, unseen_sizes,
)
from rnn_contracts.wrapper import checked


def seeded(make: Callable[[], nn.Module]) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return make().eval()


def context(module: object, spec: RNNSpec | None = None, dtype: torch.dtype = torch.float32) -> Context:
    return Context(module, spec or RNNSpec.from_module(module), torch.device("cpu"), dtype)


def verdict(probe: Callable[[Context], None], module: object, spec: RNNSpec | None = None) -> tuple[str, str]:
    """("passed" | "failed" | "not applicable", evidence) of one deployment probe."""
    try:
        probe(context(module, spec))
    except ProbeFailure as exc:
        return "failed", str(exc)
    except NotApplicable as exc:
        return "not applicable", str(exc)
    return "passed", ""


# -- hand-written recurrent modules, torch's calling convention: module(x, hx=None) -> (output, h_n)
class Integrator(nn.Module):
    """h_t = h_{t-1} + tanh(W x_t + b), seq-first, written with cumsum: no Python loop over time,
    so nothing specializes the sequence length."""

    mode, input_size, hidden_size = "RNN", 4, 3

    def __init__(self) -> None:
        super().__init__()
        self.ih = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h0 = x.new_zeros(1, x.shape[1], 3) if hx is None else hx
        out = h0 + torch.cumsum(torch.tanh(self.ih(x)), dim=0)
        return out, out[-1:].clone()


class HxAfterLengths(Integrator):
    """The Integrator, its forward taking hx third (the kit passes it by name)."""

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None,  # type: ignore[override]
                hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return super().forward(x, hx)


class HxKeywordOnly(Integrator):
    """The same, its hx keyword-only."""

    def forward(self, x: torch.Tensor, *, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        return super().forward(x, hx)


class LoopElman(nn.Module):
    """An Elman RNN with a Python loop over ``range(int(x.shape[0]))``: correct in eager, and the
    loop bakes the example's length into any traced or exported graph."""

    mode, input_size, hidden_size = "RNN", 4, 3

    def __init__(self) -> None:
        super().__init__()
        self.ih = nn.Linear(4, 3)
        self.hh = nn.Linear(3, 3, bias=False)

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = x.new_zeros(x.shape[1], 3) if hx is None else hx[0]
        outs = []
        for t in range(int(x.shape[0])):
            h = torch.tanh(self.ih(x[t]) + self.hh(h))
            outs.append(h)
        return torch.stack(outs), h.unsqueeze(0)


# -- dynamic shapes from the spec (fast) --------------------------------------------------------
def names(shapes: object) -> object:
    """Dims replaced by their names, for comparison."""
    if isinstance(shapes, dict):
        return {axis: dim.__name__ for axis, dim in shapes.items()}
    if isinstance(shapes, tuple):
        return tuple(names(s) for s in shapes)
    return shapes


def test_dynamic_shapes_follow_the_layout() -> None:
    gru = RNNSpec("GRU", 4, 3)
    assert names(dynamic_shapes(gru)) == ({0: "seq", 1: "batch"},)
    assert names(dynamic_shapes(gru.replace(batch_first=True))) == ({0: "batch", 1: "seq"},)
    assert names(dynamic_shapes(gru, unbatched=True)) == ({0: "seq"},)
    # h_0 is (layers*D, batch, H) whatever batch_first says; unbatched it has no free axis.
    assert names(dynamic_shapes(gru.replace(batch_first=True), with_hx=True)) == (
        {0: "batch", 1: "seq"}, {1: "batch"})
    assert names(dynamic_shapes(gru, with_hx=True, unbatched=True)) == ({0: "seq"}, None)


def test_dynamic_shapes_lstm_states_and_shared_dims() -> None:
    lstm = RNNSpec("LSTM", 4, 6, proj_size=2, num_layers=2, bidirectional=True)
    x, (h, c) = dynamic_shapes(lstm, with_hx=True)
    assert names((x, (h, c))) == ({0: "seq", 1: "batch"}, ({1: "batch"}, {1: "batch"}))
    assert x[1] is h[1] is c[1]  # one Dim: export binds the batch of x, h_0 and c_0 together
    assert isinstance(x[0], type(Dim("seq")))


def test_dynamic_shapes_packed_and_errors() -> None:
    gru = RNNSpec("GRU", 4, 3)
    assert names(dynamic_shapes(gru, packed=True)) == (({0: "total"}, {0: "seq"}, {0: "batch"}, {0: "batch"}),)
    with pytest.raises(ValueError, match="exclude each other"):
        dynamic_shapes(gru, packed=True, unbatched=True)
    with pytest.raises(ValueError, match="no cell state"):
        axes(gru, "c_0")
    with pytest.raises(ValueError, match="unknown tensor"):
        axes(gru, "x")


def test_onnx_names_and_dynamic_axes() -> None:
    lstm = RNNSpec("LSTM", 4, 3, batch_first=True)
    assert onnx_names(lstm, with_hx=True) == (["x", "h_0", "c_0"], ["output", "h_n", "c_n"])
    assert dynamic_axes(lstm, with_hx=True) == {
        "x": {0: "batch", 1: "seq"}, "h_0": {1: "batch"}, "c_0": {1: "batch"},
        "output": {0: "batch", 1: "seq"}, "h_n": {1: "batch"}, "c_n": {1: "batch"},
    }
    assert dynamic_axes(RNNSpec("GRU", 4, 3), unbatched=True) == {"x": {0: "seq"}, "output": {0: "seq"}}


@pytest.mark.parametrize("spec", [RNNSpec("GRU", 4, 3, num_layers=2, bidirectional=True),
                                  RNNSpec("LSTM", 3, 5, proj_size=4), RNNSpec("RNN", 6, 7)])
def test_unseen_sizes_differ_from_the_example_and_the_spec(spec: RNNSpec) -> None:
    (b1, s1), (b2, s2) = unseen_sizes(spec)
    sizes = [*pick_sizes(spec), b1, s1, b2, s2]
    assert len(set(sizes)) == 6
    assert not set(sizes) & {spec.input_size, spec.hidden_size, spec.h_out, spec.num_layers * spec.num_directions}


def test_contract_names_and_forms() -> None:
    assert DEPLOY_NAMES == ("export", "onnx", "compile")
    assert [c.probe for c in DEPLOY_CONTRACTS] == [export, onnx, compile]
    assert all(c.doc for c in DEPLOY_CONTRACTS)
    labels = [f.label for f in forms(RNNSpec.from_module(nn.GRU(4, 3)))]
    assert labels == ["module(x)", "module(x, hx)", "unbatched module(x)"]
    assert len(forms(RNNSpec("GRU", 4, 3))) == 2  # a spec without unbatched support


# -- not applicable, never a crash (fast) ------------------------------------------------------
@pytest.mark.parametrize("package", ["onnx", "onnxruntime"])
def test_onnx_without_its_package_is_not_applicable(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # import raises ImportError
    status, reason = verdict(onnx, nn.GRU(4, 3))
    assert status == "not applicable"
    assert package in reason and INSTALL in reason and "pip install onnx onnxruntime onnxscript" in reason


def test_dynamo_exporter_without_onnxscript_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the dynamo exporter needs onnxscript; its verdict says so and the other one runs."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    import rnn_contracts.probes.deploy as deploy

    monkeypatch.setattr(deploy, "EXPORTERS", ("dynamo",))
    status, reason = verdict(onnx, nn.GRU(4, 3))
    assert status == "not applicable"
    assert "no ONNX exporter can run" in reason and "pip install onnxscript" in reason


def test_plain_callables_and_other_dtypes_are_not_applicable() -> None:
    gru = nn.GRU(4, 3)

    def fn(x: torch.Tensor, hx: torch.Tensor | None = None) -> object:
        return gru(x, hx)

    spec = RNNSpec.from_module(gru)
    assert verdict(export, fn, spec)[0] == "not applicable"
    assert "torch.nn.Module" in verdict(onnx, fn, spec)[1]
    with pytest.raises(NotApplicable, match="float32"):
        onnx(context(gru.double(), dtype=torch.float64))


# -- torch 2.13's own layers (slow) ------------------------------------------------------------
LAYOUTS = {
    "seq-first": {},
    "batch-first": {"batch_first": True},
    "bidirectional-2-layer": {"num_layers": 2, "bidirectional": True},
}
TORCH_CASES = [(cls, layout) for cls in (nn.RNN, nn.LSTM, nn.GRU) for layout in LAYOUTS] + [
    (nn.LSTM, "proj_size")]


def torch_layer(cls: type[nn.Module], layout: str) -> nn.Module:
    if layout == "proj_size":
        return seeded(lambda: nn.LSTM(4, 6, proj_size=2, batch_first=True))
    return seeded(lambda: cls(4, 3, **LAYOUTS[layout]))


def case_id(case: tuple[type, str]) -> str:
    return f"{case[0].__name__}-{case[1]}"


@pytest.mark.slow
@pytest.mark.parametrize("case", TORCH_CASES, ids=case_id)
def test_torch_export_freezes_the_time_axis_of_torch_layers(case: tuple[type, str]) -> None:
    module = torch_layer(*case)
    ctx = context(module)
    with pytest.raises(ProbeFailure) as info:
        export(ctx)
    text = str(info.value)
    # Every form names the exporter, the frozen axis and its value, and what still exports.
    for form in ("[module(x)]", "[module(x, hx)]", "[unbatched module(x)]"):
        assert form in text
    assert text.count(f"torch.export.export with batch and seq dynamic froze seq at {ctx.seq}") == 2
    assert text.count(f"exports with batch dynamic, seq fixed at {ctx.seq}") == 2
    assert f"exports only with every axis fixed (seq={ctx.seq})" in text


@pytest.mark.slow
@pytest.mark.parametrize("case", [(nn.RNN, "seq-first"), (nn.GRU, "bidirectional-2-layer"),
                                  (nn.LSTM, "batch-first"), (nn.LSTM, "proj_size")], ids=case_id)
def test_onnx_exporters_on_torch_layers(case: tuple[type, str]) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    module = torch_layer(*case)
    ctx = context(module)
    verdicts = onnx_verdicts(ctx)
    # The dynamo exporter reports success and writes a file with a frozen axis: the form varies
    # (declared fixed in the file, or rejected by onnxruntime in a Reshape), never kept.
    assert verdicts["dynamo"] is not None
    assert "fixed at" in verdicts["dynamo"] or "onnxruntime rejected" in verdicts["dynamo"]
    if case[1] == "proj_size":
        assert "LSTMs with projections" in (verdicts["torchscript"] or "")
        with pytest.raises(ProbeFailure, match="dynamo exporter: .*; torchscript exporter: .*projections"):
            onnx(context(module))
    else:
        assert verdicts["torchscript"] is None
        onnx(ctx)  # the contract holds: one exporter keeps it
        assert "torchscript exporter: kept the contract" in ctx.cached("notes", dict)["onnx"]


@pytest.mark.slow
@pytest.mark.parametrize("case", [(nn.RNN, "batch-first"), (nn.GRU, "bidirectional-2-layer"),
                                  (nn.LSTM, "proj_size")], ids=case_id)
def test_compile_keeps_the_contract_of_torch_layers(case: tuple[type, str]) -> None:
    compile(context(torch_layer(*case)))


# -- hand-written modules (slow) ---------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("probe", [export, onnx, compile], ids=lambda p: p.__name__)
def test_a_loop_free_hand_written_module_keeps_every_deployment_contract(probe: Callable[[Context], None]) -> None:
    if probe is onnx:
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    ctx = context(seeded(Integrator))
    probe(ctx)
    if probe is onnx:
        assert ctx.cached("notes", dict)["onnx"] == (
            "dynamo exporter: kept the contract; torchscript exporter: kept the contract")


@pytest.mark.slow
def test_the_dynamo_onnx_exporter_keeps_the_contract_where_hx_is_keyword_only() -> None:
    """hx passed by its keyword (tests/test_kills_deploy.py has the fast forms); the TorchScript
    exporter refuses a keyword-only parameter there, which the note names, and one exporter that
    keeps the contract is the contract."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    ctx = context(seeded(HxKeywordOnly))
    onnx(ctx)
    assert ctx.cached("notes", dict)["onnx"].startswith("dynamo exporter: kept the contract; torchscript exporter: "
                                                       "[module(x)] export failed: TypeError: ")


@pytest.mark.slow
def test_export_catches_a_python_loop_over_time() -> None:
    ctx = context(seeded(LoopElman))
    with pytest.raises(ProbeFailure) as info:
        export(ctx)
    assert f"[module(x)] torch.export.export with batch and seq dynamic froze seq at {ctx.seq}" in str(info.value)
    assert f"exports with batch dynamic, seq fixed at {ctx.seq}" in str(info.value)


@pytest.mark.slow
def test_onnx_catches_a_python_loop_over_time() -> None:
    """The TorchScript exporter unrolls the loop: its file returns the example's number of steps
    at any length. The dynamo exporter declares the frozen axis in the file."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    ctx = context(seeded(LoopElman))
    (batch, seq), _ = unseen_sizes(ctx.spec)
    with pytest.raises(ProbeFailure) as info:
        onnx(ctx)
    text = str(info.value)
    assert f"dynamo exporter: [module(x)] the exporter reported success, and the file declares x's seq axis (dim 0) fixed at {ctx.seq}" in text
    assert (f"torchscript exporter: [module(x)] onnxruntime at (batch={batch}, seq={seq}) must equal the eager "
            f"module: output has shape ({ctx.seq}, {batch}, 3), expected ({seq}, {batch}, 3)") in text


@pytest.mark.slow
def test_onnx_reports_value_drift_with_the_worst_position(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that computes something else at the new sizes: the evidence is the worst position."""
    pytest.importorskip("onnxruntime")
    import rnn_contracts.probes.deploy as deploy

    monkeypatch.setattr(deploy, "EXPORTERS", ("torchscript",))
    module = seeded(lambda: nn.GRU(4, 3))
    ctx = context(module)
    real = ctx.call

    def drifted(*args: object, label: str) -> object:  # eager answers shifted by 0.01
        output, h_n = real(*args, label=label)
        return output + 0.01, h_n

    monkeypatch.setattr(ctx, "call", drifted)
    with pytest.raises(ProbeFailure, match=r"torchscript exporter: \[module\(x\)\] onnxruntime at "
                                           r"\(batch=\d+, seq=\d+\) must equal the eager module: "
                                           r"output\[\d+, \d+, \d+\] expected .* \|difference\| 0\.01"):
        onnx(ctx)


# -- checked() under export and compile (slow): what torch 2.13 does today ----------------------
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Dynamo does not know how to trace")
def test_checked_module_under_export_and_compile() -> None:
    """checked(module) steps aside while torch.export / torch.compile capture it: export with
    the contract's dynamic shapes and fullgraph compile both work and equal the eager module at
    an unseen size (before, the verdict cache hashed a symbolic size and fullgraph compile could
    not trace the jaxtyping/typeguard check)."""
    wrapped = checked(seeded(Integrator))
    x, other = torch.randn(6, 5, 4), torch.randn(9, 7, 4)
    program = torch.export.export(wrapped, (x,), dynamic_shapes=dynamic_shapes(RNNSpec.from_module(wrapped)))
    torch.testing.assert_close(program.module()(other)[0], wrapped(other)[0])
    compiled = torch.compile(checked(seeded(Integrator)), fullgraph=True)
    torch.testing.assert_close(compiled(other)[0], wrapped(other)[0])
