"""The reference contract's placement (rnn_contracts.probes.reference) and the initial_state
probe's relu guard and magnitudes (rnn_contracts.probes.state), pinned where the zoo cannot see
them.

The zoo's modules use torch's names, so the placement by order and shape, the transposed square
weights, the weight_map, the not-applicable reason and the narrow excepts around each placement
were unwatched; tests/test_reference_mapping.py covers some of it but is not in the mutation
group. Hand-written modules, each needing exactly the placement one line decides, with the whole
passing detail or reason asserted.

Kills (mutation/README.md):
reference.py: _transposed's ``t in square and t not in given`` with either comparison negated or
the ``and`` made ``or``; _compare's ``got is not None and want is not None`` made ``or``; the
not-applicable test ``left or missing`` made ``and``; fits' ``name is None`` negated; the
``except ProbeFailure`` around a placement widened to ``except Exception``.
state.py: initial_state's "not observable" guard deleted; _SCALE 1000 -> 10000; _INPUT_SCALES
(1, 10) -> (1, 100); the ``except ProbeFailure`` in _every_stack_is_used's ``changed`` widened.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest
import torch
from torch import nn

from rnn_contracts import ContractViolation, RNNSpec, verify_rnn
from rnn_contracts.probes.base import Context
from zoo.loops import CellLoop

#: the submodule (rnn_contracts.probes re-exports the probe function under the same name)
reference_probe = importlib.import_module("rnn_contracts.probes.reference")

H, I = 5, 4


def _result(module: nn.Module, spec: RNNSpec, contract: str, **kwargs: object):
    try:
        report = verify_rnn(module, spec, contracts=[contract], **kwargs)
    except ContractViolation as exc:
        report = exc.report
    return next(r for r in report.results if r.name == contract)


def _elman(x: torch.Tensor, h: torch.Tensor, step) -> tuple[torch.Tensor, torch.Tensor]:
    outs = []
    for t in range(x.shape[0]):
        h = step(x[t], h)
        outs.append(h)
    return torch.stack(outs), h[None]


# -- _transposed: the square weights not named by weight_map, and only those ---------------------
class MixedLayout(nn.Module):
    """h = tanh(W_ih x + h @ W_hh + b), both weights square (input_size == hidden_size): W_ih in
    torch's layout, W_hh stored transposed (``h @ W``). Placed by order and shape, W_hh must be
    read transposed; a weight_map naming W_ih (untransposed) must be taken as it is."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(11)
        self.W_ih = nn.Parameter(torch.randn(H, H) * 0.4)
        self.W_hh = nn.Parameter(torch.randn(H, H) * 0.4)
        self.b = nn.Parameter(torch.randn(H) * 0.1)

    def forward(self, x, hx=None):
        h = x.new_zeros(x.shape[1], H) if hx is None else hx[0]
        return _elman(x, h, lambda xt, h: torch.tanh(xt @ self.W_ih.t() + h @ self.W_hh + self.b))


SQUARE = RNNSpec("RNN", H, H)


def test_a_square_weight_not_in_the_weight_map_is_transposed_and_the_mapped_one_is_not() -> None:
    """With weight_ih_l0 mapped to W_ih, the transposed variant flips weight_hh_l0 only: negating
    either half of ``t in square and t not in given`` (no free square flipped, or the mapped one
    flipped) or making it ``or`` (the mapped square and the biases flipped) places no match, or
    one described otherwise."""
    result = _result(MixedLayout(), SQUARE, "reference", weight_map={"weight_ih_l0": "W_ih"})
    assert (result.status, result.detail) == ("passed", (
        "placed by order and shape: weight_ih_l0 <- W_ih, weight_hh_l0 <- W_hh.T, bias_ih_l0 <- b, "
        "bias_hh_l0 <- zeros"))


