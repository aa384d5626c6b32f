"""The deployment contracts (rnn_contracts.probes.deploy), pinned where tests/test_deploy.py's slow
cases do not run: the mutation tool runs ``-m 'not slow'``, so every test here is fast (one small
module, the TorchScript ONNX exporter alone where the verdict does not need dynamo).

Kills (mutation/README.md): _compare without its output, h_n or c_n check (a traced file that bakes
the example's length into exactly one of the three passed); _one_line's ``<=`` negated (every
short message got "..."); _require_module without its convention guard; _keep's ``kept or None``
made ``and`` (what still exports lost its dynamic axis); export() without its final raise;
_declared's input-name comparison negated; onnx() without its "no exporter kept it" raise or with
its ``is None`` negated; the ``except ProbeFailure`` of the export and onnx comparisons, and of
compile's inner contracts, widened to ``Exception`` (an error that is no verdict became one);
compile's ``except NotApplicable`` widened (it swallowed the compiled module's state_carry failure).
"""
from __future__ import annotations

import re

import pytest
import torch
from test_deploy import HxAfterLengths, HxKeywordOnly, LoopElman, context, seeded, verdict
from torch import nn

import rnn_contracts.probes.deploy as deploy
import rnn_contracts.probes.state as state_probes
from rnn_contracts import RNNSpec
from rnn_contracts.probes.base import ProbeFailure, pick_sizes
from rnn_contracts.probes.deploy import compile, export, onnx, unseen_sizes

NUMBER = r"-?[\d.]+(?:e[-+]?\d+)?"


@pytest.fixture
def torchscript_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The onnx contract with the TorchScript exporter alone: its verdict is the contract's (and
    it takes a tenth of a second, where dynamo takes seconds)."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(deploy, "EXPORTERS", ("torchscript",))


# -- modules -----------------------------------------------------------------------------------
class Leaky(nn.Module):
    """LSTM convention, seq-first, no Python loop over time: c_t = c_{t-1} + tanh(W x_t + b),
    h_t = tanh(c_t + h_0). Correct in eager. ``baked`` names the one result that is cut with
    ``n = int(x.shape[0])``: tracing (the TorchScript ONNX exporter) bakes n = the example's length,
    so that result alone is wrong at another length: ``output`` keeps n steps (a shape error),
    ``h_n`` / ``c_n`` are taken at step n - 1 (a value error)."""

    mode, input_size, hidden_size = "LSTM", 4, 3

    def __init__(self, baked: str) -> None:
        super().__init__()
        self.baked = baked
        self.ih = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple:
        if hx is None:
            h0 = c0 = x.new_zeros(1, x.shape[1], 3)
        else:
            h0, c0 = hx
        c = c0 + torch.cumsum(torch.tanh(self.ih(x)), dim=0)
        out = torch.tanh(c + h0)
        n = int(x.shape[0])
        output = out[:n] if self.baked == "output" else out
        h_n = out[n - 1:n] if self.baked == "h_n" else out[-1:]
        c_n = c[n - 1:n] if self.baked == "c_n" else c[-1:]
        return output, (h_n.clone(), c_n.clone())


class TupleState(nn.Module):
    """The loop-free Integrator of tests/test_deploy.py, returning its state in a 1-tuple,
    ``(output, (h_n,))``: every exporter keeps that, and the comparison cannot read it (an
    AttributeError, no contract verdict; verify_rnn reports it as "the module's result broke the
    probe", after shapes has failed on it)."""

    mode, input_size, hidden_size = "RNN", 4, 3

    def __init__(self) -> None:
        super().__init__()
        self.ih = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None) -> tuple:
        h0 = x.new_zeros(1, x.shape[1], 3) if hx is None else hx
        out = h0 + torch.cumsum(torch.tanh(self.ih(x)), dim=0)
        return out, (out[-1:].clone(),)


class IgnoresHx(nn.Module):
    """A GRU wrapper that drops the h_0 it is given (a real bug: ``self.gru(x)``)."""

    mode, input_size, hidden_size = "GRU", 4, 3

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(4, 3)

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None) -> tuple:
        return self.gru(x)


