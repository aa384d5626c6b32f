"""Calling conventions: the modules people write, called the way torch's layers are.

torch's layers take ``module(x, hx=None)`` and return ``(output, h_n)`` (``(output, (h_n, c_n))``
for LSTM). Modules people write often differ, and the spec says how (no adapter code of theirs):

* ``RNNSpec(convention="cell")``: a cell, ``cell(x_t, h) -> h`` (RNN, GRU) or
  ``cell(x_t, (h, c)) -> (h, c)`` (LSTM), as torch.nn.RNNCell / GRUCell / LSTMCell and users'
  cells. :class:`LayerCall` unrolls it over time: one layer, one direction, seq-first or
  batch-first or unbatched input, h_0 / (h_0, c_0) defaulting to zeros, states returned as
  ``(1, batch, H)``, exactly what the equivalent torch layer returns.
* ``RNNSpec(returns_states=False)``: a module that returns only the output. The calls give
  ``(output, None)``; the contracts about states are not applicable, the others run on the output.
* ``RNNSpec(requires_hx=True)``: a module that has no default for hx. Where torch's layers
  default h_0 (and c_0) to zeros, the kit passes zeros, and its report says so.
* A forward that takes hx elsewhere than second, ``forward(x, lengths=None, hx=None)`` or
  ``forward(x, *, hx=None)``: hx is passed by its name (:func:`call_names` reads it, as
  ``checked`` does).
* ``RNNSpec(takes_hx=False)``: a module whose forward takes only the input, ``module(x)``, and
  returns ``(output, h_n)`` as torch's layers do. verify_rnn never hands it an h_0: the contracts
  that need one are not applicable, and the ones that give one alongside others run without it.

:func:`layer_call` returns the module itself when its convention already is torch's.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch.nn.utils.rnn import PackedSequence

from rnn_contracts.diagnose import positional_names
from rnn_contracts.spec import RNNSpec

#: The note a report carries for a module that requires hx.
REQUIRES_HX_NOTE = ("the module requires hx: where torch's layers default h_0{c} to zeros, the kit "
                    "passed zeros")


def requires_hx_note(spec: RNNSpec) -> str:
    return REQUIRES_HX_NOTE.format(c=" and c_0" if spec.has_cell else "")


#: Names a forward gives its initial state, besides torch's ``hx`` (tutorials and papers).
STATE_NAMES = ("hx", "h", "h0", "h_0", "hidden", "hidden_state", "state", "states", "initial_state")
#: What a forward calls x and hx, and where hx goes (:func:`call_names`).
CallNames = tuple[str | None, str | None, int]
#: hx's place in :data:`CallNames`: none (the forward has no state parameter) or by name only.
NO_HX, BY_KEYWORD = 0, -1


def call_names(fn: Callable[..., Any], skip_self: bool) -> CallNames:
    """What a forward calls x and hx, and hx's position: its first positional parameter (after
    self), and the positional parameter named ``hx`` or else the second one when it has a state's
    name (:data:`STATE_NAMES`; ``forward(x, lengths=None, hx=None)`` takes hx third, and a second
    parameter called ``mask`` is no state), or else the first later one with a state's name
    (``forward(x, lengths=None, hidden=None)``), or else a keyword-only one of those names
    (``forward(x, *, hx=None)``: :data:`BY_KEYWORD`). (None, None, 1) where the signature cannot
    be read: torch's convention, hx second."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None, None, 1
    names = positional_names(parameters)
    names = names[1:] if skip_self else names
    if not names:
        return None, None, 1
    if "hx" in names[1:]:
        return names[0], "hx", names.index("hx")
    if len(names) > 1 and names[1] in STATE_NAMES:
        return names[0], names[1], 1
    later = next((i for i, name in enumerate(names[2:], 2) if name in STATE_NAMES), None)
    if later is not None:  # forward(x, lengths=None, hidden=None)
        return names[0], names[later], later
    keyword = [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name in STATE_NAMES]
    if keyword:
        return names[0], "hx" if "hx" in keyword else keyword[0], BY_KEYWORD
    return names[0], None, NO_HX  # no state among its parameters: hx is never read


#: hx_by_name's answers, per module class (or plain function): a plain dict, cleared when it
#: reaches _HX_CACHE_SIZE entries (a WeakKeyDictionary's lookup cost check_forward 0.16 us more).
_HX_BY_NAME: dict[Any, str | None] = {}
_HX_CACHE_SIZE = 256
_UNREAD = object()


def hx_by_name(module: Any) -> str | None:
    """The name under which ``module``'s forward takes hx where that is not its second positional
    parameter (``forward(x, lengths=None, hx=None)``, ``forward(x, *, hx=None)``); None where hx
    goes second, as torch's layers take it. Read once per module class or function code (an
    instance whose own ``forward`` replaces its class's, or a callable object, is read each time,
    and never kept). A ``torch.compile``d module is read through the module it compiled (its own
    forward takes ``*args, **kwargs``)."""
    if isinstance(module, torch.nn.Module):
        if "forward" in module.__dict__:  # an instance's own, or torch.compile's wrapper (only there:
            inner = compiled_from(module)  # check_forward's every call passes here)
            return _hx_name(module.forward) if inner is module else hx_by_name(inner)
        key: Any = type(module)
    else:  # a function by its code (names and kinds live there; a closure's model is not kept)
        key = getattr(module, "__code__", None)
        if key is None:  # another callable: read each time
            return _hx_name(module)
    found = _HX_BY_NAME.get(key, _UNREAD)
    if found is not _UNREAD:
        return found  # type: ignore[return-value]
    found = _hx_name(module.forward if isinstance(module, torch.nn.Module) else module)
    if len(_HX_BY_NAME) >= _HX_CACHE_SIZE:
        _HX_BY_NAME.clear()
    _HX_BY_NAME[key] = found
    return found


