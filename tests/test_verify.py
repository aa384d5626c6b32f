"""verify_rnn's API: the report, the violation, contract selection, no trace on the module,
crashes as evidence, device / dtype copies, and the spec it needs.

What verify_rnn catches and that it never flags a correct module is measured by the zoo
(tests/test_zoo.py); this file pins how it behaves around that.
"""
from __future__ import annotations

import json
import re

import pytest
import torch
from torch import nn

from rnn_contracts.errors import render_violation
from rnn_contracts import (
    CONTRACT_NAMES,
    ContractReport,
    ContractViolation,
    RNNSpec,
    SpecError,
    verify_rnn,
)
from zoo import CORRECT, FAULTY
from zoo.faulty_math import InputNoise
from zoo.loops import TorchLoop


def faulty(entry_id: str) -> nn.Module:
    return next(e for e in FAULTY if e.id == entry_id).build()


def violation(module: nn.Module, *args: object, **kwargs: object) -> ContractViolation:
    with pytest.raises(ContractViolation) as info:
        verify_rnn(module, *args, **kwargs)
    return info.value


class Constant(nn.Module):
    """Output 0.25 everywhere, h_n 0.5 everywhere: exact values, so a whole message can be pinned."""

    mode, input_size, hidden_size = "RNN", 4, 6

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        seq, batch = x.shape[:2]
        return x.new_full((seq, batch, 6), 0.25), x.new_full((1, batch, 6), 0.5)


class RefusesHx(nn.Module):
    """A GRU wrapper that raises whenever an h_0 is given."""

    mode, input_size, hidden_size = "GRU", 4, 6

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(4, 6)

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if hx is not None:
            raise ValueError("this layer keeps its own state; hx must be None")
        return self.gru(x)


class CountsCalls(TorchLoop):
    """Increments a buffer in forward (in place) and draws from the global RNG."""

    def __init__(self) -> None:
        super().__init__("LSTM", 4, 6, num_layers=2, dropout=0.3)
        self.register_buffer("calls", torch.zeros(()))
        self.head = nn.Linear(6, 6)  # a submodule, left in eval mode below

    def forward(self, x: object, hx: object = None) -> tuple[object, object]:
        self.calls += 1
        torch.rand(())
        return super().forward(x, hx)


# -- the report on success ----------------------------------------------------------------------
def test_report_lists_every_contract_with_status_time_and_reasons(device: str) -> None:
    module = nn.GRU(4, 6, bidirectional=True)
    report = verify_rnn(module, device=device)
    assert isinstance(report, ContractReport) and report.ok and not report.failures
    assert [r.name for r in report.results] == list(CONTRACT_NAMES)
    # cuDNN rejects a non-contiguous h_0, torch's layers with it: known there (seen on an H200)
    known = {"initial_state"} if device.startswith("cuda") else set()
    assert {r.name for r in report.results if r.status == "known limitation"} == known
    assert all(r.status in ("passed", "not applicable") for r in report.results if r.name not in known)
    assert all(isinstance(r.seconds, float) and r.seconds >= 0 for r in report.results)
    assert report.status_of("reference") == "passed"
    carry = next(r for r in report.results if r.name == "state_carry")
    assert carry.status == "not applicable"
    assert carry.detail == "bidirectional: the backward direction cannot be resumed from a chunk"
    assert (report.module, report.device, report.dtype) == ("GRU(4, 6, bidirectional=True)", device, "float32")
    lines = report.table().splitlines()
    assert lines[0] == f"GRU(4, 6, bidirectional=True) on {device} (float32)"
    assert re.fullmatch(r"  state_carry +not applicable +\d+\.\d ms  bidirectional: .*",
                        lines[1 + CONTRACT_NAMES.index("state_carry")])
    assert re.fullmatch(r"  shapes +passed +\d+\.\d ms", lines[1])
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is True and data["spec"]["bidirectional"] is True and len(data["results"]) == len(CONTRACT_NAMES)


