"""reference for hand-written modules: their own parameter names placed on torch's layer by order
and shape, every gate order, both GRU reset conventions, an explicit weight_map; a module whose
math is no such layer is caught with the closest placement's evidence, or not applicable naming
every parameter that could not be placed. (torch's own names: the zoo's swapped-gate modules,
tests/test_zoo.py, are compared as they load and still caught.)"""
from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from rnn_contracts import ContractViolation, RNNSpec, verify_rnn

H, I = 5, 4


class GRUCellOwnNames(nn.Module):
    """A tutorial GRU cell: x2h / h2h Linear layers, gates in ``order`` within their rows, and the
    reset applied torch's way (``r * (W_hn h + b_hn)``) or ONNX's (``W_hn (r * h)``)."""

    def __init__(self, order: str = "rzn", onnx_reset: bool = False, swap_update: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.x2h, self.h2h = nn.Linear(I, 3 * H), nn.Linear(H, 3 * H)
        self.order, self.onnx_reset, self.swap_update = order, onnx_reset, swap_update

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        gx = dict(zip(self.order, self.x2h(x).chunk(3, 1)))
        w_h = dict(zip(self.order, self.h2h.weight.chunk(3, 0)))
        b_h = dict(zip(self.order, self.h2h.bias.chunk(3, 0)))
        r = torch.sigmoid(gx["r"] + h @ w_h["r"].t() + b_h["r"])
        z = torch.sigmoid(gx["z"] + h @ w_h["z"].t() + b_h["z"])
        hn = (r * h) @ w_h["n"].t() + b_h["n"] if self.onnx_reset else r * (h @ w_h["n"].t() + b_h["n"])
        n = torch.tanh(gx["n"] + hn)
        return (1 - z) * h + z * n if self.swap_update else (1 - z) * n + z * h


class LSTMOwnNames(nn.Module):
    """A layer-convention LSTM loop with its own names and gates stored as i, g, f, o."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.W = nn.Parameter(torch.randn(4 * H, I) * 0.3)
        self.U = nn.Parameter(torch.randn(4 * H, H) * 0.3)
        self.b = nn.Parameter(torch.randn(4 * H) * 0.1)  # one bias: torch's bias_hh is then zeros

    def forward(self, x, hx=None):
        h = x.new_zeros(x.shape[1], H) if hx is None else hx[0][0]
        c = x.new_zeros(x.shape[1], H) if hx is None else hx[1][0]
        outs = []
        for t in range(x.shape[0]):
            i, g, f, o = (x[t] @ self.W.t() + h @ self.U.t() + self.b).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs), (h[None], c[None])


class ParameterListLSTM(nn.Module):
    """An LSTM loop whose weights and both biases sit in an nn.ParameterList: no name says which
    vector is a bias (``w.2``, ``w.3``); ``bug``: h = o * c, the tanh on c missing."""

    def __init__(self, bug: bool = False) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.w = nn.ParameterList(nn.Parameter(torch.randn(shape) * 0.3)
                                  for shape in [(4 * H, I), (4 * H, H), (4 * H,), (4 * H,)])
        self.bug = bug

    def forward(self, x, hx=None):
        w_ih, w_hh, b_ih, b_hh = self.w
        h = x.new_zeros(x.shape[1], H) if hx is None else hx[0][0]
        c = x.new_zeros(x.shape[1], H) if hx is None else hx[1][0]
        outs = []
        for t in range(x.shape[0]):
            i, f, g, o = (x[t] @ w_ih.t() + b_ih + h @ w_hh.t() + b_hh).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * (c if self.bug else torch.tanh(c))
            outs.append(h)
        return torch.stack(outs), (h[None], c[None])


def test_vectors_in_a_parameter_list_are_placed_as_the_biases() -> None:
    """From a user-view review: bias slots took only parameters named as biases, so an
    nn.ParameterList LSTM had its biases replaced with zeros and two vectors left over: reference
    was "not applicable" and the missing tanh passed. Where no parameter is named as a bias, the
    vectors left over fill the bias slots by order and shape."""
    spec = RNNSpec("LSTM", I, H)
    reference = next(r for r in verify_rnn(ParameterListLSTM(), spec).results if r.name == "reference")
    assert (reference.status, reference.detail) == (
        "passed", "placed by order and shape: weight_ih_l0 <- w.0, weight_hh_l0 <- w.1, "
        "bias_ih_l0 <- w.2, bias_hh_l0 <- w.3; gate order i, f, g, o")
    with pytest.raises(ContractViolation) as caught:
        verify_rnn(ParameterListLSTM(bug=True), spec)
    assert [r.name for r in caught.value.report.failures] == ["reference"]


class IndRNN(nn.Module):
    """h_t = relu(W x_t + u * h_{t-1} + b): an elementwise recurrent weight, not torch's RNN."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.input_weight = nn.Parameter(torch.randn(H, I) * 0.3)
        self.recurrent_weight = nn.Parameter(torch.rand(H))
        self.bias = nn.Parameter(torch.zeros(H))

    def forward(self, x, hx=None):
        h = x.new_zeros(x.shape[1], H) if hx is None else hx[0]
        outs = []
        for t in range(x.shape[0]):
            h = torch.relu(x[t] @ self.input_weight.t() + self.recurrent_weight * h + self.bias)
            outs.append(h)
        return torch.stack(outs), h[None]


CELL = RNNSpec("GRU", I, H, convention="cell")


def _reference(module: nn.Module, spec: RNNSpec, **kwargs: object):
    try:
        report = verify_rnn(module, spec, contracts=["reference"], **kwargs)
    except ContractViolation as exc:
        report = exc.report
    return next(r for r in report.results if r.name == "reference")


@pytest.mark.parametrize(("module", "placed"), [
    (GRUCellOwnNames(), "gate order r, z, n; reset convention r * (W_hn h + b_hn) (torch)"),
    (GRUCellOwnNames("zrn"), "gate order z, r, n; reset convention r * (W_hn h + b_hn) (torch)"),
    (GRUCellOwnNames(onnx_reset=True), "gate order r, z, n; reset convention W_hn (r * h) (ONNX linear_before_reset=0)"),
], ids=["torch-order", "z-first", "onnx-reset"])
def test_a_gru_cell_with_its_own_names_is_placed_and_reported(module: nn.Module, placed: str) -> None:
    result = _reference(module, CELL)
    assert result.status == "passed"
    assert result.detail == ("placed by order and shape: weight_ih_l0 <- x2h.weight, weight_hh_l0 <- h2h.weight, "
                             f"bias_ih_l0 <- x2h.bias, bias_hh_l0 <- h2h.bias; {placed}")


def test_an_lstm_with_one_bias_and_its_own_gate_order() -> None:
    result = _reference(LSTMOwnNames(), RNNSpec("LSTM", I, H))
    assert (result.status, result.detail) == ("passed", (
        "placed by order and shape: weight_ih_l0 <- W, weight_hh_l0 <- U, bias_ih_l0 <- b, bias_hh_l0 <- zeros; "
        "gate order i, g, f, o"))


class CellStacks(nn.Module):
    """A bidirectional LSTM from two ModuleLists of nn.LSTMCell, ``fw`` and ``bw`` (torch's math):
    by order alone the directions interleave, and layer 0's reverse slots took the forward cell
    of layer 1's recurrent weight (a user-view review: it failed reference). ``bw_first``: the
    ``bw`` list declared first; ``input_size`` = 2 * H makes every layer's cells one shape."""

    def __init__(self, layers: int = 2, input_size: int = I, bw_first: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layers = layers

        def cells() -> nn.ModuleList:
            return nn.ModuleList(nn.LSTMCell(input_size if layer == 0 else 2 * H, H) for layer in range(layers))

        if bw_first:
            self.bw, self.fw = cells(), cells()
        else:
            self.fw, self.bw = cells(), cells()

    def forward(self, x: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple:
        if hx is None:
            hx = (x.new_zeros(2 * self.layers, x.shape[1], H),) * 2
        inp, hs, cs = x, [], []
        for layer in range(self.layers):
            outputs = []
            for d, cell in enumerate((self.fw[layer], self.bw[layer])):
                h, c = hx[0][2 * layer + d], hx[1][2 * layer + d]
                steps = []
                for t in (reversed(range(x.shape[0])) if d else range(x.shape[0])):
                    h, c = cell(inp[t], (h, c))
                    steps.append(h)
                outputs.append(torch.stack(steps[::-1] if d else steps))
                hs.append(h)
                cs.append(c)
            inp = torch.cat(outputs, -1)
        return inp, (torch.stack(hs), torch.stack(cs))


class ElmanCell(nn.Module):
    """An Elman cell of two Linear layers: its parameters sit one level deeper (``fw.0.ih.weight``)."""

    def __init__(self, input_size: int) -> None:
        super().__init__()
        self.ih, self.hh = nn.Linear(input_size, H), nn.Linear(H, H)

    def forward(self, x_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.ih(x_t) + self.hh(h))


class ElmanStacks(nn.Module):
    """A two-layer bidirectional RNN from ``fw`` and ``bw`` lists of :class:`ElmanCell`."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fw = nn.ModuleList(ElmanCell(I if layer == 0 else 2 * H) for layer in range(2))
        self.bw = nn.ModuleList(ElmanCell(I if layer == 0 else 2 * H) for layer in range(2))

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        hx = x.new_zeros(4, x.shape[1], H) if hx is None else hx
        inp, hs = x, []
        for layer in range(2):
            outputs = []
            for d, cell in enumerate((self.fw[layer], self.bw[layer])):
                h, steps = hx[2 * layer + d], []
                for t in (reversed(range(x.shape[0])) if d else range(x.shape[0])):
                    h = cell(inp[t], h)
                    steps.append(h)
                outputs.append(torch.stack(steps[::-1] if d else steps))
                hs.append(h)
            inp = torch.cat(outputs, -1)
        return inp, torch.stack(hs)


class TopLayerFirst(nn.Module):
    """A three-layer GRU from a ModuleDict of GRUCells declared top layer first (l2, l1, l0)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.cells = nn.ModuleDict({f"l{layer}": nn.GRUCell(H, H) for layer in (2, 1, 0)})

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        hx = x.new_zeros(3, x.shape[1], H) if hx is None else hx
        inp, hs = x, []
        for layer in range(3):
            h, steps = hx[layer], []
            for x_t in inp:
                h = self.cells[f"l{layer}"](x_t, h)
                steps.append(h)
            inp = torch.stack(steps)
            hs.append(h)
        return inp, torch.stack(hs)


@pytest.mark.parametrize(("make", "spec"), [
    (lambda: CellStacks(layers=3), RNNSpec("LSTM", I, H, num_layers=3, bidirectional=True)),
    (lambda: CellStacks(input_size=2 * H), RNNSpec("LSTM", 2 * H, H, num_layers=2, bidirectional=True)),
    (lambda: CellStacks(bw_first=True), RNNSpec("LSTM", I, H, num_layers=2, bidirectional=True)),
    (ElmanStacks, RNNSpec("RNN", I, H, num_layers=2, bidirectional=True)),
    (TopLayerFirst, RNNSpec("GRU", H, H, num_layers=3)),
], ids=["three-layers", "every-cell-one-shape", "bw-declared-first", "two-linear-cells", "top-layer-first"])
def test_stacks_of_cells_in_other_layouts_are_placed_too(make: Callable[[], nn.Module], spec: RNNSpec) -> None:
    """The first unused cell of a fitting shape mixed the directions from layer 1 on (every cell
    of one shape there) and in any layer where input_size is 2 * H (a review); cells of two
    Linear layers were read as twice as many owners; a list declared in another order kept its
    order. Kills: the container readings of _owner_orders; _owners' depth search; the order by
    the numbers in the names."""
    assert _reference(make(), spec).status == "passed"


def test_a_stack_of_cells_per_direction_is_placed_one_cell_per_layer_and_direction() -> None:
    """Kills: the placement by submodule left out of the placements tried."""
    result = _reference(CellStacks(), RNNSpec("LSTM", I, H, num_layers=2, bidirectional=True))
    slots = ", ".join(f"{kind}_{side}_l{layer}{sfx} <- {owner}.{layer}.{kind}_{side}"
                      for layer in range(2) for sfx, owner in (("", "fw"), ("_reverse", "bw"))
                      for kind, side in (("weight", "ih"), ("weight", "hh"), ("bias", "ih"), ("bias", "hh")))
    assert (result.status, result.detail) == ("passed", f"placed by order and shape: {slots}; gate order i, f, g, o")


class GatePerLinear(nn.Module):
    """A GRU of one Linear per gate and side, declared gate by gate (W_ir, U_hr, W_iz, ...):
    torch's math, its weights and biases split by gate (a user-view review: reference was not
    applicable, and told it to pass a weight_map). ``convention="chung"``: h' = z * n + (1 - z) * h."""

    def __init__(self, convention: str = "torch") -> None:
        super().__init__()
        torch.manual_seed(0)
        for gate in "rzn":
            setattr(self, f"W_i{gate}", nn.Linear(I, H))
            setattr(self, f"U_h{gate}", nn.Linear(H, H))
        self.convention = convention

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h, outputs = (x.new_zeros(x.shape[1], H) if hx is None else hx[0]), []
        for x_t in x:
            r = torch.sigmoid(self.W_ir(x_t) + self.U_hr(h))
            z = torch.sigmoid(self.W_iz(x_t) + self.U_hz(h))
            n = torch.tanh(self.W_in(x_t) + r * self.U_hn(h))
            h = (1 - z) * n + z * h if self.convention == "torch" else z * n + (1 - z) * h
            outputs.append(h)
        return torch.stack(outputs), h[None]


class GatePerParameter(nn.Module):
    """An LSTM of plain Parameters per gate (W_i, U_i, b_i, W_f, ...), its gates in ``order``."""

    def __init__(self, order: str = "ifgo") -> None:
        super().__init__()
        torch.manual_seed(0)
        for gate in order:
            setattr(self, f"W_{gate}", nn.Parameter(0.3 * torch.randn(H, I)))
            setattr(self, f"U_{gate}", nn.Parameter(0.3 * torch.randn(H, H)))
            setattr(self, f"b_{gate}", nn.Parameter(0.1 * torch.randn(H)))

    def forward(self, x: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple:
        h, c = (x.new_zeros(x.shape[1], H),) * 2 if hx is None else (hx[0][0], hx[1][0])
        outputs = []
        for x_t in x:
            a = {g: x_t @ getattr(self, f"W_{g}").T + h @ getattr(self, f"U_{g}").T + getattr(self, f"b_{g}")
                 for g in "ifgo"}
            c = torch.sigmoid(a["f"]) * c + torch.sigmoid(a["i"]) * torch.tanh(a["g"])
            h = torch.sigmoid(a["o"]) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs), (h[None], c[None])


class LinearPerGateOnXH(nn.Module):
    """An LSTM of one Linear(I + H, H) per gate on torch.cat([x, h])."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.gi, self.gf, self.gg, self.go = (nn.Linear(I + H, H) for _ in range(4))

    def forward(self, x: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple:
        h, c = (x.new_zeros(x.shape[1], H),) * 2 if hx is None else (hx[0][0], hx[1][0])
        outputs = []
        for x_t in x:
            xh = torch.cat([x_t, h], 1)
            c = torch.sigmoid(self.gf(xh)) * c + torch.sigmoid(self.gi(xh)) * torch.tanh(self.gg(xh))
            h = torch.sigmoid(self.go(xh)) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs), (h[None], c[None])


def _cat(*names: str) -> str:
    return "cat(" + ", ".join(names) + ")"


GRU_NOTE = ("placed by order and shape: weight_ih_l0 <- " + _cat("W_ir.weight", "W_iz.weight", "W_in.weight")
            + ", weight_hh_l0 <- " + _cat("U_hr.weight", "U_hz.weight", "U_hn.weight")
            + ", bias_ih_l0 <- " + _cat("W_ir.bias", "W_iz.bias", "W_in.bias")
            + ", bias_hh_l0 <- " + _cat("U_hr.bias", "U_hz.bias", "U_hn.bias")
            + "; gate order r, z, n; reset convention r * (W_hn h + b_hn) (torch)")
XH = _cat("gi.weight", "gf.weight", "gg.weight", "go.weight")


@pytest.mark.parametrize(("module", "spec", "note"), [
    (GatePerLinear(), RNNSpec("GRU", I, H), GRU_NOTE),
    (GatePerParameter("fiog"), RNNSpec("LSTM", I, H), (
        "placed by order and shape: weight_ih_l0 <- " + _cat("W_f", "W_i", "W_o", "W_g") + ", weight_hh_l0 <- "
        + _cat("U_f", "U_i", "U_o", "U_g") + ", bias_ih_l0 <- " + _cat("b_f", "b_i", "b_o", "b_g")
        + ", bias_hh_l0 <- zeros; gate order f, i, o, g")),
    (LinearPerGateOnXH(), RNNSpec("LSTM", I, H), (
        f"placed by order and shape: weight_ih_l0 <- {XH}[:, :4], weight_hh_l0 <- {XH}[:, 4:], bias_ih_l0 <- "
        + _cat("gi.bias", "gf.bias", "gg.bias", "go.bias") + ", bias_hh_l0 <- zeros; gate order i, f, g, o")),
], ids=["gru-linear-per-gate", "lstm-parameters-per-gate", "lstm-linear-per-gate-on-xh"])
def test_weights_split_by_gate_are_joined_and_placed(module: nn.Module, spec: RNNSpec, note: str) -> None:
    """One weight per gate is joined along the rows in declaration order (the gate orders are
    tried), its submodules' biases in the same order (GatePerLinear declares W_ir, U_hr, W_iz,
    ...: by shape alone the biases of both sides interleave), and a weight on [x, h] is split at
    the input's width. Kills: _joined not tried; its biases grouped by shape alone."""
    result = _reference(module, spec)
    assert (result.status, result.detail) == ("passed", note)


def test_joined_weights_that_compute_otherwise_are_not_applicable_with_the_closest_evidence() -> None:
    """Which pieces form a gate is read off order and shape: a placement of joined pieces that
    matches nothing is no proof of a bug (the pieces may be grouped otherwise), so the verdict is
    not applicable, with the evidence. Kills: the rearranged placement's failure raised as one."""
    result = _reference(GatePerLinear("chung"), RNNSpec("GRU", I, H))
    assert result.status == "not applicable"
    assert result.detail.startswith(
        "placed on torch.nn.GRU only with its parameters joined per gate or split at [x, h], no placement "
        "computes what the module computes: its math, or the layout of its gates, is not torch's GRU; the "
        "closest, placed by order and shape: weight_ih_l0 <- " + _cat("W_ir.weight", "W_iz.weight", "W_in.weight"))
    assert "expected" in result.detail and "allowed atol" in result.detail


class CellIgnoringH0(nn.Module):
    """torch's GRU math through a GRUCell, always from zeros: right with no h_0, wrong with one."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.cell = nn.GRUCell(I, H)

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h, outputs = x.new_zeros(x.shape[1], H), []
        for x_t in x:
            h = self.cell(x_t, h)
            outputs.append(h)
        return torch.stack(outputs), h[None]


def test_the_closest_placement_is_the_one_that_held_the_most_comparisons() -> None:
    """Right with no h_0, wrong with one: the closest placement is its own (every comparison
    without h_0 held), not the one whose first miss was smallest (biases swapped under ONNX's
    reset, a user-view review). Kills: _closeness reading the difference alone."""
    result = _reference(CellIgnoringH0(), RNNSpec("GRU", I, H))
    assert result.status == "failed"
    assert result.detail.startswith(
        "no placement of the module's parameters on torch.nn.GRU computes what the module computes; the "
        "closest, placed by order and shape: weight_ih_l0 <- cell.weight_ih, weight_hh_l0 <- cell.weight_hh, "
        "bias_ih_l0 <- cell.bias_ih, bias_hh_l0 <- cell.bias_hh; gate order r, z, n; reset convention "
        "r * (W_hn h + b_hn) (torch): with a random h_0 the module must compute what torch.nn.GRU computes")


def test_math_that_matches_no_placement_fails_with_the_closest_evidence() -> None:
    result = _reference(GRUCellOwnNames(swap_update=True), CELL)  # h' = (1 - z) * h + z * n
    assert result.status == "failed"
    assert result.detail.startswith("no placement of the module's parameters on torch.nn.GRU computes what "
                                    "the module computes; the closest, placed by order and shape: ")
    assert result.evidence.causes == () and "expected" in result.detail and "allowed atol" in result.detail


def test_parameters_that_cannot_be_placed_are_named_in_full() -> None:
    result = _reference(IndRNN(), RNNSpec("RNN", I, H, nonlinearity="relu"))
    assert (result.status, result.detail) == ("not applicable", (
        "the module's parameters cannot be placed on torch.nn.RNN(4, 5, nonlinearity='relu') by name, "
        "order or shape: parameters that could not be placed: recurrent_weight (5,); torch's slots left "
        "without one: weight_hh_l0 (5, 5) (its math is not torch's RNN, or pass verify_rnn(weight_map="
        "{torch name: parameter name}))"))


def test_an_explicit_weight_map() -> None:
    right = {"weight_ih_l0": "x2h.weight", "weight_hh_l0": "h2h.weight", "bias_ih_l0": "x2h.bias",
             "bias_hh_l0": "h2h.bias"}
    assert _reference(GRUCellOwnNames(), CELL, weight_map=right).status == "passed"
    wrong = {**right, "bias_ih_l0": "h2h.bias", "bias_hh_l0": "x2h.bias"}
    assert _reference(GRUCellOwnNames(), CELL, weight_map=wrong).status == "failed"
    with pytest.raises(TypeError, match=r"^verify_rnn\(weight_map=\.\.\.\) takes \{torch parameter name"):
        verify_rnn(GRUCellOwnNames(), CELL, weight_map=["weight_ih_l0"])
    # the caller's mistakes are the caller's errors, before any probe runs
    for bad, message in (
        ({"weight_ih_l0": "W"}, r"'W' names no parameter of the module; its parameters: x2h.weight, "),
        ({"weight_ih_10": "x2h.weight"}, r"'weight_ih_10' is no parameter of torch.nn.GRUCell\(4, 5\); its "),
        ({"weight_ih_l0": "h2h.weight"}, r"h2h.weight has shape \(15, 5\), weight_ih_l0 needs \(15, 4\)$"),
    ):
        with pytest.raises(ValueError, match=r"^verify_rnn\(weight_map=\.\.\.\): " + message):
            verify_rnn(GRUCellOwnNames(), CELL, weight_map=bad)


class ElmanRowMajor(nn.Module):
    """h = tanh(x @ W_ih + h @ W_hh + b): square weights stored transposed to torch's layout."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(7)
        self.W_ih, self.W_hh = nn.Parameter(torch.randn(H, H) * 0.3), nn.Parameter(torch.randn(H, H) * 0.3)
        self.b = nn.Parameter(torch.randn(H) * 0.1)

    def forward(self, x, hx=None):
        h = x.new_zeros(x.shape[1], H) if hx is None else hx[0]
        outs = []
        for t in range(x.shape[0]):
            h = torch.tanh(x[t] @ self.W_ih + h @ self.W_hh + self.b)
            outs.append(h)
        return torch.stack(outs), h[None]


def test_square_weights_are_tried_transposed_and_can_be_mapped_so() -> None:
    spec = RNNSpec("RNN", H, H)
    found = _reference(ElmanRowMajor(), spec)
    assert (found.status, found.detail) == ("passed", "placed by order and shape: weight_ih_l0 <- W_ih.T, "
                                            "weight_hh_l0 <- W_hh.T, bias_ih_l0 <- b, bias_hh_l0 <- zeros")
    mapped = _reference(ElmanRowMajor(), spec, weight_map={"weight_ih_l0": "W_ih.T", "weight_hh_l0": "W_hh.T"})
    assert mapped.status == "passed"
    wrong = _reference(ElmanRowMajor(), spec, weight_map={"weight_ih_l0": "W_ih", "weight_hh_l0": "W_hh"})
    assert wrong.status == "failed"  # the map is authoritative: nothing transposes it back


# -- parametrized weights (torch.nn.utils.parametrize) are read as forward reads them ---------------
class GRUWithoutReset(nn.Module):
    """torch's GRU names and weights, but the candidate ignores the reset gate."""

    mode, input_size, hidden_size = "GRU", I, H

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        gru = nn.GRU(I, H)
        self.weight_ih_l0, self.weight_hh_l0 = gru.weight_ih_l0, gru.weight_hh_l0
        self.bias_ih_l0, self.bias_hh_l0 = gru.bias_ih_l0, gru.bias_hh_l0

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None):
        h = x.new_zeros(x.shape[1], H) if hx is None else hx[0]
        outs = []
        for x_t in x:
            _, iz, i_n = (x_t @ self.weight_ih_l0.t() + self.bias_ih_l0).chunk(3, 1)
            _, hz, h_n = (h @ self.weight_hh_l0.t() + self.bias_hh_l0).chunk(3, 1)
            z = torch.sigmoid(iz + hz)
            h = (1 - z) * torch.tanh(i_n + h_n) + z * h
            outs.append(h)
        return torch.stack(outs), h[None]


def _status(module: nn.Module, **kwargs) -> tuple[str, str]:
    try:
        report = verify_rnn(module, contracts=["reference"], **kwargs)
    except ContractViolation as exc:
        report = exc.report
    (result,) = report.results
    return result.status, result.detail


def test_parametrized_weights_are_placed_with_the_values_forward_reads() -> None:
    """weight_norm / spectral_norm hold a weight as parametrizations.<name>.original(s): placing
    those raw tensors failed a torch LSTM under spectral_norm and left a weight_norm GRU "not
    applicable" (its magnitude has no slot), so a wrong GRU passed once wrapped in weight_norm.
    The computed weight now stands under its own name."""
    from torch.nn.utils.parametrizations import spectral_norm, weight_norm

    torch.manual_seed(0)
    loaded = ("passed", "torch's parameter names: loaded as they are")
    assert _status(spectral_norm(nn.LSTM(I, H), "weight_ih_l0")) == loaded
    assert _status(weight_norm(nn.GRU(I, H), "weight_hh_l0")) == loaded
    status, detail = _status(weight_norm(GRUWithoutReset(), "weight_hh_l0"))
    assert status == "failed" and detail.startswith(
        "with no h_0 the module must compute what torch.nn.GRU computes with its weights: output["), detail
    # a weight_map may name a parametrized weight by its own name
    mapped = {n: n for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")}
    assert _status(weight_norm(nn.GRU(I, H), "weight_hh_l0"), weight_map=mapped)[0] == "passed"