def compiled_from(module: Any) -> Any:
    """The module ``torch.compile`` wrapped, for its OptimizedModule (told by its class's module,
    so that reading it never imports torch._dynamo); anything else as it is."""
    if type(module).__module__.startswith("torch._dynamo."):
        inner = getattr(module, "_orig_mod", None)
        if isinstance(inner, torch.nn.Module):
            return inner
    return module


def _hx_name(forward: Callable[..., Any]) -> str | None:
    _, name, at = call_names(forward, skip_self=False)
    return name if at == BY_KEYWORD or at > 1 else None


def non_state_second(module: Any) -> str | None:
    """The name of the second positional parameter of ``module``'s forward where no parameter of
    it has a state's name (``forward(x, mask=None)``: "mask"), so an h_0 passed second lands
    there; None otherwise."""
    module = compiled_from(module)
    forward = module.forward if isinstance(module, torch.nn.Module) else module
    try:
        parameters = list(inspect.signature(forward).parameters.values())
    except (TypeError, ValueError):
        return None
    names = positional_names(parameters)
    x_name, _, at = call_names(forward, skip_self=False)
    return names[1] if at == NO_HX and x_name is not None and len(names) > 1 else None


class LayerCall:
    """A module seen through torch's layer convention ``(x, hx=None) -> (output, state)``."""

    def __init__(self, module: Any, spec: RNNSpec, hx_name: str | None = None) -> None:
        self.module = module
        self.spec = spec
        self.hx_name = hx_name  # hx passed by this name (hx_by_name), else second

    def __repr__(self) -> str:
        return f"LayerCall({self.module!r}, convention={self.spec.convention!r})"

    def zeros(self, x: Any) -> Any:
        """The zero initial state torch's layers default to, for input ``x``."""
        data = x.data if isinstance(x, PackedSequence) else x
        if isinstance(x, PackedSequence):
            batch: int | None = int(x.batch_sizes[0])
        elif data.dim() == 2:
            batch = None
        else:
            batch = data.shape[0] if self.spec.batch_first else data.shape[1]

        def zero(which: str) -> torch.Tensor:
            return torch.zeros(self.spec.state_shape(batch, which).sizes, dtype=data.dtype, device=data.device)

        return (zero("h"), zero("c")) if self.spec.has_cell else zero("h")

    def __call__(self, x: Any, hx: Any = None) -> Any:
        if hx is None and self.spec.requires_hx:
            hx = self.zeros(x)
        if self.spec.convention == "cell":
            result = self._unroll(x, hx)
        elif hx is None:
            result = self.module(x)
        else:
            result = self.module(x, hx) if self.hx_name is None else self.module(x, **{self.hx_name: hx})
        if not self.spec.returns_states:
            return result, None
        return result

    def _unroll(self, x: Any, hx: Any) -> Any:
        """The cell over time: one layer, one direction (the equivalent torch layer's loop)."""
        if isinstance(x, PackedSequence):
            raise TypeError("a cell unrolled by the kit takes no PackedSequence (spec.packed=False)")
        if hx is None:
            hx = self.zeros(x)  # from x as given: zeros() reads the spec's layout
        unbatched = x.dim() == 2
        xs = x.unsqueeze(1) if unbatched else (x.transpose(0, 1) if self.spec.batch_first else x)
        lstm = self.spec.has_cell
        # (1, batch, H) layer states -> (batch, H) cell states; unbatched (1, H) -> (1, H) rows
        state = tuple(s.reshape(-1, s.shape[-1]) for s in hx) if lstm else hx.reshape(-1, hx.shape[-1])
        outputs = []
        for t in range(xs.shape[0]):
            state = self.module(xs[t], state)
            outputs.append(state[0] if lstm else state)
        output = torch.stack(outputs)
        if unbatched:
            output = output[:, 0]
        elif self.spec.batch_first:
            output = output.transpose(0, 1)

        def as_layer(s: torch.Tensor) -> torch.Tensor:
            return s if unbatched else s.unsqueeze(0)

        if lstm:
            return output, (as_layer(state[0]), as_layer(state[1]))
        return output, as_layer(state)


def layer_call(module: Any, spec: RNNSpec) -> Any:
    """``module`` as a callable with torch's layer convention (the module itself if it is one)."""
    hx_name = hx_by_name(module) if spec.convention == "layer" and spec.takes_hx else None
    if spec.convention == "layer" and spec.returns_states and not spec.requires_hx and hx_name is None:
        return module
    return LayerCall(module, spec, hx_name)
