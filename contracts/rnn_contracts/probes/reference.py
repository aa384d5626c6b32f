"""Reference equivalence: a module whose parameters are a torch layer's must compute what it does.

The module's parameters are placed on the torch layer its spec describes (torch.nn.RNN / LSTM /
GRU, with torch's gate layout: LSTM i, f, g, o; GRU r, z, n with n = tanh(W_in x + b_in +
r * (W_hn h + b_hn))):

1. its state_dict loads strictly (torch's own names): compared as it is, so a module with
   torch's names and swapped gates is caught;
2. else by order and shape: each of the layer's slots, in the layer's order, takes the module's
   next unused parameter of that shape (a missing bias is zero), trying the ih/hh swaps that equal
   shapes allow, every order of the gate blocks, and for GRU both reset conventions
   (``r * (W_hn h + b_hn)`` as torch, ``W_hn (r * h)`` as ONNX's linear_before_reset=0). The
   contract holds when one placement computes what the module computes, and the report says
   which; a module whose math matches no placement fails with the closest one's evidence (the
   one that held the most comparisons, the run without h_0 first, then the smallest miss);
   Before order alone: where the module is a stack of submodules, one per layer and
   direction (``fw`` and ``bw`` lists of cells, pairs of cells per layer), each submodule
   whole on its layer and direction; and where order and shape leave parameters or slots over,
   weights split one per gate joined in their order (their submodules' biases with them) and a
   weight on ``[x, h]`` split at the input's width: a placement of joined or split pieces that
   matches nothing is not applicable with the closest evidence, not a failure (which pieces form
   a gate was read off order and shape);
3. ``verify_rnn(weight_map={torch name: module parameter name})`` places the rest by hand
   (``"W.T"``: the transpose of ``W``).

A module whose parameters cannot all be placed (LayerNorm weights, an elementwise recurrent
weight) is not applicable, naming every parameter that could not be placed.
"""
from __future__ import annotations

import itertools
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch

from rnn_contracts.probes.base import Context, NotApplicable, ProbeFailure, Result
from rnn_contracts.probes.shared import random_state_run
from rnn_contracts.spec import RNNSpec

GATES = {"RNN": ("h",), "LSTM": ("i", "f", "g", "o"), "GRU": ("r", "z", "n")}
#: The start of cuDNN's warning for RNN weights that are not one flat buffer
#: (aten/src/ATen/native/cudnn/RNN.cpp), which every reference run on CUDA would raise.
CUDNN_NOT_FLAT = "RNN module weights are not part of single contiguous chunk of memory"


def build_reference(spec: RNNSpec, dtype: torch.dtype | None = None) -> torch.nn.RNNBase:
    """The torch layer ``spec`` describes (dropout 0: probes run in eval mode anyway), on the meta
    device: shapes without storage and without torch's random initialisation (147 ms for a
    large LSTM, for values the probe overwrites): its slots, for torch's kernel to run on the
    placement's tensors (:func:`run_torch_kernel`)."""
    kwargs = dict(num_layers=spec.num_layers, bias=spec.bias, batch_first=spec.batch_first,
                  bidirectional=spec.bidirectional, device="meta", dtype=dtype)
    if spec.mode == "RNN":
        return torch.nn.RNN(spec.input_size, spec.hidden_size, nonlinearity=spec.nonlinearity, **kwargs)
    if spec.mode == "LSTM":
        return torch.nn.LSTM(spec.input_size, spec.hidden_size, proj_size=spec.proj_size, **kwargs)
    return torch.nn.GRU(spec.input_size, spec.hidden_size, **kwargs)


#: Reference layers built so far, the most recent last: their names, shapes and flat weight
#: order, never a value (the kernel runs on the placement's tensors, :func:`run_torch_kernel`),
#: so threads may share them.
_LAYERS: dict[tuple[object, ...], torch.nn.RNNBase] = {}
_LAYERS_KEPT = 16
_LAYERS_LOCK = threading.Lock()


def _layer_key(spec: RNNSpec, dtype: torch.dtype | None) -> tuple[object, ...]:
    return (spec.mode, spec.nonlinearity, spec.input_size, spec.hidden_size, spec.proj_size,
            spec.num_layers, spec.bias, spec.batch_first, spec.bidirectional, dtype)