def test_a_mapped_square_weight_is_never_transposed_back() -> None:
    """weight_hh_l0 mapped to W_hh although the module reads h @ W_hh: the map is authoritative,
    so no placement matches and every one tried keeps W_hh as it is (a mutant that flips mapped
    squares, ``t in square and t in given``, finds W_ih, W_hh.T and passes)."""
    result = _result(MixedLayout(), SQUARE, "reference", weight_map={"weight_hh_l0": "W_hh"})
    assert result.status == "failed"
    assert result.detail.startswith(
        "no placement of the module's parameters on torch.nn.RNN computes what the module computes; "
        "the closest, placed by order and shape: weight_ih_l0 <- W_ih"), result.detail
    assert ", weight_hh_l0 <- W_hh, bias_ih_l0 <- b, bias_hh_l0 <- zeros: " in result.detail


# -- fits: a placement a shape does not fit is never run --------------------------------------------
class SigmoidElman(nn.Module):
    """h = sigmoid(W_ih x + b_ih + W_hh h + b_hh): torch's shapes (input 4, hidden 5), a
    nonlinearity torch's RNN does not have, so every placement is tried and none matches. The
    ih / hh swap is then offered, and fits must reject it: a (5, 5) W_hh does not fit the (5, 4)
    weight_ih_l0 (with ``name is not None`` every named slot "fits" and the copy into torch's
    layer raises)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(12)
        self.W_ih, self.W_hh = nn.Parameter(torch.randn(H, I) * 0.4), nn.Parameter(torch.randn(H, H) * 0.4)
        self.b_ih, self.b_hh = nn.Parameter(torch.randn(H) * 0.1), nn.Parameter(torch.randn(H) * 0.1)

    def forward(self, x, hx=None):
        h = x.new_zeros(x.shape[1], H) if hx is None else hx[0]
        return _elman(x, h, lambda xt, h: torch.sigmoid(
            xt @ self.W_ih.t() + self.b_ih + h @ self.W_hh.t() + self.b_hh))


def test_a_placement_whose_shapes_do_not_fit_is_never_tried() -> None:
    result = _result(SigmoidElman(), RNNSpec("RNN", I, H), "reference")
    assert result.status == "failed"
    assert result.detail.startswith(
        "no placement of the module's parameters on torch.nn.RNN computes what the module computes; "
        "the closest, placed by order and shape: weight_ih_l0 <- W_ih, weight_hh_l0 <- W_hh"), result.detail
    assert "broke the probe" not in result.detail


# -- not applicable: a parameter left over OR a slot left without one -------------------------------
class GainElman(nn.Module):
    """torch's Elman RNN plus an output gain ``g`` (H,): every slot of torch.nn.RNN is filled
    (weights by shape, one bias, bias_hh zeros), and g is left over (no weight slot has its shape,
    and bias slots take only bias-named parameters). Nothing is missing: ``left and missing``
    would go on and place the rest."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(14)
        self.W, self.U = nn.Parameter(torch.randn(H, I) * 0.4), nn.Parameter(torch.randn(H, H) * 0.4)
        self.bias = nn.Parameter(torch.randn(H) * 0.1)
        self.g = nn.Parameter(torch.ones(H))

    def forward(self, x, hx=None):
        h = x.new_zeros(x.shape[1], H) if hx is None else hx[0]
        out, h_n = _elman(x, h, lambda xt, h: torch.tanh(xt @ self.W.t() + h @ self.U.t() + self.bias))
        return out * self.g, h_n