def test_not_applicable_reasons_of_a_custom_module() -> None:
    report = verify_rnn(TorchLoop("GRU", 4, 6), RNNSpec("GRU", 4, 6))  # packed/unbatched not declared
    reasons = {r.name: r.detail for r in report.results if r.status == "not applicable"}
    assert reasons == {
        "packed": "the spec declares no PackedSequence support (RNNSpec.packed=False)",
        "unbatched": "the spec declares no unbatched support (RNNSpec.unbatched=False)",
    }
    cells = verify_rnn(next(e for e in CORRECT if e.id == "cell_lstm_2l").build())
    detail = next(r.detail for r in cells.results if r.name == "reference")  # passed, and how
    assert detail == ("placed by order and shape: " + ", ".join(
        f"{kind}_l{layer} <- cells.{layer}.{kind}" for layer in (0, 1)
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")) + "; gate order i, f, g, o")


# -- the violation ------------------------------------------------------------------------------
def test_violation_message_is_pinned() -> None:
    error = violation(Constant(), contracts=["initial_state", "final_state"])
    assert str(error) == (
        "verify_rnn: Constant() broke 2 of 2 contracts on cpu (float32): final_state, initial_state\n"
        "\n"
        "[final_state] the last layer's forward final state h_n.view(num_layers, D, batch, H_out)[-1, 0] "
        "must equal output[-1, :, :H_out]: h_n[-1 layer, forward][0, 0] expected 0.25, actual 0.5, "
        "|difference| 0.25 (allowed atol 1e-05 + rtol 1.3e-06 * |expected|)\n"
        "\n"
        "[initial_state] a given h_0 in layer 0 (h_0[0], 2 tries) must change the result: "
        "output and final states did not change at any position"
    )
    assert error.title.endswith("final_state, initial_state")
    assert [r.name for r in error.report.failures] == ["final_state", "initial_state"]
    assert isinstance(error, AssertionError)  # pytest shows it as a test failure


def test_violation_lists_each_failed_contract_with_evidence() -> None:
    error = violation(faulty("forgets_bias_hh"))
    names = [r.name for r in error.report.failures]
    assert names == ["differentiability", "reference"]
    assert error.title == ("verify_rnn: ForgetsBiasHh(RNN, 4, 6) broke 2 of 13 contracts on cpu "
                           "(float32): differentiability, reference")
    texts = [render_violation(v) for v in error.violations]
    assert texts[0] == "[differentiability] no gradient reaches bias_hh_l0"
    evidence = re.compile(
        r"\[reference\] with no h_0 the module must compute what torch\.nn\.RNN computes with its "
        r"weights: (output|h_n)\[\d+, \d+, \d+\] expected \S+, actual \S+, \|difference\| \S+ "
        r"\(allowed atol 1e-05 \+ rtol 1\.3e-06 \* \|expected\|\)")
    assert evidence.fullmatch(texts[1]), texts[1]
    value = error.violations[1]  # the same evidence as fields
    assert (value.kind, value.contract, value.tolerance) == ("value", "reference", (1.3e-06, 1e-05))
    assert value.tensor in ("output", "h_n") and len(value.position) == 3
    assert abs(value.actual - value.expected) == pytest.approx(value.difference)
    passed = [r.name for r in error.report.results if r.status == "passed"]
    assert "final_state" in passed and "reference" not in passed


# -- contract selection -------------------------------------------------------------------------
def test_contracts_subset_runs_only_those_in_canonical_order() -> None:
    report = verify_rnn(nn.LSTM(4, 6), contracts=("reference", "shapes"))
    assert [r.name for r in report.results] == ["shapes", "reference"]
    # A fault outside the subset is not looked for.
    assert verify_rnn(faulty("rnn_sigmoid"), contracts=["shapes", "causality"]).ok


def test_unknown_contract_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"unknown contract\(s\) shape, causal; known: shapes, finite, final_state, "):
        verify_rnn(nn.GRU(4, 6), contracts=["shape", "reference", "causal"])


# -- no trace -----------------------------------------------------------------------------------
def test_leaves_no_trace_on_module_grads_buffers_and_rng() -> None:
    module = CountsCalls()
    module.head.eval()  # mixed training flags must come back as they were
    for i, p in enumerate(module.parameters()):
        if i % 2:
            p.grad = torch.full_like(p, 3.0)
    grads = [p.grad for p in module.parameters()]
    flags = [m.training for m in module.modules()]
    state = {k: v.clone() for k, v in module.state_dict().items()}
    rng = torch.get_rng_state()
    error = violation(module)  # forward mutates its buffer: inputs_untouched fails
    assert "[inputs_untouched] forward modified buffer calls in place" in str(error)
    assert torch.equal(torch.get_rng_state(), rng)
    assert [m.training for m in module.modules()] == flags and module.training and not module.head.training
    assert all(torch.equal(v, state[k]) for k, v in module.state_dict().items())
    assert float(module.calls) == 0.0
    for p, g in zip(module.parameters(), grads):
        assert p.grad is g and (g is None or bool((g == 3.0).all()))


def test_rng_state_restored_for_a_module_that_draws_random_numbers() -> None:
    noisy, lstm = InputNoise("GRU", 4, 6), nn.LSTM(4, 6, num_layers=2, dropout=0.5)
    rng = torch.get_rng_state()
    violation(noisy, contracts=["determinism"])
    assert torch.equal(torch.get_rng_state(), rng)
    verify_rnn(lstm)  # dropout would draw in training mode
    assert torch.equal(torch.get_rng_state(), rng)


def test_dtype_and_device_verify_a_copy_never_the_module(device: str) -> None:
    if device == "mps":
        pytest.skip("MPS has no float64")
    module = nn.LSTM(4, 6, num_layers=2, dropout=0.2)
    weight = module.weight_ih_l0
    pointer, values = weight.data_ptr(), weight.detach().clone()
    report = verify_rnn(module, device=device, dtype=torch.float64)
    assert (report.device, report.dtype) == (device, "float64")
    assert report.ok and report.status_of("reference") == "passed"
    assert module.weight_ih_l0 is weight and weight.data_ptr() == pointer
    assert weight.dtype == torch.float32 and weight.device.type == "cpu"
    assert torch.equal(weight.detach(), values) and module.training


def test_float64_reference_is_not_rounded_to_float32() -> None:
    """Regression: the reference layer was loaded in float32 and then cast, so a float64 module
    whose weights float32 cannot hold failed `reference` by ~5e-5."""
    module = nn.RNN(4, 6, dtype=torch.float64)
    with torch.no_grad():
        module.bias_ih_l0 += 1000.00001  # float32 rounds this to 1000.0
        module.bias_hh_l0 -= 1000.0
    assert verify_rnn(module, contracts=["reference"]).status_of("reference") == "passed"


# -- crashes are evidence -----------------------------------------------------------------------
def test_an_exception_in_the_module_becomes_a_violation_naming_contract_and_input() -> None:
    error = violation(RefusesHx())
    failures = {r.name: r.detail for r in error.report.failures}
    assert failures == {"shapes": (
        "the module raised ValueError on batch 1 with a random h_0 (input "
        "(5, 1, 4) float32 on cpu, h_0 (1, 1, 6)): this layer keeps its own state; hx must be None")}
    # the contracts that rely on shapes say so in one line, instead of each crashing on its own
    not_run = {r.name: r.detail for r in error.report.results if r.status == "not run"}
    assert set(not_run) == set(CONTRACT_NAMES) - {"shapes"}
    assert set(not_run.values()) == {"not run: shapes failed"}
    alone = violation(RefusesHx(), contracts=["initial_state"])  # shapes run first, unreported
    assert [(r.name, r.status, r.detail) for r in alone.report.results] == [
        ("initial_state", "not run", "not run: shapes failed (not selected: select it for its evidence)")]
    assert alone.title == ("verify_rnn: RefusesHx(...) broke 0 of 1 contracts and could not run 1 (a prerequisite "
                           "failed) on cpu (float32): initial_state (not run)")
    (record,) = alone.violations  # never a silent pass: the prerequisite's evidence comes along
    assert record.causes[0].detail.startswith(
        "the module raised ValueError on batch 1 with a random h_0")


def test_a_module_that_always_raises_fails_every_applicable_contract() -> None:
    class Broken(Constant):
        def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
            raise RuntimeError("boom")

    error = violation(Broken())
    assert [r.name for r in error.report.failures] == ["shapes"]
    assert "RuntimeError" in error.report.failures[0].detail and "boom" in error.report.failures[0].detail
    assert {r.status for r in error.report.results[1:]} == {"not run"}


# -- the spec -----------------------------------------------------------------------------------
def test_module_without_spec_attributes_needs_a_spec() -> None:
    with pytest.raises(SpecError, match="Linear has no attribute 'mode'"):
        verify_rnn(nn.Linear(4, 6))


def test_explicit_spec_overrides_the_module_attributes() -> None:
    # Declared batch_first although the layer is seq-first: the spec is what gets checked.
    error = violation(nn.GRU(4, 6), RNNSpec("GRU", 4, 6, batch_first=True), contracts=["shapes"])
    assert error.report.failures[0].name == "shapes"


def test_a_plain_callable_is_verified_without_module_only_contracts() -> None:
    """verify_rnn accepts any callable with torch's calling convention; the contracts that need
    a torch.nn.Module say so instead of failing (regression: they broke on .named_parameters)."""
    gru = nn.GRU(4, 6)

    def layer(x: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return gru(x, hx)

    report = verify_rnn(layer, RNNSpec("GRU", 4, 6))
    reasons = {r.name: r.detail for r in report.results if r.status == "not applicable"}
    assert "differentiability" not in reasons and report.status_of("differentiability") == "passed"
    assert next(r.detail for r in report.results if r.name == "differentiability") == (
        "function is not a torch.nn.Module: only the gradient through time was followed, from "
        "output[-1] back to x[0]")
    assert reasons["reference"] == "function is not a torch.nn.Module: it has no parameters to place"
    assert report.status_of("inputs_untouched") == "passed"


class CudnnLikeGRU(torch.nn.GRU):
    """torch's GRU that rejects a non-contiguous h_0 with cuDNN's own message, as torch's layers
    do on CUDA (aten/src/ATen/native/cudnn/RNN.cpp), so the CPU can exercise that path."""

    def forward(self, x, hx=None):
        if hx is not None and not hx.is_contiguous():
            raise RuntimeError("rnn: hx is not contiguous")
        return super().forward(x, hx)


class ViewsHx(torch.nn.GRU):
    """Rejects a non-contiguous h_0 with an error of its own: a bug, not torch's limitation."""

    def forward(self, x, hx=None):
        if hx is not None and not hx.is_contiguous():
            raise ValueError("h_0 must be contiguous")
        return super().forward(x, hx)


def test_cudnn_noncontiguous_rejection_is_a_known_limitation_not_a_failure(rnn_seeded) -> None:
    report = verify_rnn(CudnnLikeGRU(4, 6), contracts=["initial_state"])
    (result,) = report.results
    assert report.ok
    assert result.status == "known limitation"
    assert result.detail.startswith(
        "every other check held; a non-contiguous h_0 was rejected with torch's cuDNN error "
        "'rnn: hx is not contiguous' (torch's own layers on CUDA do the same: harvardnlp/namedtensor#58)"
    )


class CudnnLikeGRUIgnoringLayer1(CudnnLikeGRU):
    """The same rejection, on a two-layer GRU that drops the h_0 of its second layer."""

    def forward(self, x, hx=None):
        if hx is not None and hx.is_contiguous():
            hx = torch.cat([hx[:1], torch.zeros_like(hx[1:])])
        return super().forward(x, hx)


def test_a_rejected_noncontiguous_h0_still_checks_every_stack(rnn_seeded) -> None:
    """The stacks call lays h_0 out non-contiguously; where cuDNN's rejection stops it, the stack
    copies run again contiguously, so a stack whose state is ignored still fails the contract
    instead of hiding behind the known limitation."""
    with pytest.raises(ContractViolation) as caught:
        verify_rnn(CudnnLikeGRUIgnoringLayer1(4, 6, num_layers=2), contracts=["initial_state"])
    (result,) = caught.value.report.results
    assert (result.status, result.detail) == (
        "failed", "a given h_0 in layer 1 (h_0[1], 2 tries) must change the result: output and final "
        "states did not change at any position")


def test_any_other_noncontiguous_rejection_still_fails(rnn_seeded) -> None:
    with pytest.raises(ContractViolation) as caught:
        verify_rnn(ViewsHx(4, 6), contracts=["initial_state"])
    assert caught.value.report.status_of("initial_state") == "failed"
    assert "on a non-contiguous h_0" in str(caught.value)


class BackwardIgnoresH0(torch.nn.Module):
    """A bidirectional loop of two GRU cells whose backward direction always starts from zeros:
    an initial state carried over from a previous chunk is silently dropped there."""

    mode, input_size, hidden_size, bidirectional = "GRU", 4, 6, True

    def __init__(self) -> None:
        super().__init__()
        self.fwd, self.bwd = torch.nn.GRUCell(4, 6), torch.nn.GRUCell(4, 6)

    def forward(self, x, hx=None):
        batch = x.shape[1]
        h_f = x.new_zeros(batch, 6) if hx is None else hx[0]
        h_b = x.new_zeros(batch, 6)  # the fault: hx[1] is ignored
        outs_f, outs_b = [], []
        for step in x:
            h_f = self.fwd(step, h_f)
            outs_f.append(h_f)
        for step in x.flip(0):
            h_b = self.bwd(step, h_b)
            outs_b.append(h_b)
        out = torch.cat([torch.stack(outs_f), torch.stack(outs_b[::-1])], dim=-1)
        return out, torch.stack([h_f, h_b])


def test_a_direction_that_ignores_its_h0_is_caught(rnn_seeded) -> None:
    """Review finding: the old probe accepted it because output[0] changed through the forward
    direction. Every layer and direction of h_0 must now matter on its own."""
    with pytest.raises(ContractViolation) as caught:
        verify_rnn(BackwardIgnoresH0(), contracts=["initial_state"])
    assert ("[initial_state] a given h_0 in layer 0, backward direction (h_0[1], 2 tries) must "
            "change the result") in str(caught.value)


@pytest.mark.parametrize("make", [lambda: nn.RNN(4, 2), lambda: nn.GRU(4, 6, num_layers=2),
                                  lambda: nn.LSTM(4, 6, batch_first=True)], ids=["rnn", "gru-2-layers", "lstm-bf"])
def test_verify_rnn_calls_a_unidirectional_layer_13_times(make) -> None:
    """The contracts share their calls (rnn_contracts.probes.shared): main and right after it the
    repeat (determinism), batch 1, the states call, the prefix and the last step (shapes); the
    stacks call (initial_state); the perturbed step (causality: the main probe input itself, no
    h_0; tests/test_kills_temporal.py says why no shared call will do); the replaced sequences
    (batch_independence); the call with grad (differentiability); packed; unbatched without and
    with h_0 (two paths of a hand-written module: the zoo's unbatched_init_hidden_from_dim1
    breaks one, unbatched_drops_h0 the other; issue "checks at the limit" asked for 12, before
    the second unbatched call). A probe that made its own call where it may read a shared one
    (batch_independence held) would make 14 or more."""
    torch.manual_seed(0)
    module = make()
    calls = []
    module.register_forward_pre_hook(lambda *_: calls.append(1))
    verify_rnn(module)
    assert len(calls) == 13