def reference_layer(spec: RNNSpec, dtype: torch.dtype | None) -> torch.nn.RNNBase:
    """:func:`build_reference`'s layer in eval mode, built once for each configuration (0.6 ms a
    build at probe size, a tenth of a verify_rnn run). It holds no values (its parameters and
    flat weight list stay on the meta device): only the slots' names and shapes, in the order
    torch's kernel takes them. The last ``_LAYERS_KEPT`` are kept."""
    key = _layer_key(spec, dtype)
    with _LAYERS_LOCK:
        layer = _LAYERS.pop(key, None)
        if layer is None:
            layer = build_reference(spec, dtype).eval()
        _LAYERS[key] = layer  # most recent last
        while len(_LAYERS) > _LAYERS_KEPT:
            del _LAYERS[next(iter(_LAYERS))]
    return layer


def run_torch_kernel(layer: torch.nn.RNNBase, spec: RNNSpec, fed: torch.Tensor, hx: object,
                     weights: Mapping[str, torch.Tensor]) -> tuple[object, object]:
    """What ``layer`` returns on a padded input ``fed`` (its layout) and ``hx`` with ``weights``
    (one tensor per slot) as its parameters: the call its forward makes (torch/nn/modules/rnn.py:
    ``_VF.rnn_tanh`` / ``rnn_relu`` / ``lstm`` / ``gru`` with the flat weight list, the layer's
    bias, num_layers, bidirectional and batch_first, no dropout, not training), made directly.
    torch.func.functional_call around the layer computed the same, bitwise, in 2-3x the time
    (LSTM(4, 2) at probe size: 140 us against 67, for each placement tried): it swaps every
    tensor in and out and rebuilds the flat weight list twice."""
    kernel = getattr(torch, {"LSTM": "lstm", "GRU": "gru"}.get(spec.mode, f"rnn_{spec.nonlinearity}"))
    flat = [weights[name] for name in layer._flat_weights_names]
    result = kernel(fed, hx, flat, spec.bias, spec.num_layers, 0.0, False, spec.bidirectional, spec.batch_first)
    return (result[0], (result[1], result[2])) if spec.has_cell else (result[0], result[1])


@dataclass(frozen=True)
class Placement:
    """The module's parameters as the torch layer's: torch name -> (module name or None for a
    zero bias, transposed), a gate order, and the GRU reset convention."""

    slots: tuple[tuple[str, str | None, bool], ...]
    gates: tuple[str, ...]
    reset: str = "torch"  # or "linear_before_reset=0" (GRU)

    def describe(self, mode: str) -> str:
        parts = [f"{torch_name} <- {name + ('.T' if transposed else '') if name else 'zeros'}"
                 for torch_name, name, transposed in self.slots]
        text = "placed by order and shape: " + ", ".join(parts)
        if len(self.gates) > 1:
            text += f"; gate order {', '.join(self.gates)}"
        if mode == "GRU":
            text += ("; reset convention W_hn (r * h) (ONNX linear_before_reset=0)"
                     if self.reset != "torch" else "; reset convention r * (W_hn h + b_hn) (torch)")
        return text


def _bias_like(name: str) -> bool:
    """A parameter named as a bias (``bias``, ``x2h.bias``, ``b``, ``b_ih``, ``b1``); a joined
    one (:func:`_joined`) when all its pieces are, a column slice as the parameter it cuts."""
    if name.startswith(_JOIN) and name.endswith(")"):
        return all(_bias_like(piece) for piece in name[len(_JOIN):-1].split(", "))
    token = name.split("[", 1)[0].rsplit(".", 1)[-1].lower()
    return "bias" in token or re.fullmatch(r"b(_\w+|\d+)?", token) is not None


