"""Golden values for nn.RNN / nn.LSTM / nn.GRU that depend on no random generator.

Three independent sources of truth:
* numpy_reference: a float64 NumPy implementation written from the torch doc equations, fed
  RNG-free weights (deterministic_params), compared in float64 and in float32 on ``device``;
* closed-form hand goldens for a 1-input, 1-hidden layer with constant weights;
* negative controls: a deliberately wrong torch module (swapped gate blocks, swapped
  directions) must make the oracle comparison fail, so the goldens are able to fail.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from rnn_contracts.hello import hello_one_hot
from rnn_contracts.precision import run_context, tolerance_for

try:  # tests/ is on sys.path under pytest's default rootdir-less "prepend" import mode
    import numpy_reference as ref
except ImportError:  # tests/ became a package
    from tests import numpy_reference as ref

MODULES = {"RNN": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}


@dataclass(frozen=True)
class Case:
    id: str
    mode: str  # "RNN", "LSTM" or "GRU"
    data: str  # "hello": the seed's one-hot batch (3, 5, 4); "wave": deterministic reals
    hidden: int = 3
    num_layers: int = 1
    bidirectional: bool = False
    batch_first: bool = True
    with_h0: bool = False
    bias: bool = True
    nonlinearity: str = "tanh"
    proj_size: int = 0
    unbatched: bool = False


CASES = [
    Case("rnn_tanh-hello", "RNN", "hello"),
    Case("rnn_relu-2layer-bidir-h0-seqfirst", "RNN", "wave", hidden=4, num_layers=2,
         bidirectional=True, batch_first=False, with_h0=True, nonlinearity="relu"),
    Case("rnn_relu-unbatched-bidir", "RNN", "hello", bidirectional=True, nonlinearity="relu",
         unbatched=True),
    Case("lstm-hello-h0", "LSTM", "hello", with_h0=True),
    Case("lstm-2layer-bidir-nobias-seqfirst", "LSTM", "wave", hidden=4, num_layers=2,
         bidirectional=True, batch_first=False, bias=False),
    Case("lstm_proj-2layer-bidir-h0", "LSTM", "hello", hidden=5, num_layers=2,
         bidirectional=True, with_h0=True, proj_size=2),
    Case("lstm_proj-unbatched-h0", "LSTM", "wave", hidden=4, with_h0=True, proj_size=3,
         unbatched=True),
    Case("gru-hello", "GRU", "hello"),
    Case("gru-2layer-bidir-h0-nobias", "GRU", "wave", hidden=4, num_layers=2,
         bidirectional=True, with_h0=True, bias=False),
    Case("gru-unbatched-2layer-h0", "GRU", "wave", num_layers=2, with_h0=True, unbatched=True),
]


def wave(*shape: int) -> np.ndarray:
    """Deterministic non-one-hot values in (-1, 1): cos(0.9 + 0.37 * flat index)."""
    return np.cos(0.9 + 0.37 * np.arange(np.prod(shape))).reshape(shape)


def make_inputs(case: Case):
    """(x, hx) as float64 NumPy arrays in the layout the module expects."""
    x = hello_one_hot(dtype=torch.float64).numpy() if case.data == "hello" else wave(2, 4, 3)
    if case.unbatched:
        x = x[0]  # (seq, dim)
    elif not case.batch_first:
        x = x.transpose(1, 0, 2).copy()  # (batch, seq, dim) -> (seq, batch, dim)
    if not case.with_h0:
        return x, None
    lead = (case.num_layers * (2 if case.bidirectional else 1),)
    lead += () if case.unbatched else (x.shape[0] if case.batch_first else x.shape[1],)
    h0 = 0.5 * wave(*lead, case.proj_size or case.hidden)
    if case.mode != "LSTM":
        return x, h0
    return x, (h0, -0.7 * wave(*lead, case.hidden))  # c_0 has hidden_size features


def build(case: Case, input_size: int, dtype: torch.dtype):
    """A CPU module with the deterministic weights loaded, and those weights as NumPy."""
    kwargs = dict(num_layers=case.num_layers, bias=case.bias, batch_first=case.batch_first,
                  bidirectional=case.bidirectional, dtype=dtype)
    if case.mode == "RNN":
        kwargs["nonlinearity"] = case.nonlinearity
    if case.proj_size:
        kwargs["proj_size"] = case.proj_size
    module = MODULES[case.mode](input_size, case.hidden, **kwargs)
    shapes = ref.param_shapes(case.mode, input_size, case.hidden, num_layers=case.num_layers,
                              bidirectional=case.bidirectional, bias=case.bias,
                              proj_size=case.proj_size)
    # The documented names, order and shapes are themselves part of the contract.
    assert [(n, tuple(p.shape)) for n, p in module.named_parameters()] == list(shapes.items())
    params = ref.deterministic_params(shapes)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.from_numpy(params[name]))
    return module, params


def to_torch(tree, dtype=None, device="cpu"):
    if tree is None or isinstance(tree, (np.ndarray, torch.Tensor)):
        return None if tree is None else torch.as_tensor(tree, dtype=dtype, device=device)
    return tuple(to_torch(t, dtype, device) for t in tree)


def oracle(case: Case, params, x, hx):
    return ref.run(case.mode, params, x, hx, num_layers=case.num_layers,
                   bidirectional=case.bidirectional, batch_first=case.batch_first,
                   nonlinearity=case.nonlinearity, proj_size=case.proj_size)


def torch_forward(module, x, hx, dtype, device="cpu"):
    with torch.no_grad():
        return module(to_torch(x, dtype, device), to_torch(hx, dtype, device))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_float64_matches_numpy_oracle(case: Case) -> None:
    x, hx = make_inputs(case)
    module, params = build(case, x.shape[-1], torch.float64)
    got = torch_forward(module, x, hx, torch.float64)
    # Same math in float64 on both sides: only summation-order rounding differs (~1e-16 per op,
    # a few hundred ops deep), while any semantic slip (gate order, direction, layout) is ~1e-2.
    torch.testing.assert_close(got, to_torch(oracle(case, params, x, hx)), rtol=1e-10, atol=1e-10)


# Float32 LSTM with proj_size on CPU falls back from oneDNN to the native kernel, with a warning.
@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_float32_on_device_matches_numpy_oracle(case: Case, device: str, rnn_tf32_off: None) -> None:
    x, hx = make_inputs(case)
    module, params = build(case, x.shape[-1], torch.float32)
    module = module.to(device)
    got = torch_forward(module, x, hx, torch.float32, device)
    got = to_torch(got, torch.float64)  # back to CPU float64 for the comparison
    # float32 eps is 1.2e-7; rounding of weights/inputs plus <= 10 sequential steps of
    # length <= 10 dot products and saturating activations stays well below 1e-6 absolute.
    # rtol 1e-5 / atol 1e-6 allows for that and for a different kernel's summation order on
    # the device, and is still four orders of magnitude below a semantic error. Off the CPU the
    # kernels differ (cuDNN's fused gates): the precision table's row for the device, TF32 off.
    rtol, atol = (1e-5, 1e-6) if device == "cpu" else tolerance_for(device, torch.float32).as_kwargs().values()
    torch.testing.assert_close(got, to_torch(oracle(case, params, x, hx)), rtol=rtol, atol=atol,
                               msg=lambda m: f"{m}\nrun: {run_context(device, torch.float32)}")


# ---- Closed-form hand goldens: input_size = hidden_size = 1, every weight 1.0, every bias
# 0.25 (so the two biases add up to 0.5), input sequence [1, 0, 0], h_0 = c_0 = 0, unbatched.
# sigma(a) = 1 / (1 + math.exp(-a)). Values derived from the equations alone, not from torch.
#
# RNN (tanh): h_t = tanh(x_t + h_{t-1} + 0.5)
#   h1 = math.tanh(1 + 0 + 0.5) = tanh(1.5)                = 0.9051482536448664
#   h2 = math.tanh(0 + h1 + 0.5) = tanh(1.4051482536)      = 0.886459396965212
#   h3 = math.tanh(0 + h2 + 0.5) = tanh(1.3864593970)      = 0.8823894835852901
#
# LSTM: all four gates share a_t = x_t + h_{t-1} + 0.5, so i = f = o = s = sigma(a_t), g = tanh(a_t)
#   c_t = s * c_{t-1} + s * g;  h_t = s * math.tanh(c_t)
#   t1: a = 1.5,      s = 0.817574, g = 0.905148, c1 = s*0 + s*g = 0.740026, h1 = 0.51438592253464
#   t2: a = h1 + 0.5 = 1.014386, s = 0.733878, g = 0.767570, c2 = 1.106391, h2 = 0.5891444393412877
#   t3: a = h2 + 0.5 = 1.089144, s = 0.748221, g = 0.796566, c3 = 1.423831347657853,
#       h3 = 0.6662122202913024
#
# GRU: r = z = sigma(x_t + h_{t-1} + 0.5);  n = math.tanh(x_t + 0.25 + r * (h_{t-1} + 0.25))
#   h_t = (1 - z) * n + z * h_{t-1}.  Note b_hn sits inside r * (...): at t1, h_0 = 0 yet r still
#   scales the 0.25.
#   t1: r = sigma(1.5) = 0.817574, n = tanh(1.25 + r*0.25) = tanh(1.454394) = 0.896558,
#       h1 = (1 - r) * n = 0.16355510507416984
#   t2: r = sigma(h1 + 0.5) = 0.660059, n = tanh(0.25 + r*(h1 + 0.25)) = 0.479989,
#       h2 = (1 - r)*n + r*h1 = 0.27112426063908746
#   t3: r = sigma(h2 + 0.5) = 0.683764, n = tanh(0.606326) = 0.541536, h3 = 0.35663809005800373
HAND_GOLDENS = {
    "RNN": ([0.9051482536448664, 0.886459396965212, 0.8823894835852901], None),
    "LSTM": ([0.51438592253464, 0.5891444393412877, 0.6662122202913024], 1.423831347657853),
    "GRU": ([0.16355510507416984, 0.27112426063908746, 0.35663809005800373], None),
}


@pytest.mark.parametrize("mode", sorted(HAND_GOLDENS))
def test_closed_form_hand_golden(mode: str) -> None:
    hs, c_last = HAND_GOLDENS[mode]
    module = MODULES[mode](1, 1, dtype=torch.float64)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.fill_(1.0 if name.startswith("weight") else 0.25)
        out, state = module(torch.tensor([[1.0], [0.0], [0.0]], dtype=torch.float64))
    expected_out = torch.tensor(hs, dtype=torch.float64).reshape(3, 1)
    # The literals carry ~16 significant digits; 1e-12 leaves room for libm differences only.
    torch.testing.assert_close(out, expected_out, rtol=1e-12, atol=1e-12)
    h_n = state[0] if mode == "LSTM" else state
    torch.testing.assert_close(h_n, expected_out[-1:], rtol=1e-12, atol=1e-12)
    if c_last is not None:
        torch.testing.assert_close(state[1], torch.tensor([[c_last]], dtype=torch.float64),
                                   rtol=1e-12, atol=1e-12)
    # The NumPy oracle must reproduce the hand derivation too (it is checked, not trusted).
    params = {n: np.full(tuple(p.shape), 1.0 if n.startswith("weight") else 0.25)
              for n, p in module.named_parameters()}
    ref_out, _ = ref.run(mode, params, np.array([[1.0], [0.0], [0.0]]), num_layers=1)
    np.testing.assert_allclose(ref_out[:, 0], hs, rtol=1e-12, atol=1e-12)


# ---- Negative controls: each mutation makes torch wrong; the oracle comparison must notice.
def swap_gate_blocks(module, name: str, a: int, b: int) -> None:
    """Swap gate blocks a and b (row blocks of size hidden_size) of parameter ``name``."""
    p = dict(module.named_parameters())[name]
    rows = torch.arange(p.shape[0]).view(ref.GATES[type(module).__name__], -1)
    rows[[a, b]] = rows[[b, a]]
    with torch.no_grad():
        p.copy_(p[rows.flatten()].clone())


def swap_output_directions(out: torch.Tensor) -> torch.Tensor:
    """Present the backward half of a bidirectional output as the forward one and vice versa."""
    h = out.shape[-1] // 2
    return torch.cat([out[..., h:], out[..., :h]], dim=-1)


BY_ID = {c.id: c for c in CASES}
NEGATIVE = [  # (case, parameter whose gate blocks 0 and 1 get swapped, or None: swap directions)
    pytest.param(BY_ID["lstm-hello-h0"], "weight_ih_l0", id="lstm-swap-i-f-weight_ih_l0"),
    pytest.param(BY_ID["gru-hello"], "weight_ih_l0", id="gru-swap-r-z-weight_ih_l0"),
    pytest.param(BY_ID["gru-hello"], "bias_hh_l0", id="gru-swap-r-z-bias_hh_l0"),
    pytest.param(BY_ID["lstm_proj-2layer-bidir-h0"], None, id="lstm_proj-swap-directions"),
    pytest.param(BY_ID["rnn_relu-2layer-bidir-h0-seqfirst"], None, id="rnn-swap-directions"),
]


@pytest.mark.parametrize("case, swapped_param", NEGATIVE)
def test_oracle_comparison_detects_a_wrong_module(case: Case, swapped_param) -> None:
    x, hx = make_inputs(case)
    module, params = build(case, x.shape[-1], torch.float64)
    expected = to_torch(oracle(case, params, x, hx))
    if swapped_param is not None:
        swap_gate_blocks(module, swapped_param, 0, 1)
    out, state = torch_forward(module, x, hx, torch.float64)
    if swapped_param is None:
        out = swap_output_directions(out)
    # only a value mismatch counts: a shape, dtype or structure error is an AssertionError too
    with pytest.raises(AssertionError, match="Tensor-likes are not close"):
        torch.testing.assert_close((out, state), expected, rtol=1e-10, atol=1e-10)