class Feedforward(nn.Module):
    """h_t = tanh(W x_t + b), no recurrent weight: every parameter is placed, nothing is left over,
    and weight_hh_l0 has none (``left and missing`` would go on with that slot unset)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(15)
        self.W = nn.Parameter(torch.randn(H, I) * 0.4)
        self.b = nn.Parameter(torch.randn(H) * 0.1)

    def forward(self, x, hx=None):
        h = x.new_zeros(x.shape[1], H) if hx is None else hx[0]
        return _elman(x, h, lambda xt, h: torch.tanh(xt @ self.W.t() + self.b))


#: Why a placement fell short: a weight_map is named only where a parameter left over has the
#: shape of a slot left without one, or given zeros (it places one whole parameter per slot).
MAPPABLE = "its math is not torch's RNN, or pass verify_rnn(weight_map={torch name: parameter name})"
UNMAPPABLE = "no parameter left over fits a slot left: its math, or the layout of its weights, is not torch's RNN"


@pytest.mark.parametrize(("module", "left", "missing", "why"), [
    (GainElman, "g (5,)", "none", MAPPABLE),  # g fits the bias slot given zeros
    (Feedforward, "none", "weight_hh_l0 (5, 5)", UNMAPPABLE),
], ids=["left-over-only", "missing-only"])
def test_one_parameter_left_over_or_one_slot_missing_is_not_applicable(module, left: str, missing: str, why: str) -> None:
    """Kills: the weight_map advice given whatever the shapes (a user-view review: a GRU of one
    Linear per gate was told to pass a weight_map, which cannot split or join parameters)."""
    result = _result(module(), RNNSpec("RNN", I, H), "reference")
    assert (result.status, result.detail) == ("not applicable", (
        "the module's parameters cannot be placed on torch.nn.RNN(4, 5) by name, order or shape: "
        f"parameters that could not be placed: {left}; torch's slots left without one: {missing} ({why})"))


# -- except ProbeFailure: only a placement that did not match is passed over -----------------------
class OnnxResetGRU(nn.Module):
    """A GRU with n = tanh(W_in x + b_in + W_hn (r * h) + b_hn) (ONNX linear_before_reset=0):
    torch's reset convention is tried first and does not match (a ProbeFailure, passed over), then
    the ONNX one. ``states=False``: the output only (RNNSpec.returns_states=False)."""

    def __init__(self, states: bool = True) -> None:
        super().__init__()
        torch.manual_seed(16)
        self.x2h, self.h2h = nn.Linear(I, 3 * H), nn.Linear(H, 3 * H)
        self.states = states

    def forward(self, x, hx=None):
        def step(xt, h):
            r_i, z_i, n_i = self.x2h(xt).chunk(3, 1)
            w_r, w_z, w_n = self.h2h.weight.chunk(3, 0)
            b_r, b_z, b_n = self.h2h.bias.chunk(3, 0)
            r = torch.sigmoid(r_i + h @ w_r.t() + b_r)
            z = torch.sigmoid(z_i + h @ w_z.t() + b_z)
            n = torch.tanh(n_i + (r * h) @ w_n.t() + b_n)
            return (1 - z) * n + z * h
        h = x.new_zeros(x.shape[1], H) if hx is None else hx[0]
        output, h_n = _elman(x, h, step)
        return (output, h_n) if self.states else output


ONNX_PLACED = ("placed by order and shape: weight_ih_l0 <- x2h.weight, weight_hh_l0 <- h2h.weight, "
               "bias_ih_l0 <- x2h.bias, bias_hh_l0 <- h2h.bias; gate order r, z, n; "
               "reset convention W_hn (r * h) (ONNX linear_before_reset=0)")


def test_the_onnx_reset_convention_is_found_after_torchs_did_not_match() -> None:
    result = _result(OnnxResetGRU(), RNNSpec("GRU", I, H), "reference")
    assert (result.status, result.detail) == ("passed", ONNX_PLACED)


def test_a_module_without_states_is_compared_on_its_output_only() -> None:
    """_compare checks h_n only where both the module and the reference give one: the module
    returns none here, while the ONNX-convention reference (_gru_other_reset) always does. With
    ``or``, assert_close got None as the module's h_n and the probe broke on a correct module."""
    spec = RNNSpec("GRU", I, H, returns_states=False, packed=False, unbatched=False)
    result = _result(OnnxResetGRU(states=False), spec, "reference")
    assert (result.status, result.detail) == ("passed", ONNX_PLACED)


