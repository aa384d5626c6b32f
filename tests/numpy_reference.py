"""An independent float64 NumPy oracle for torch.nn.RNN, torch.nn.LSTM and torch.nn.GRU.

Written from the equations on the torch documentation pages, never by calling torch, so that
tests can compare torch against it. Parameters are a dict of NumPy arrays keyed by torch's
parameter names (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``,
``weight_hr_l0`` and the same with the ``_reverse`` suffix); a missing bias counts as zero.

Layouts (from the "Inputs" / "Outputs" sections of the docs), D = 2 if bidirectional else 1:

* input: (L, N, H_in), or (N, L, H_in) with batch_first, or (L, H_in) unbatched;
* output: the same layout with D * H_out features; ``output[..., :H_out]`` is the forward
  direction and ``output[..., H_out:]`` the backward one;
* h_0 / h_n: (num_layers * D, N, H_out), i.e. ``view(num_layers, D, N, H_out)``; c_0 / c_n the
  same with H_cell (= hidden_size); unbatched states drop the N axis. batch_first never
  applies to states. H_out = proj_size if proj_size > 0 else hidden_size.
* layer k > 0 takes the concatenated (forward, backward) output of layer k - 1 as its input.
"""
from __future__ import annotations

import math

import numpy as np

GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def param_shapes(
    mode: str,
    input_size: int,
    hidden_size: int,
    *,
    num_layers: int = 1,
    bidirectional: bool = False,
    bias: bool = True,
    proj_size: int = 0,
) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes from the "Variables" section of the docs, in torch's order.

    weight_ih_l[k]: (G*hidden_size, input_size) for k = 0, else (G*hidden_size, D*H_out);
    weight_hh_l[k]: (G*hidden_size, H_out); bias_ih_l[k], bias_hh_l[k]: (G*hidden_size,);
    weight_hr_l[k] (LSTM with proj_size > 0): (proj_size, hidden_size). G = 1, 4, 3 gates.
    """
    gates, d = GATES[mode], 2 if bidirectional else 1
    h_out = proj_size or hidden_size
    shapes: dict[str, tuple[int, ...]] = {}
    for k in range(num_layers):
        layer_in = input_size if k == 0 else d * h_out
        for suffix in ("", "_reverse")[:d]:
            shapes[f"weight_ih_l{k}{suffix}"] = (gates * hidden_size, layer_in)
            shapes[f"weight_hh_l{k}{suffix}"] = (gates * hidden_size, h_out)
            if bias:
                shapes[f"bias_ih_l{k}{suffix}"] = (gates * hidden_size,)
                shapes[f"bias_hh_l{k}{suffix}"] = (gates * hidden_size,)
            if proj_size:
                shapes[f"weight_hr_l{k}{suffix}"] = (proj_size, hidden_size)
    return shapes


def deterministic_params(shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """RNG-free parameter values: entry j (flat, C order) of the k-th parameter is
    ``0.5 * sin(1.3 * k + j + 0.1)``. Depends only on the names' order and the shapes, never on
    a random generator or torch's initialisation, so goldens are reproducible everywhere."""
    out = {}
    for k, (name, shape) in enumerate(shapes.items()):
        j = np.arange(math.prod(shape), dtype=np.float64)
        out[name] = (0.5 * np.sin(1.3 * k + j + 0.1)).reshape(shape)
    return out


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def _cell(mode, x, h, c, p, nonlinearity):
    """One time step of one layer and direction; returns (h_t, c_t) (c_t is None unless LSTM)."""
    gi = x @ p["weight_ih"].T + p["bias_ih"]  # W_i* x_t + b_i*, all gates stacked
    gh = h @ p["weight_hh"].T + p["bias_hh"]  # W_h* h_{t-1} + b_h*
    if mode == "RNN":
        # h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)  (or ReLU)
        a = gi + gh
        return (np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0.0)), None
    if mode == "LSTM":
        # i, f, g, o = sigma, sigma, tanh, sigma of (W_i* x_t + b_i* + W_h* h_{t-1} + b_h*)
        # c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t);  with projection h_t = W_hr h_t
        i, f, g, o = np.split(gi + gh, 4, axis=-1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        if "weight_hr" in p:
            h = h @ p["weight_hr"].T
        return h, c
    # GRU: r = sigma(W_ir x + b_ir + W_hr h + b_hr); z likewise;
    # n = tanh(W_in x + b_in + r * (W_hn h + b_hn));  h_t = (1 - z) * n + z * h_{t-1}
    ir, iz, in_ = np.split(gi, 3, axis=-1)
    hr, hz, hn = np.split(gh, 3, axis=-1)
    r, z = _sigmoid(ir + hr), _sigmoid(iz + hz)
    n = np.tanh(in_ + r * hn)
    return (1.0 - z) * n + z * h, None


def _layer_params(params, k, suffix):
    p = {}
    for base in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"):
        name = f"{base}_l{k}{suffix}"
        if name in params:
            p[base] = np.asarray(params[name], dtype=np.float64)
        elif base.startswith("bias"):
            p[base] = 0.0  # bias=False: the docs' b terms vanish
    return p


def run(
    mode: str,
    params: dict[str, np.ndarray],
    x,
    hx=None,
    *,
    num_layers: int,
    bidirectional: bool = False,
    batch_first: bool = False,
    nonlinearity: str = "tanh",
    proj_size: int = 0,
):
    """Forward pass of ``mode`` in {"RNN", "LSTM", "GRU"} in float64 (dropout = 0).

    ``hx`` is h_0 (RNN, GRU) or (h_0, c_0) (LSTM), or None for zeros. Returns
    ``(output, h_n)``, or ``(output, (h_n, c_n))`` for LSTM, in torch's layouts (module doc).
    """
    if mode not in GATES or nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"unknown mode/nonlinearity {mode!r}/{nonlinearity!r}")
    x = np.asarray(x, dtype=np.float64)
    unbatched = x.ndim == 2
    if unbatched:
        x = x[:, None, :]  # (L, 1, H_in)
    elif batch_first:
        x = x.transpose(1, 0, 2)  # (N, L, H_in) -> (L, N, H_in)
    seq_len, batch, _ = x.shape
    d = 2 if bidirectional else 1
    hidden = params["weight_hh_l0"].shape[0] // GATES[mode]
    h_out = proj_size or hidden

    h0, c0 = (hx if mode == "LSTM" else (hx, None)) if hx is not None else (None, None)
    h0 = np.zeros((num_layers * d, batch, h_out)) if h0 is None else np.asarray(h0, np.float64)
    c0 = np.zeros((num_layers * d, batch, hidden)) if c0 is None else np.asarray(c0, np.float64)
    if unbatched and hx is not None:
        h0, c0 = h0[:, None, :], c0[:, None, :]

    layer_input, h_n, c_n = x, [], []
    for k in range(num_layers):
        outs = []
        for direction in range(d):
            p = _layer_params(params, k, "_reverse" if direction else "")
            h, c = h0[k * d + direction], c0[k * d + direction]
            out = np.empty((seq_len, batch, h_out))
            steps = range(seq_len - 1, -1, -1) if direction else range(seq_len)
            for t in steps:  # the reverse direction reads the sequence back to front
                h, c = _cell(mode, layer_input[t], h, c, p, nonlinearity)
                out[t] = h  # ...but writes output at the original time index t
            outs.append(out)
            h_n.append(h)
            c_n.append(c)
        layer_input = np.concatenate(outs, axis=-1)

    output, h_n = layer_input, np.stack(h_n)
    c_n = np.stack(c_n) if mode == "LSTM" else None
    if unbatched:
        output, h_n = output[:, 0], h_n[:, 0]
        c_n = c_n[:, 0] if c_n is not None else None
    elif batch_first:
        output = output.transpose(1, 0, 2)
    return (output, (h_n, c_n)) if mode == "LSTM" else (output, h_n)