def _place(slots: list[tuple[str, torch.Size]], params: list[tuple[str, torch.Tensor]],
           given: Mapping[str, str]) -> tuple[list[tuple[str, str | None, bool]], list[str], list[str]]:
    """Greedy by order and shape: (placed slots, module parameters left over, slots without one).
    Bias slots take only parameters named as biases, weight slots only the others: a vector of
    another role (IndRNN's recurrent weight) is then named as unplaced, not placed as a bias.
    Where no parameter at all is named as a bias (an ``nn.ParameterList``, ``blk0_c``) and every
    weight slot found one, the vectors left over fill the bias slots of their shape, in order:
    such a module's biases are placed, not replaced with zeros (a user-view review: its bugs
    passed as "not applicable"). A module that names one bias keeps the rule above (an Elman
    layer with an output gain ``g`` and a ``bias`` leaves ``g`` unplaced)."""
    used: set[str] = set()
    placed, missing = [], []
    for torch_name, shape in slots:
        if torch_name in given:  # validated by verify_rnn: a parameter of this shape, or ".T" of one
            name = given[torch_name]
            base, transposed = (name[:-2], True) if name.endswith(".T") else (name, False)
            placed.append((torch_name, base, transposed))
            used.add(base)
            continue
        is_bias = torch_name.startswith("bias")
        free = [(name, p) for name, p in params if name not in used and _bias_like(name) == is_bias]
        found = next(((name, False) for name, p in free if p.shape == shape), None)
        if found is None and len(shape) == 2 and shape[0] != shape[1]:
            found = next(((name, True) for name, p in free if p.shape == shape[::-1]), None)
        if found is None:
            if torch_name.startswith("bias"):
                placed.append((torch_name, None, False))  # a module without this bias: zeros
                continue
            missing.append(torch_name)
            continue
        used.add(found[0])
        placed.append((torch_name, *found))
    left = [name for name, _ in params if name not in used]
    if left and not missing and not any(_bias_like(name) for name, _ in params):
        shapes, vectors = dict(slots), dict(params)
        for i, (torch_name, name, _) in enumerate(placed):
            match = None if name is not None else next(
                (n for n in left if vectors[n].shape == shapes[torch_name]), None)
            if match is not None:
                placed[i] = (torch_name, match, False)
                left.remove(match)
    return placed, left, missing


#: How a joined parameter is named: ``cat(W_ir.weight, W_iz.weight, W_in.weight)``.
_JOIN = "cat("


def _joined(spec: RNNSpec, params: list[tuple[str, torch.Tensor]]) -> list[tuple[str, torch.Tensor]]:
    """The module's parameters as torch lays its gates out, where they are laid out otherwise:
    one weight per gate (``W_ir``, ``W_iz``, ``W_in``: ``hidden`` rows each), the gates' count of
    them of one shape in their order (other shapes between them), joined along the rows and
    named ``cat(W_ir.weight, W_iz.weight, W_in.weight)`` (the gate orders are tried later); the
    vectors of the same submodules joined in the same order (their biases), other vectors of one
    shape in their order; then a weight that takes ``[x, h]`` (a column count of the layer's
    input plus H_out) split into its x and h columns, ``W[:, :I]`` and ``W[:, I:]``. Each joined
    one takes its first piece's place. Values, not views: only a module whose parameters order
    and shape could not place comes here."""
    gates, hidden = len(GATES[spec.mode]), spec.hidden_size
    piece = {name for name, p in params if gates > 1 and p.dim() in (1, 2) and p.shape[0] == hidden}
    groups: list[list[str]] = []
    for dim in (2, 1):
        pending: dict[tuple[int, ...], list[str]] = {}
        for name, p in params:
            if name in piece and p.dim() == dim and not any(name in g for g in groups):
                run = pending.setdefault(tuple(p.shape), [])
                run.append(name)
                if len(run) == gates:
                    groups.append(pending.pop(tuple(p.shape)))
        if dim == 2:  # the vectors of a weight group's submodules, in its order: their biases
            vectors = {_owner(n): n for n, p in params if n in piece and p.dim() == 1 and _owner(n)}
            for group in list(groups):
                owners = [_owner(n) for n in group]
                if all(owners) and len(set(owners)) == gates and all(o in vectors for o in owners):
                    groups.append([vectors[o] for o in owners])
    tensors = dict(params)
    first = {g[0]: g for g in groups}
    inside = {n for g in groups for n in g}
    joined = [(_JOIN + ", ".join(first[n]) + ")", torch.cat([tensors[m].detach() for m in first[n]], 0))
              if n in first else (n, p) for n, p in params if n in first or n not in inside]
    widths = sorted({spec.input_size, spec.num_directions * spec.h_out})
    split: list[tuple[str, torch.Tensor]] = []
    for name, p in joined:
        cut = next((w for w in widths if p.dim() == 2 and p.shape[0] == gates * hidden
                    and p.shape[1] == w + spec.h_out), None)
        if cut is None:
            split.append((name, p))
        else:
            split += [(f"{name}[:, :{cut}]", p.detach()[:, :cut]), (f"{name}[:, {cut}:]", p.detach()[:, cut:])]
    return split