class OutputOnly(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(4, 6)

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        return self.gru(x, hx)[0]


# -- _compare: output, h_n and c_n are each compared --------------------------------------------
def test_a_file_with_the_wrong_number_of_steps_fails_onnx(torchscript_only: None) -> None:
    module = seeded(lambda: Leaky("output"))
    spec = RNNSpec.from_module(module)
    example_seq = pick_sizes(spec)[1]
    (batch, seq), _ = unseen_sizes(spec)
    assert verdict(onnx, module) == ("failed", (
        f"torchscript exporter: [module(x)] onnxruntime at (batch={batch}, seq={seq}) must equal the "
        f"eager module: output has shape ({example_seq}, {batch}, 3), expected ({seq}, {batch}, 3)"))


@pytest.mark.parametrize("state", ["h_n", "c_n"])
def test_a_file_with_a_stale_final_state_fails_onnx(torchscript_only: None, state: str) -> None:
    """Output right, the one final state taken at the example's last step: that state's worst
    position is the evidence (killed with the check: "kept the contract", onnx passed)."""
    (batch, seq), _ = unseen_sizes(RNNSpec.from_module(Leaky(state)))
    status, evidence = verdict(onnx, seeded(lambda: Leaky(state)))
    assert status == "failed"
    assert re.fullmatch(
        rf"torchscript exporter: \[module\(x\)\] onnxruntime at \(batch={batch}, seq={seq}\) must equal "
        rf"the eager module: {state}\[0, \d, \d\] expected {NUMBER}, actual {NUMBER}, \|difference\| "
        rf"{NUMBER} \(allowed atol 1e-05 \+ rtol 1.3e-06 \* \|expected\|\)", evidence), evidence


# -- _declared: the file's inputs are the contract's --------------------------------------------
def test_a_file_without_h_0_names_the_baked_initial_state(torchscript_only: None) -> None:
    """module(x) keeps the contract (inputs ['x'] as expected); module(x, hx) loses h_0."""
    assert verdict(onnx, seeded(IgnoresHx)) == ("failed", (
        "torchscript exporter: [module(x, hx)] the file's inputs are ['x'], expected ['x', 'h_0']: "
        "the initial state is baked into the file, a given h_0 is ignored"))


# -- errors that are no verdict propagate ---------------------------------------------------------
def test_export_lets_an_unreadable_result_propagate() -> None:
    """Only a ProbeFailure of the comparison is the form's evidence; an AttributeError is not
    turned into "[module(x)] 'tuple' object has no attribute 'shape'"."""
    with pytest.raises(AttributeError) as caught:
        export(context(seeded(TupleState)))
    assert str(caught.value) == "'tuple' object has no attribute 'shape'"


def test_onnx_lets_an_unreadable_result_propagate(torchscript_only: None) -> None:
    """Not an exporter's verdict (which another exporter could outvote): the error itself."""
    with pytest.raises(AttributeError) as caught:
        onnx(context(seeded(TupleState)))
    assert str(caught.value) == "'tuple' object has no attribute 'shape'"


def test_compile_reports_state_carry_broken_on_the_compiled_module() -> None:
    """The compiled module equals eager (both ignore h_0); state_carry on it fails, and that
    failure is compile's, never skipped as if it did not apply."""
    status, evidence = verdict(compile, seeded(IgnoresHx))
    assert status == "failed"
    assert re.fullmatch(
        rf"on the compiled module, state_carry: two chunks \(steps :5 then 5: with the state passed on\) "
        rf"must equal one run: output\[\d, \d, \d\] expected {NUMBER}, actual {NUMBER}, \|difference\| "
        rf"{NUMBER} \(allowed atol 1e-05 \+ rtol 1.3e-06 \* \|expected\|\)", evidence), evidence


def test_compile_lets_an_inner_contracts_error_propagate(monkeypatch: pytest.MonkeyPatch) -> None:
    """An inner contract's ProbeFailure is re-worded "on the compiled module, ..."; an error of
    another kind (here state_carry's own bug) propagates as it is."""
    bug = RuntimeError("state_carry's own bug")

    def state_carry(ctx: object) -> None:
        raise bug

    monkeypatch.setattr(state_probes, "state_carry", state_carry)
    with pytest.raises(RuntimeError) as caught:
        compile(context(seeded(lambda: nn.GRU(4, 3))))
    assert caught.value is bug


# -- hx where the module's forward takes it: by name when not second ----------------------------
#: (probe, module) pairs. Not onnx on HxKeywordOnly here: the TorchScript exporter (the fast one)
#: hands a keyword-only parameter its default positionally and raises TypeError even for
#: module(x) (torch 2.13); the dynamo exporter keeps the contract there (tests/test_deploy.py,
#: slow). Not compile on HxKeywordOnly: the same path as HxAfterLengths, 0.6 s more.
BY_NAME = [(export, HxAfterLengths), (export, HxKeywordOnly), (onnx, HxAfterLengths), (compile, HxAfterLengths)]


@pytest.mark.parametrize(("probe", "make"), BY_NAME, ids=[f"{p.__name__}-{m.__name__}" for p, m in BY_NAME])
def test_the_deployed_module_gets_hx_by_its_forwards_name(probe: object, make: type, request: pytest.FixtureRequest) -> None:
    """The deployed module is called as the eager probes call it (conventions.hx_by_name), in
    the example call (export, onnx) and in the comparisons, and torch.compile's wrapper, whose
    forward takes ``*args, **kwargs``, is read through the module it compiled (compile's inner
    state_carry and causality). Passed second, hx landed in ``lengths`` or raised: every
    deployment contract failed on a module that keeps them."""
    if probe is onnx:
        request.getfixturevalue("torchscript_only")
    assert verdict(probe, seeded(make)) == ("passed", "")


# -- _one_line: exporter messages on one line, cut at the limit ----------------------------------
@pytest.mark.parametrize(("message", "shown"), [
    ("inductor is not available\n    on this   machine. Please fix the model.", "inductor is not available on this machine."),
    ("x" * 300, "x" * 237 + "..."),
    ("y" * 240, "y" * 240),
])
def test_a_refusing_compiler_is_quoted_on_one_line(monkeypatch: pytest.MonkeyPatch, message: str, shown: str) -> None:
    def refuse(module: nn.Module) -> nn.Module:
        raise RuntimeError(message)

    monkeypatch.setattr(torch, "compile", refuse)
    assert verdict(compile, nn.GRU(4, 3)) == ("failed", f"torch.compile refused the module: RuntimeError: {shown}")


# -- _require_module: torch's layer convention only ----------------------------------------------
@pytest.mark.parametrize("probe", [export, onnx, compile], ids=lambda p: p.__name__)
def test_a_module_outside_the_layer_convention_is_not_applicable(probe: object) -> None:
    tail = ": deploy and check the layer or model that calls it"
    head = "the deployment contracts call the deployed module as torch's layers are called, and this module "
    output_only = RNNSpec("GRU", 4, 6, returns_states=False, requires_hx=True)
    assert verdict(probe, seeded(OutputOnly), output_only) == (
        "not applicable", head + "returns only its output and requires hx" + tail)
    cell = seeded(lambda: nn.GRUCell(4, 3))
    assert verdict(probe, cell) == ("not applicable", head + "is a cell" + tail)


# -- export: what still exports, and the failure itself ------------------------------------------
def test_export_of_a_python_loop_fails_and_names_what_still_exports() -> None:
    """LoopElman's loop freezes seq; exported again with batch alone dynamic, it keeps the
    contract at a new batch (with the Dims dropped, only every axis fixed would)."""
    ctx = context(seeded(LoopElman))
    evidence = (f"torch.export.export with batch and seq dynamic froze seq at {ctx.seq} (seq was marked "
                f"dynamic, the code specialized it); exports with batch dynamic, seq fixed at {ctx.seq}")
    with pytest.raises(ProbeFailure) as caught:
        export(ctx)
    assert str(caught.value) == f"[module(x)] {evidence}; [module(x, hx)] {evidence}"