def test_an_error_that_is_no_probe_failure_is_not_read_as_a_placement_that_did_not_match(monkeypatch) -> None:
    """The kit's own ONNX-convention reference raising (a bug, a dtype torch refuses) must surface
    with its own type and message: ``except Exception`` would take it for a placement that did not
    match (and then break on its missing ``.violation``). torch's convention, tried first, still
    fails as a ProbeFailure and is passed over."""
    def broken(*args, **kwargs):
        raise RuntimeError("the ONNX reference is broken")

    monkeypatch.setattr(reference_probe, "_gru_other_reset", broken)
    result = _result(OnnxResetGRU(), RNNSpec("GRU", I, H), "reference")
    assert (result.status, result.detail) == (
        "failed", "the module's result broke the probe: RuntimeError: the ONNX reference is broken")


# -- initial_state: relu's "not observable", the magnitudes tried -----------------------------------
def _relu_stack(hidden: int, **weights: list) -> nn.Module:
    """torch's nn.RNN(1, hidden, num_layers=2, nonlinearity="relu") with every weight set by hand
    (the biases bias_hh_l* zero)."""
    module = nn.RNN(1, hidden, num_layers=2, nonlinearity="relu").double()
    with torch.no_grad():
        for p in module.parameters():
            p.zero_()
        for name, value in weights.items():
            getattr(module, name).copy_(torch.tensor(value, dtype=torch.float64))
    return module


#: initial_state's reason when h_0[1] is hidden by relu's dead zone (9 = the probe input + _INPUTS)
LAYER_1_HIDDEN = ("every other check held; not observable: a h_0 in layer 1 (h_0[1]) changed nothing on "
                  "9 probe inputs x 8 states, and every run showed relu's dead zone (a layer or direction "
                  "exactly 0 on every unit) blocking its path")