def _slot_group(torch_name: str) -> str:
    """The layer and direction a slot of torch's layer belongs to: ``l1_reverse`` for
    ``weight_hh_l1_reverse``."""
    return torch_name[torch_name.index("_l") + 1:]


def _owner(name: str) -> str:
    """The submodule a parameter belongs to: ``fw.1`` for ``fw.1.weight_ih``."""
    return name.rpartition(".")[0]


def _owners(params: list[tuple[str, torch.Tensor]], count: int) -> dict[str, list[tuple[str, torch.Tensor]]] | None:
    """The parameters by submodule, at the shallowest depth of their names that gives ``count``
    submodules (``fw.0`` for ``fw.0.weight_ih``, and for ``fw.0.ih.weight`` too: a cell of two
    Linear layers), in declaration order; None where no depth does."""
    deepest = max(len(name.split(".")) for name, _ in params) - 1
    for depth in range(1, deepest + 1):
        owners: dict[str, list[tuple[str, torch.Tensor]]] = {}
        for name, p in params:
            parts = name.split(".")
            if len(parts) <= depth:
                return None  # a parameter above that depth: not a stack of submodules
            owners.setdefault(".".join(parts[:depth]), []).append((name, p))
        if len(owners) == count:
            return owners
    return None


def _owner_orders(names: list[str], layers: int, directions: int) -> list[list[str]]:
    """Ways to read submodules as torch's layer-and-direction slot groups (layer by layer, the
    forward direction first), most natural first: by their containers, ``fw`` and ``bw`` lists
    of ``layers`` cells each (either list first) or ``layers`` pairs of directions (either
    first), then in declaration order, then by the numbers in their names."""
    parents: dict[str, list[str]] = {}
    for name in names:
        parents.setdefault(name.rpartition(".")[0], []).append(name)
    lists = list(parents.values())
    orders = []
    if directions > 1 and len(lists) == directions and all(len(c) == layers for c in lists):
        for by_direction in (lists, lists[::-1]):  # fw and bw lists, in either order
            orders.append([by_direction[d][layer] for layer in range(layers) for d in range(directions)])
    if directions > 1 and len(lists) == layers and all(len(c) == directions for c in lists):
        for flip in (False, True):  # a pair per layer, forward first or backward first
            orders.append([pair[::-1][d] if flip else pair[d] for pair in lists for d in range(directions)])
    orders.append(names)
    numbered = sorted(names, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])
    if numbered != names:  # cells.l2, cells.l1, cells.l0 declared top layer first: by their numbers
        orders.append(numbered)
    return orders


def _placements_by_owner(spec: RNNSpec, slots: list[tuple[str, torch.Size]],
                         params: list[tuple[str, torch.Tensor]]) -> list[list[tuple[str, str | None, bool]]]:
    """Placements where each layer and direction of torch's layer takes the parameters of one
    submodule whole (a stack of cells in ``fw`` and ``bw`` ModuleLists, say: order alone
    interleaves the directions there and gives a layer's slots the weights of several cells),
    one per reading of :func:`_owner_orders` whose every submodule :func:`_place` places on its
    slot group with none left over. A wrong reading places but computes something else; the
    placements tried after it are the judge."""
    groups: dict[str, list[tuple[str, torch.Size]]] = {}
    for torch_name, shape in slots:
        groups.setdefault(_slot_group(torch_name), []).append((torch_name, shape))
    owners = _owners(params, len(groups)) if params else None
    if owners is None:
        return []
    found: list[list[tuple[str, str | None, bool]]] = []
    for order in _owner_orders(list(owners), spec.num_layers, spec.num_directions):
        placed: list[tuple[str, str | None, bool]] = []
        for group, owner in zip(groups.values(), order):
            group_placed, left, missing = _place(group, owners[owner], {})
            if left or missing:
                break
            placed += group_placed
        else:
            if placed not in found:
                found.append(placed)
    return found


