"""checked(): contracts cheap enough to leave on in training loops and serving.

A verdict of check_forward is a pure function of the spec and the shapes, dtypes and devices of
the call (inputs and results; for a PackedSequence also its batch_sizes), so it is cached per
signature: the first call with a new signature gets the full jaxtyping / typeguard check and,
on a violation, check_forward's full diagnosis; later calls with a signature already judged
good cost a few tuple lookups. Inputs are checked before the module runs, so a wrong input is a
ContractViolation with the kit's diagnosis, not torch's own RuntimeError.

``RNN_CONTRACTS_OFF=1`` (read once, at import) turns checked() into the identity: the module or
function is returned unwrapped and costs nothing per call.
"""
from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import Any, TypeVar, overload

import torch
from torch.nn.utils.rnn import PackedSequence

from rnn_contracts.checks import check_call, check_inputs
from rnn_contracts.spec import RNNSpec

ENV_OFF = "RNN_CONTRACTS_OFF"
#: Read once: flipping the variable later does not change modules already built.
DISABLED: bool = os.environ.get(ENV_OFF, "").strip().lower() not in ("", "0", "false", "no")
#: Signatures remembered per wrapper; past this the cache starts over (bounded memory under
#: ever-changing sequence lengths).
CACHE_SIZE = 1024

F = TypeVar("F", bound=Callable[..., Any])


def _sig(value: Any) -> Any:
    """Shape, dtype and device of a tensor, or of each tensor in a (nested) tuple."""
    if isinstance(value, torch.Tensor):
        return (value.shape, value.dtype, value.device)
    if value is None:
        return None
    if isinstance(value, PackedSequence):
        return ("packed", _sig(value.data), tuple(value.batch_sizes.tolist()))
    if isinstance(value, (tuple, list)):
        return tuple(_sig(v) for v in value)
    return type(value)


def _call_sig(sig_in: Any, result: Any) -> Any:
    """The signature of a whole call: flat tuples for torch's two result structures,
    (output, h_n) and (output, (h_n, c_n)), the generic nested form otherwise."""
    if type(result) is tuple and len(result) == 2 and type(result[0]) is torch.Tensor:
        out, state = result
        if type(state) is torch.Tensor:
            return (sig_in, out.shape, out.dtype, out.device, state.shape, state.dtype, state.device)
        if type(state) is tuple and len(state) == 2:
            h, c = state
            if type(h) is torch.Tensor and type(c) is torch.Tensor:
                return (sig_in, out.shape, out.dtype, out.device, h.shape, h.dtype, h.device,
                        c.shape, c.dtype, c.device)
    return (sig_in, _sig(result))


class _Verdicts:
    """The signatures already judged good: of inputs, and of whole calls."""

    __slots__ = ("inputs", "calls")

    def __init__(self) -> None:
        self.inputs: set[Any] = set()
        self.calls: set[Any] = set()

    def run(self, spec: RNNSpec, fn: Callable[..., Any], module: Any, x: Any, hx: Any, args: tuple) -> Any:
        if hx is None and type(x) is torch.Tensor:
            sig_in: Any = (x.shape, x.dtype, x.device)
        else:
            sig_in = (_sig(x), _sig(hx))
        if sig_in not in self.inputs:
            check_inputs(spec, x, hx, module)
            _remember(self.inputs, sig_in)
        result = fn(*args)
        sig_call = _call_sig(sig_in, result)
        if sig_call not in self.calls:
            check_call(spec, x, hx, result, module)
            _remember(self.calls, sig_call)
        return result


def _remember(seen: set[Any], sig: Any) -> None:
    if len(seen) >= CACHE_SIZE:
        seen.clear()
    seen.add(sig)