def test_a_relu_dead_zone_that_hides_h0_is_not_applicable_not_a_pass() -> None:
    """torch's nn.RNN(2, 1, num_layers=3, relu, bias=False) under seed 224 (tests/
    test_false_positives.py): layer 1's state dies within a step, so every other check holds and
    the property cannot be observed. Without the guard the contract would pass unobserved."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(224)
        module = nn.RNN(2, 1, num_layers=3, nonlinearity="relu", bias=False).double()
    result = _result(module, None, "initial_state", dtype=torch.float64)
    assert result.status == "not applicable", result
    assert result.detail == LAYER_1_HIDDEN


def test_the_state_magnitude_tried_is_1000() -> None:
    """nn.RNN(1, 1, num_layers=2, relu) by hand. Layer 0 = relu(0.01 x + 1 + 0.5 h) is alive on
    every input (|0.01 x| < 0.5 up to 10x the probe input), stays below 2.5 and reads its own
    h_0 (observed). Layer 1 = relu(0.1 h0 - 1 + 2e-4 h) is exactly 0 throughout: a state of
    _SCALE 1000 adds at most 0.2 to a pre-activation of at most -0.75, so h_0[1] is not observable
    (layer 0's h_n, nonzero and unchanged, is the evidence). At 10000 it would add 2.0, lift the
    unit, and the contract would pass."""
    module = _relu_stack(1, weight_ih_l0=[[0.01]], bias_ih_l0=[1.0], weight_hh_l0=[[0.5]],
                         weight_ih_l1=[[0.1]], bias_ih_l1=[-1.0], weight_hh_l1=[[2e-4]])
    result = _result(module, None, "initial_state", dtype=torch.float64)
    assert (result.status, result.detail) == ("not applicable", LAYER_1_HIDDEN)


def test_the_further_inputs_are_scaled_by_at_most_10() -> None:
    """nn.RNN(1, 2, num_layers=2, relu) by hand. Layer 0 = relu(+-x + 0.5 + 0.5 h): one of its
    two units is alive at every step, growing with |x|; it reads its own h_0 (observed). Layer 1
    = relu(sum(layer 0) - 40 + 1e-3 h): a state of magnitude 1000 adds 1. Probe inputs are N(0, 1)
    and the further ones are scaled by 1 and 10: layer 1's pre-activation stays below -14 on every
    one (measured), so it is exactly 0 throughout and h_0[1] is not observable. Scaled by 100,
    |x| of ~40 is common, layer 1 comes alive, h_0[1] shows, and the contract would pass."""
    module = _relu_stack(2, weight_ih_l0=[[1.0], [-1.0]], bias_ih_l0=[0.5, 0.5],
                         weight_hh_l0=[[0.5, 0.0], [0.0, 0.5]],
                         weight_ih_l1=[[1.0, 1.0], [1.0, 1.0]], bias_ih_l1=[-40.0, -40.0],
                         weight_hh_l1=[[1e-3, 0.0], [0.0, 1e-3]])
    result = _result(module, None, "initial_state", dtype=torch.float64)
    assert (result.status, result.detail) == ("not applicable", LAYER_1_HIDDEN)


def test_a_relu_state_that_does_come_alive_passes() -> None:
    """The counterpart of the two above: with layer 1's recurrent weight 1e-2, a state of
    magnitude 1000 adds 10, enough to lift its bias of -1 on the first probe input."""
    module = _relu_stack(1, weight_ih_l0=[[0.01]], bias_ih_l0=[1.0], weight_hh_l0=[[0.5]],
                         weight_ih_l1=[[0.1]], bias_ih_l1=[-1.0], weight_hh_l1=[[1e-2]])
    result = _result(module, None, "initial_state", dtype=torch.float64)
    assert (result.status, result.detail) == ("passed", "")


def test_a_comparison_that_raises_is_not_read_as_no_change(monkeypatch) -> None:
    """_every_stack_is_used reads a try that changed nothing as such (Context.shows_change is
    False) and nothing else: a comparison that raises (here a RuntimeError, as torch raises for
    tensors it cannot compare) must surface, not count as "did not change" and blame the module
    for ignoring its h_0."""
    def broken(a, b):
        raise RuntimeError("cannot compare")

    monkeypatch.setattr(Context, "shows_change", staticmethod(broken))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(17)
        module = nn.GRU(I, H)
    result = _result(module, None, "initial_state")
    assert (result.status, result.detail) == (
        "failed", "the module's result broke the probe: RuntimeError: cannot compare")


@pytest.mark.parametrize("notice", [
    "RNN module weights are not part of single contiguous chunk of memory. This means they need to be "
    "compacted at every call, possibly greatly increasing memory usage.",
    "LSTM with projections is not supported with oneDNN. Using default implementation.",
], ids=["cudnn-not-flat", "onednn-projection"])
def test_a_kernels_notice_about_the_references_own_run_does_not_reach_the_user(monkeypatch, notice: str) -> None:
    """On CUDA, cuDNN warns that the tensors reference hands its kernel are not one flat buffer
    (it compacts them for the call); on the CPU oneDNN says it leaves an LSTM's projection to
    torch's kernel (it printed under a hand-written proj_size LSTM: a user-view review). Both are
    about the kit's own run: under ``-W error`` they would break the probe, and otherwise print.
    Raised here around the real kernel, as torch would (torch warns once per process, so the
    real one cannot pin this). Kills: the reference's cuDNN filter, or verify_rnn's oneDNN one
    (tests/test_reliability.py has it from the module's own calls), deleted."""
    import warnings

    real = torch.lstm

    def warns(*args, **kwargs):
        warnings.warn(notice, UserWarning)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "lstm", warns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            module = nn.LSTM(I, H)
        result = _result(module, None, "reference")
    assert (result.status, result.detail) == ("passed", "torch's parameter names: loaded as they are")


def test_reference_layers_are_built_once_per_configuration() -> None:
    """The meta layer is kept per (configuration, dtype), for every thread (it holds no values
    for a call to swap in or leave behind); only the last few are kept."""
    import threading

    reference = importlib.import_module("rnn_contracts.probes.reference")  # the package's name is the contract
    spec = RNNSpec(mode="GRU", input_size=4, hidden_size=3)
    first = reference.reference_layer(spec, torch.float32)
    assert reference.reference_layer(spec, torch.float32) is first
    assert not first.training and next(first.parameters()).is_meta
    assert reference.reference_layer(spec, torch.float64) is not first
    assert reference.reference_layer(spec.replace(batch_first=True), torch.float32) is not first
    other: list[torch.nn.Module] = []
    thread = threading.Thread(target=lambda: other.append(reference.reference_layer(spec, torch.float32)))
    thread.start()
    thread.join()
    assert other[0] is first
    for size in range(5, 5 + reference._LAYERS_KEPT):  # as many others as are kept
        reference.reference_layer(spec.replace(input_size=size), torch.float32)
    assert reference.reference_layer(spec, torch.float32) is not first  # the oldest went first


@pytest.mark.parametrize("make", [
    pytest.param(lambda: nn.LSTM(4, 3, num_layers=2), id="torch-names"),
    pytest.param(lambda: CellLoop("LSTM", 4, 3, num_layers=2), id="placed-by-order"),
])
def test_a_cached_reference_layer_holds_none_of_the_modules_values(make: Callable[[], nn.Module]) -> None:
    """After verify_rnn, and after a reference run that raised inside torch's kernel (planted: an
    input of the wrong width), the cached layer's parameters and flat weight list are all on the
    meta device: the run hands the kernel the tensors, it never puts them into the layer (the
    functional_call it replaced left a 208 MB LSTM's tensors alive in the cache)."""
    reference = importlib.import_module("rnn_contracts.probes.reference")
    torch.manual_seed(0)
    built, spec = make(), RNNSpec("LSTM", 4, 3, num_layers=2)
    verify_rnn(built, spec, contracts=["reference"])
    layer = reference.reference_layer(spec, torch.float32)
    assert all(t.is_meta for t in layer._flat_weights) and all(p.is_meta for p in layer.parameters())
    real = torch.lstm
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "lstm", lambda x, *rest: real(x[..., :1], *rest))
        with pytest.raises(ContractViolation, match="reference"):
            verify_rnn(built, spec, contracts=["reference"])
    assert reference.reference_layer(spec, torch.float32) is layer
    assert all(t.is_meta for t in layer._flat_weights) and all(p.is_meta for p in layer.parameters())


@pytest.mark.parametrize(("gates", "shared"), [
    pytest.param(("i", "f", "g", "o"), True, id="torch-order"),
    pytest.param(("f", "i", "g", "o"), False, id="gates-moved"),
])
def test_a_placement_in_torchs_gate_order_hands_the_kernel_the_modules_own_tensors(gates: tuple[str, ...], shared: bool) -> None:
    """A module placed by order and shape, in torch's gate order, computes the reference on its
    own tensors (no copy of the parameters per placement tried: a large LSTM's are 338 MB);
    only a moved gate order builds reordered copies."""
    reference = importlib.import_module("rnn_contracts.probes.reference")
    torch.manual_seed(0)
    module = nn.LSTM(4, 3)
    params = dict(module.named_parameters())
    ref_params = dict(reference.reference_layer(RNNSpec.from_module(module), torch.float32).named_parameters())
    placement = reference.Placement(tuple((name, name, False) for name in ref_params), gates)
    handed = reference._tensors(placement, ref_params, params, "LSTM", torch.device("cpu"))
    assert all((handed[n].data_ptr() == params[n].data_ptr()) is shared for n in ref_params)