def _swapped(placed: list[tuple[str, str | None, bool]], kind: str,
             given: Mapping[str, str]) -> list[tuple[str, str | None, bool]]:
    """The placement with the ih and hh ``kind`` ("weight" or "bias") of every layer exchanged
    (never a slot the weight_map places)."""
    slot = {t: (n, tr) for t, n, tr in placed}
    out = dict(slot)
    for t in slot:
        other = t.replace(f"{kind}_ih", f"{kind}_hh")
        if t.startswith(f"{kind}_ih") and other in slot and t not in given and other not in given:
            out[t], out[other] = slot[other], slot[t]
    return [(t, *out[t]) for t, _, _ in placed]


def _transposed(placed: list[tuple[str, str | None, bool]], square: set[str],
                given: Mapping[str, str]) -> list[tuple[str, str | None, bool]]:
    """The placement with every square weight read transposed (``h @ W`` instead of ``W @ h``:
    a square matrix fits its slot either way, so order and shape alone cannot tell)."""
    return [(t, n, not tr if t in square and t not in given else tr) for t, n, tr in placed]


def _swaps(placed: list[tuple[str, str | None, bool]], given: Mapping[str, str], square: set[str],
           fits: Callable[[list[tuple[str, str | None, bool]]], bool]) -> Iterator[list[tuple[str, str | None, bool]]]:
    """The greedy placement, then with the ih / hh weights, biases or both exchanged where the
    shapes allow it (a module may register them the other way round), each also with its square
    weights transposed."""
    seen: list[list[tuple[str, str | None, bool]]] = []
    for kinds in ((), ("weight",), ("bias",), ("weight", "bias")):
        variant = placed
        for kind in kinds:
            variant = _swapped(variant, kind, given)
        for candidate in (variant, _transposed(variant, square, given)):
            if candidate not in seen and fits(candidate):
                seen.append(candidate)
                yield candidate


def _tensors(placement: Placement, ref_params: dict[str, torch.Tensor], params: dict[str, torch.Tensor],
             mode: str, device: torch.device) -> dict[str, torch.Tensor]:
    """The layer's parameters under ``placement`` on ``device`` (``ref_params``: the layer's own,
    on the meta device, for their shapes and dtype): moved, transposed, gate blocks reordered."""
    order = [placement.gates.index(g) for g in GATES[mode]]
    moved = order != sorted(order)  # torch's own gate order: the module's tensors as they are
    out = {}
    for torch_name, name, transposed in placement.slots:
        want = ref_params[torch_name]
        value = torch.zeros_like(want, device=device) if name is None else params[name].detach()
        value = value.t() if transposed else value
        value = value.to(device=device, dtype=want.dtype)
        if moved and not torch_name.startswith("weight_hr") and value.shape[0] % len(order) == 0:
            blocks = value.chunk(len(order), 0)
            value = torch.cat([blocks[i] for i in order], 0)
        out[torch_name] = value
    return out