class CheckedModule(torch.nn.Module):
    """Wraps a recurrent module and enforces its contract on every call (cached per signature).

    Attributes the wrapper lacks (mode, input_size, ...) are read from the wrapped module, so
    ``RNNSpec.from_module(CheckedModule(m))`` works. Calls skip nn.Module's hook machinery:
    hooks belong on the wrapped module.
    """

    def __init__(self, module: torch.nn.Module, spec: RNNSpec | None = None) -> None:
        super().__init__()
        self.module = module
        self.spec = spec if spec is not None else RNNSpec.from_module(module)
        self._verdicts = _Verdicts()
        # Capabilities are not attributes of torch's layers (RNNSpec.from_module infers them for
        # RNNBase); carry them so RNNSpec.from_module(wrapper) equals the wrapped spec.
        self.packed, self.unbatched = self.spec.packed, self.spec.unbatched
        # A plain reference beside the registered submodule: nn.Module.__getattr__ (the path
        # of self.module) costs more per call than the whole cached check.
        object.__setattr__(self, "_inner", module)

    def forward(self, x: Any, hx: Any = None) -> Any:
        verdicts = self._verdicts
        if hx is None and type(x) is torch.Tensor:  # the hot path, inlined
            sig_in = (x.shape, x.dtype, x.device)
            if sig_in not in verdicts.inputs:
                check_inputs(self.spec, x, None, self._inner)
                _remember(verdicts.inputs, sig_in)
            result = self._inner(x)
            sig_call = _call_sig(sig_in, result)
            if sig_call not in verdicts.calls:
                check_call(self.spec, x, None, result, self._inner)
                _remember(verdicts.calls, sig_call)
            return result
        module = self._inner
        if hx is None:
            return verdicts.run(self.spec, module, module, x, None, (x,))
        return verdicts.run(self.spec, module, module, x, hx, (x, hx))

    __call__ = forward  # no hooks on the wrapper: its per-call cost stays a few lookups

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("module"), name)


def _wrap_function(fn: F, spec: RNNSpec | None) -> F:
    params = list(inspect.signature(fn).parameters)
    is_method = bool(params) and params[0] == "self"
    if spec is None and not is_method:
        raise TypeError(
            f"checked({fn.__name__}): a plain function needs a spec, e.g. "
            f"@checked(spec=RNNSpec(mode='GRU', input_size=4, hidden_size=2))"
        )
    if is_method:
        verdicts_attr = f"_rnn_contracts_verdicts_{fn.__name__}"

        @functools.wraps(fn)
        def method(self: Any, x: Any, hx: Any = None) -> Any:
            verdicts = self.__dict__.get(verdicts_attr)
            if verdicts is None:
                verdicts = _Verdicts()
                self.__dict__[verdicts_attr] = verdicts
                self.__dict__[verdicts_attr + "_spec"] = spec or RNNSpec.from_module(self)
            args = (self, x) if hx is None else (self, x, hx)
            return verdicts.run(self.__dict__[verdicts_attr + "_spec"], fn, self, x, hx, args)

        return method  # type: ignore[return-value]
    verdicts = _Verdicts()
    assert spec is not None

    @functools.wraps(fn)
    def function(x: Any, hx: Any = None) -> Any:
        args = (x,) if hx is None else (x, hx)
        return verdicts.run(spec, fn, None, x, hx, args)

    return function  # type: ignore[return-value]


@overload
def checked(target: torch.nn.Module, spec: RNNSpec | None = None) -> torch.nn.Module: ...
@overload
def checked(target: F, spec: RNNSpec | None = None) -> F: ...
@overload
def checked(target: None = None, spec: RNNSpec | None = None) -> Callable[[F], F]: ...


def checked(target: Any = None, spec: RNNSpec | None = None) -> Any:
    """Enforce the contract of ``spec`` on every call of a module or forward function.

    * ``checked(module)`` / ``checked(module, spec)``: a :class:`CheckedModule` wrapper;
    * ``@checked`` / ``@checked(spec=...)`` on a ``forward(self, x, hx=None)`` method (the spec
      defaults to ``RNNSpec.from_module(self)``) or on a plain ``f(x, hx=None)`` (spec required).

    With ``RNN_CONTRACTS_OFF=1`` in the environment at import, returns ``target`` unchanged.
    """
    if target is None:
        return lambda fn: checked(fn, spec)
    if DISABLED:
        return target
    if isinstance(target, torch.nn.Module):
        return CheckedModule(target, spec)
    if callable(target):
        return _wrap_function(target, spec)
    raise TypeError(f"checked() takes a module or a function, got {type(target).__name__}")
