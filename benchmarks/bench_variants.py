"""The checked-call variants that benchmarks/bench_overhead.py times, and their negative controls.

Each variant is one call = the module's forward plus that variant's check of the input and of
both outputs, with the dims bound across them (seq, batch, hidden, layers):

    bare                 module(x)
    asserts              plain ``assert t.shape == ...`` before and after
    jaxtyping+typeguard  ``with jaxtyped("context"): typeguard.check_type(t, Float[Tensor, "..."])``
    jaxtyping+beartype   the same with ``beartype.door.die_if_unbearable``
    check_shapes         GPflow's ``@check_shapes(...)`` on a function calling the module
                         (optional: absent when not importable, see CHECK_SHAPES_MISSING)
    checked              this kit's ``rnn_contracts.checked(module)``, in steady state

``negative_controls`` shows that every checker rejects a module whose h_n has the wrong batch
size, so no row of the benchmark measures a check that checks nothing. This module only builds
callables; timing, tables and gates are bench_overhead.py's.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import typeguard
from beartype.door import die_if_unbearable
from jaxtyping import Float, jaxtyped
from torch import Tensor

import rnn_contracts

CHECK_SHAPES_MISSING = ""
try:
    from check_shapes import check_shapes as _check_shapes
    import check_shapes as _check_shapes_pkg

    CHECK_SHAPES_VERSION: str | None = getattr(_check_shapes_pkg, "__version__", "installed")
except Exception as exc:  # absent or broken: an optional peer
    _check_shapes = None
    CHECK_SHAPES_VERSION = None
    CHECK_SHAPES_MISSING = f"{type(exc).__name__}: {exc}"

Variant = Callable[[Tensor], Any]


def _layout(module: torch.nn.RNNBase) -> tuple[int, int, int]:
    """(layers, out features, h_n features) of a torch recurrent layer (seq-first, batched)."""
    dirs = 2 if module.bidirectional else 1
    proj = getattr(module, "proj_size", 0) or 0
    h_feat = proj or module.hidden_size
    return module.num_layers * dirs, dirs * h_feat, h_feat


def make_variants(module: torch.nn.RNNBase) -> dict[str, Variant]:
    """The checked-call variants for ``module``: each returns the module's result."""
    is_lstm = module.mode == "LSTM"
    layers, out_feat, h_feat = _layout(module)
    in_feat, cell = module.input_size, module.hidden_size

    def bare(x: Tensor) -> Any:
        return module(x)

    if is_lstm:
        def asserts(x: Tensor) -> Any:
            assert x.dim() == 3 and x.shape[2] == in_feat, x.shape
            seq, batch = x.shape[0], x.shape[1]
            result = module(x)
            out, (h, c) = result
            assert out.shape == (seq, batch, out_feat), out.shape
            assert h.shape == (layers, batch, h_feat), h.shape
            assert c.shape == (layers, batch, cell), c.shape
            return result
    else:
        def asserts(x: Tensor) -> Any:
            assert x.dim() == 3 and x.shape[2] == in_feat, x.shape
            seq, batch = x.shape[0], x.shape[1]
            result = module(x)
            out, h = result
            assert out.shape == (seq, batch, out_feat), out.shape
            assert h.shape == (layers, batch, h_feat), h.shape
            return result

    x_t = Float[Tensor, "seq batch dim"]
    out_t = Float[Tensor, "seq batch out"]
    h_t = Float[Tensor, "layers batch hidden"]
    c_t = Float[Tensor, "layers batch cell"]

    def jaxtyping_variant(check: Callable[[Any, Any], Any]) -> Variant:
        if is_lstm:
            def run(x: Tensor) -> Any:
                with jaxtyped("context"):
                    check(x, x_t)
                    result = module(x)
                    out, (h, c) = result
                    check(out, out_t)
                    check(h, h_t)
                    check(c, c_t)
                return result
        else:
            def run(x: Tensor) -> Any:
                with jaxtyped("context"):
                    check(x, x_t)
                    result = module(x)
                    out, h = result
                    check(out, out_t)
                    check(h, h_t)
                return result
        return run

    variants: dict[str, Variant] = {
        "bare": bare,
        "asserts": asserts,
        "jaxtyping+typeguard": jaxtyping_variant(typeguard.check_type),
        "jaxtyping+beartype": jaxtyping_variant(die_if_unbearable),
    }
    if _check_shapes is not None:
        state_specs = (
            ("return[1][0]: [layers, batch, hidden]", "return[1][1]: [layers, batch, cell]")
            if is_lstm else ("return[1]: [layers, batch, hidden]",)
        )

        @_check_shapes("x: [seq, batch, dim]", "return[0]: [seq, batch, out]", *state_specs)
        def check_shapes_variant(x: Tensor) -> Any:
            return module(x)

        variants["check_shapes"] = check_shapes_variant
    # checked() checks a module in place: a copy, so the other variants keep the plain module.
    variants["checked"] = rnn_contracts.checked(copy.deepcopy(module))
    return variants


class Stub(torch.nn.Module):
    """A torch layer's configuration and parameters, with its forward replaced by the results it
    gave once on ``inputs`` (looked up by the input's shape): a call of the stub costs
    nn.Module.__call__ and one dict lookup, so a checked stub's extra time over the stub is the
    checking alone. The layer is kept as a submodule (never called), so the checks that read the
    module's parameters read as many as they would on the layer."""

    def __init__(self, module: torch.nn.RNNBase, inputs: list[Tensor]) -> None:
        super().__init__()
        for name in ("mode", "input_size", "hidden_size", "num_layers", "bidirectional", "batch_first",
                     "proj_size", "bias"):
            setattr(self, name, getattr(module, name))
        self.layer = module
        with torch.no_grad():
            self.results = {x.shape: module(x) for x in inputs}

    def forward(self, x: Tensor, hx: Any = None) -> Any:
        return self.results[x.shape]


def _liar(module: torch.nn.RNNBase) -> torch.nn.RNNBase:
    """A copy of ``module`` whose h_n drops one batch entry: every checker must reject it."""
    base = type(module)

    def forward(self: Any, x: Any, hx: Any = None) -> Any:
        out, state = base.forward(self, x, hx)
        if isinstance(state, tuple):
            return out, (state[0][:, :-1], state[1])
        return out, state[:, :-1]

    liar = copy.deepcopy(module)
    liar.__class__ = type(f"Liar{base.__name__}", (base,), {"forward": forward})
    return liar


def negative_controls(module: torch.nn.RNNBase, x: Tensor) -> list[str]:
    """The variants (bare excepted) that do NOT reject a wrong h_n, or fail on a right one."""
    broken = []
    liar = _liar(module)
    good, bad = make_variants(module), make_variants(liar)
    for name, fn in bad.items():
        if name == "bare":
            continue
        try:
            good[name](x)
        except Exception as exc:
            broken.append(f"{name} rejects a correct call: {type(exc).__name__}: {exc}")
            continue
        try:
            fn(x)
        except Exception:
            continue
        broken.append(f"{name} accepts an h_n with the wrong batch size")
    return broken