def _gru_other_reset(spec: RNNSpec, weights: dict[str, torch.Tensor], x: torch.Tensor,
                     h0: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A GRU with n = tanh(W_in x + b_in + W_hn (r * h) + b_hn) (ONNX linear_before_reset=0),
    seq-first, every layer and direction; returns (output, h_n)."""
    seq, batch = x.shape[0], x.shape[1]
    dirs, hidden = spec.num_directions, spec.hidden_size
    h0 = x.new_zeros(spec.num_layers * dirs, batch, hidden) if h0 is None else h0
    layer_in, finals = x, []
    for layer in range(spec.num_layers):
        outs = []
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = weights[f"weight_ih{sfx}"], weights[f"weight_hh{sfx}"]
            b_ih = weights.get(f"bias_ih{sfx}", x.new_zeros(3 * hidden))
            b_hh = weights.get(f"bias_hh{sfx}", x.new_zeros(3 * hidden))
            h = h0[layer * dirs + d]
            # the input side of every step in one product; the hidden side's r and z rows in one
            r_in, z_in, n_in = torch.addmm(b_ih, layer_in.flatten(0, 1), w_ih.t()).view(seq, batch, -1).chunk(3, 2)
            w_rz, w_hn = w_hh[:2 * hidden].t(), w_hh[2 * hidden:].t()
            b_rz, b_hn = b_hh[:2 * hidden], b_hh[2 * hidden:]
            steps = []
            for t in (range(seq - 1, -1, -1) if d else range(seq)):
                r_h, z_h = torch.addmm(b_rz, h, w_rz).chunk(2, 1)
                r, z = torch.sigmoid(r_in[t] + r_h), torch.sigmoid(z_in[t] + z_h)
                n = torch.tanh(n_in[t] + torch.addmm(b_hn, r * h, w_hn))
                h = n + z * (h - n)  # (1 - z) * n + z * h
                steps.append(h)
            if d:
                steps.reverse()
            outs.append(torch.stack(steps))
            finals.append(h)
        layer_in = torch.cat(outs, 2)
    return layer_in, torch.stack(finals)


class _Runner:
    """Runs the reference for a placement on the main probe input once per initial state in
    ``givens`` (None: no h_0), side by side in one call (torch's layer keeps the sequences of a
    batch apart, and no h_0 is zeros); the input and states are built once for every placement
    tried (up to 192 on a hand-written LSTM), seq-first."""

    def __init__(self, ctx: Context, givens: list[object]) -> None:
        self.ctx = ctx
        # its slots, on the meta device: each run hands torch's kernel the placement's tensors
        # (a placement covers every slot), which are the module's own where no gate is moved,
        # so the reference costs no copy of the parameters (a large LSTM's were 338 MB)
        self.ref = reference_layer(ctx.spec, ctx.dtype)
        self.ref_params = dict(self.ref.named_parameters())
        states = [ctx.hx_or_zeros(given) for given in givens]
        self.copies = len(givens)
        self.xs = torch.cat([ctx.x] * self.copies, dim=1)
        self.fed = ctx.feed(self.xs)  # the torch layer writes into neither its input nor its states
        if ctx.spec.has_cell:
            self.hx: object = tuple(torch.cat([state[i] for state in states], dim=1) for i in range(2))  # type: ignore[index]
        else:
            self.hx = torch.cat(states, dim=1)  # type: ignore[arg-type]

    def run(self, weights: dict[str, torch.Tensor], reset: str) -> list[Result]:
        """The reference with ``weights`` in ``reset``'s convention, split back per state."""
        ctx, spec, hx = self.ctx, self.ctx.spec, self.hx
        if reset != "torch":
            output, h_n = _gru_other_reset(spec, weights, self.xs, hx)  # type: ignore[arg-type]
            whole = Result(output, h_n, None, None)
        else:
            with torch.no_grad(), warnings.catch_warnings():
                # cuDNN warns that the tensors it is handed are not one flat chunk and compacts
                # them for the call: they are the module's own, which the reference does not copy
                warnings.filterwarnings("ignore", message=CUDNN_NOT_FLAT)
                tensors = {name: value.detach().contiguous() for name, value in weights.items()}
                whole = ctx.split(run_torch_kernel(self.ref, spec, self.fed, hx, tensors))
        return [whole.columns(slice(i * ctx.batch, (i + 1) * ctx.batch)) for i in range(self.copies)]


def effective_parameters(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's parameters as its forward reads them, by name: a parametrized attribute
    (torch.nn.utils.parametrize: ``weight_norm``, ``spectral_norm``, orthogonal, ...) under its
    own name with its computed value (``weight_hh_l0``, not ``parametrizations.weight_hh_l0.
    original0`` and ``original1``), every other parameter as it is, in named_parameters' order
    (a parametrized attribute where its first original stood)."""
    computed: dict[str, tuple[str, torch.nn.Module, str]] = {}  # original -> (name, owner, attribute)
    for prefix, owner in module.named_modules():
        if not torch.nn.utils.parametrize.is_parametrized(owner):
            continue
        for attr, parametrization in owner.parametrizations.items():
            for original, _ in parametrization.named_parameters(recurse=False):
                dotted = f"{prefix}." if prefix else ""
                computed[f"{dotted}parametrizations.{attr}.{original}"] = (f"{dotted}{attr}", owner, attr)
    found: dict[str, torch.Tensor] = {}
    for name, param in module.named_parameters():
        if name not in computed:
            found[name] = param
        elif computed[name][0] not in found:
            attr, owner, short = computed[name]
            found[attr] = getattr(owner, short)  # computed: in training mode spectral_norm also
            # advances its power iteration, so it is read only inside the probes (eval mode)
    return found


def behind_parametrization(name: str) -> bool:
    """Whether a parameter or state_dict name is one of the tensors a parametrization keeps
    (``parametrizations.<attribute>.original``, its buffers), not one forward reads."""
    return ".parametrizations." in f".{name}"


def parametrized_names(module: torch.nn.Module) -> list[str]:
    """The names of the module's parametrized attributes (torch.nn.utils.parametrize), without
    computing them."""
    return [f"{prefix}.{attr}" if prefix else attr for prefix, owner in module.named_modules()
            if torch.nn.utils.parametrize.is_parametrized(owner) for attr in owner.parametrizations]


def _compare(ctx: Context, runs: list[tuple[str, Result, Result]]) -> None:
    """Each run's output, h_n and c_n against the torch layer's, in that order; a ProbeFailure
    carries ``held``, how many of those comparisons held before it (how far the placement got)."""
    held = 0
    for label, got, want in runs:
        why = f"with {label} the module must compute what torch.nn.{ctx.spec.mode} computes with its weights"
        for name in ("output", "h_n", "c_n"):
            if getattr(got, name) is None or getattr(want, name) is None:
                continue
            try:
                ctx.assert_close(name, getattr(got, name), getattr(want, name), why)
            except ProbeFailure as exc:
                exc.held = held  # type: ignore[attr-defined]
                raise
            held += 1


def _closeness(exc: ProbeFailure) -> tuple[int, float]:
    """How close a placement came, smaller is closer: the more comparisons it held first (the
    run without h_0 before the one with, output before states), then the smaller difference at
    the first that failed. By the difference alone, a module right but for its h_0 handling was
    shown under a nonsense placement that happened to miss its output by less (a user-view
    review: biases swapped, ONNX's reset, for a GRU that ignores h_0)."""
    miss = exc.violation.difference if exc.violation.difference is not None else float("inf")
    return -getattr(exc, "held", 0), miss


def reference(ctx: Context) -> None:
    """The module computes what the torch layer its spec describes computes with the module's
    own parameters, with and without h_0: placed by torch's names (state_dict), else by order
    and shape with every gate order and, for GRU, both reset conventions, else by
    ``verify_rnn(weight_map=...)`` (torch.nn.RNN / LSTM / GRU docs: the gate equations and the
    layout of weight_ih_l[k], weight_hh_l[k], bias_ih_l[k], bias_hh_l[k]; LSTM i, f, g, o; GRU r,
    z, n). Catches a wrong gate, nonlinearity or reset convention in a hand-written module."""
    spec = ctx.spec
    module = ctx.module
    if not isinstance(module, torch.nn.Module):  # verify_rnn accepts any callable
        raise NotApplicable(f"{type(module).__name__} is not a torch.nn.Module: it has no parameters to place")
    given_map = dict(getattr(ctx, "weight_map", None) or {})
    got: list[tuple[str, Result, object]] = [("no h_0", ctx.main, None)]
    if spec.gives_hx:  # a module that takes no hx, or returns only its output, gets none
        got.append(("a random h_0", *random_state_run(ctx)))
    runner = _Runner(ctx, [given for _, _, given in got])

    def evaluate(weights: dict[str, torch.Tensor], reset: str) -> None:
        wanted = runner.run(weights, reset)
        _compare(ctx, [(label, result, want) for (label, result, _), want in zip(got, wanted)])

    params = effective_parameters(module)
    state = {**{k: v for k, v in module.state_dict().items() if not behind_parametrization(k)},
             **params}  # a parametrized weight by its own name, with the value forward reads
    strict = set(state) == set(runner.ref_params) and not given_map
    if strict and all(state[k].shape == v.shape for k, v in runner.ref_params.items()):
        evaluate({k: state[k] for k in runner.ref_params}, "torch")
        ctx.cached("notes", dict)["reference"] = "torch's parameter names: loaded as they are"
        return
    slots = [(name, p.shape) for name, p in runner.ref_params.items()]
    placed, left, missing = _place(slots, list(params.items()), given_map)
    rearranged = False  # placed only with parameters joined or split: a heuristic, no proof
    if (left or missing) and not given_map:  # one parameter per gate, or [x, h] in one: joined, split
        joined = dict(_joined(spec, list(params.items())))
        found = _place(slots, list(joined.items()), {})
        if not found[1] and not found[2]:
            params, (placed, left, missing), rearranged = joined, found, True
    if left or missing:
        layer = spec.describe()
        shapes = ", ".join(f"{n} {tuple(params[n].shape)}" for n in left) or "none"
        slots_text = ", ".join(f"{n} {tuple(runner.ref_params[n].shape)}" for n in missing) or "none"
        # a weight_map places one whole parameter (or its transpose) per slot: worth naming only
        # where a parameter left over has the shape of a slot left without one (or given zeros)
        open_slots = {tuple(runner.ref_params[n].shape) for n in missing}
        open_slots |= {tuple(runner.ref_params[t].shape) for t, name, _ in placed if name is None}
        mappable = any(tuple(params[n].shape) in open_slots or tuple(params[n].shape[::-1]) in open_slots
                       for n in left)
        why = (f"its math is not torch's {spec.mode}, or pass verify_rnn(weight_map={{torch name: parameter name}})"
               if mappable else f"no parameter left over fits a slot left: its math, or the layout of its "
                                f"weights, is not torch's {spec.mode}")
        raise NotApplicable(
            f"the module's parameters cannot be placed on torch.nn.{layer} by name, order or shape: "
            f"parameters that could not be placed: {shapes}; torch's slots left without one: "
            f"{slots_text} ({why})")
    closest: tuple[tuple[int, float], str, ProbeFailure] | None = None
    resets = ("torch", "linear_before_reset=0") if spec.mode == "GRU" else ("torch",)
    def fits(variant: list[tuple[str, str | None, bool]]) -> bool:
        return all(name is None or (params[name].shape[::-1] if tr else params[name].shape)
                   == runner.ref_params[t].shape for t, name, tr in variant)

    square = {t for t, shape in slots if len(shape) == 2 and shape[0] == shape[1]}
    by_owner = [] if given_map else _placements_by_owner(spec, slots, list(params.items()))
    # one submodule per layer and direction first where the module is built so: order alone
    # is then only the fallback (it interleaves stacks of cells)
    bases = by_owner + [placed]
    # torch's reset convention over every placement before the other (a Python loop, ~10x slower)
    variants: list[list[tuple[str, str | None, bool]]] = []
    for base in bases:
        variants += [v for v in _swaps(base, given_map, square, fits) if v not in variants]
    for reset, variant in itertools.product(resets, variants):
        for gates in itertools.permutations(GATES[spec.mode]):
            placement = Placement(tuple(variant), gates, reset)
            try:
                evaluate(_tensors(placement, runner.ref_params, params, spec.mode, ctx.device), reset)
            except ProbeFailure as exc:
                if closest is None or _closeness(exc) < closest[0]:
                    closest = (_closeness(exc), placement.describe(spec.mode), exc)
                continue
            ctx.cached("notes", dict)["reference"] = placement.describe(spec.mode)
            return
    assert closest is not None
    if rearranged:  # which pieces form a gate was read off order and shape: not proof of a bug
        raise NotApplicable(
            f"placed on torch.nn.{spec.mode} only with its parameters joined per gate or split at "
            f"[x, h], no placement computes what the module computes: its math, or the layout of its "
            f"gates, is not torch's {spec.mode}; the closest, {closest[1]}: {closest[2]}")
    raise ProbeFailure(f"no placement of the module's parameters on torch.nn.{spec.mode} computes what "
                       f"the module computes; the closest, {closest[1]}: {closest[2]}") from closest[2]
