"""checked(): contracts cheap enough to leave on in training loops and serving.

A verdict of check_forward is a pure function of the spec and the shapes, dtypes and devices of
the call (inputs and results; for a PackedSequence also its batch_sizes; for LSTM both states),
so it is cached per signature: the first call with a new signature gets the full check (the
direct comparison of rnn_contracts.fastpath for a conforming call, the jaxtyping / typeguard
engine and check_forward's full diagnosis for any other); a call with the signature of the last
good call is compared with it field by field (the hot path: no tuple built, nothing hashed), and
one with another signature already judged good costs two set lookups. Inputs are checked before
the module runs, so a wrong input is a ContractViolation with the kit's diagnosis, not torch's
own RuntimeError.

``checked(module)`` checks the module *in place* and returns it: its class becomes a subclass of
its own class (same name, same ``isinstance``, same ``repr``) whose ``__call__`` checks the call
and then goes through ``nn.Module.__call__`` (hooks included). Parameters, buffers and
``state_dict`` keys are untouched, so checkpoints are the same with checks on or off; a pickled
checked module unpickles as the plain module; ``copy.deepcopy`` keeps the checks;
:func:`unchecked` takes them off again.

Under ``torch.compile`` (fullgraph too) and ``torch.export`` the checks step aside: the graph or
program captures the module alone (checks on symbolic shapes could neither run nor be cached),
and the compiled or exported module is not checked; under ``torch.jit.trace`` likewise, and
``torch.jit.script`` compiles the plain module.

``RNN_CONTRACTS_OFF`` (read once, at import): 1/true/yes/on turn checked() into the identity
(the target is returned as it is and costs nothing per call); 0/false/no/off or empty keep the
checks; any other value keeps the checks and warns once.
"""
from __future__ import annotations

import copy
import copyreg
import functools
import inspect
import os
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, overload

import torch
from torch.nn.utils.rnn import PackedSequence

from rnn_contracts import fastpath
from rnn_contracts.checks import check_call, checked_inputs
from rnn_contracts.conventions import BY_KEYWORD, NO_HX, CallNames, call_names
from rnn_contracts.spec import RNNSpec

ENV_OFF = "RNN_CONTRACTS_OFF"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def read_off_switch(value: str | None) -> bool:
    """Whether RNN_CONTRACTS_OFF's ``value`` turns the checks off. An unknown value keeps them on
    and warns: a typo must never switch every check off silently."""
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text not in _FALSE:
        warnings.warn(f"{ENV_OFF}={value!r} is not one of {', '.join(_TRUE)} (checks off) or "
                      f"{', '.join(repr(v) for v in _FALSE)} (checks on): the checks stay on",
                      RuntimeWarning, stacklevel=2)
    return False


#: Read once: flipping the variable later does not change modules already built.
DISABLED: bool = read_off_switch(os.environ.get(ENV_OFF))
#: Signatures remembered per checked module; past this the cache starts over (bounded memory
#: under ever-changing sequence lengths).
CACHE_SIZE = 1024
#: Where a checked module keeps its spec and verdicts (its instance __dict__, not a parameter,
#: buffer or submodule: state_dict never sees it).
GUARD = "_rnn_contracts_guard"

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=torch.nn.Module)


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
        if isinstance(x, torch.Tensor) and x.is_nested:  # no sizes for a signature: the engine
            checked_inputs(spec, x, hx, module)  # names it and raises
        if hx is None and type(x) is torch.Tensor:
            sig_in: Any = (x.shape, x.dtype, x.device)
        else:
            sig_in = (_sig(x), _sig(hx))
        facts = None
        if sig_in not in self.inputs:
            facts = checked_inputs(spec, x, hx, module)
            _remember(self.inputs, sig_in)
        result = fn(*args)
        sig_call = _call_sig(sig_in, result)
        if sig_call not in self.calls:
            _check_result(spec, module, x, hx, result, facts)
            _remember(self.calls, sig_call)
        return result


def _check_result(spec: RNNSpec, module: Any, x: Any, hx: Any, result: Any,
                  facts: fastpath.Facts | None) -> None:
    """A result not judged before: by the fast path when the input's check left its facts
    (rnn_contracts.fastpath), else in full (check_call, which raises on a violation)."""
    if facts is None or not fastpath.result_ok(facts, x, result):
        check_call(spec, x, hx, result, module)


def _x_hx(args: tuple, kwargs: dict[str, Any], names: CallNames, spec: RNNSpec) -> tuple[Any, Any]:
    """x and hx of a call, by position or by the forward's own names (:func:`call_names`);
    no hx for a module that takes none (RNNSpec.takes_hx=False)."""
    x_name, hx_name, at = names
    x = args[0] if args else kwargs.get(x_name) if x_name else kwargs.get("input", kwargs.get("x"))
    if not spec.takes_hx or at == NO_HX:
        return x, None
    if at != BY_KEYWORD and len(args) > at:
        return x, args[at]
    return x, kwargs.get(hx_name) if hx_name else kwargs.get("hx")


def _remember(seen: set[Any], sig: Any) -> None:
    if len(seen) >= CACHE_SIZE:
        seen.clear()
    seen.add(sig)


class _Guard:
    """A checked module's spec and verdicts, and the signature of its last good call: ``last``,
    one tuple (x's shape, dtype and device, whether that device is the CPU, the output's, h's
    and c's shapes; c None for RNN and GRU), replaced whole so that a call in another thread
    never reads half of one signature and half of another. The hot path compares a call with it
    field by field: no tuple is built, nothing is hashed. A good call's results have the input's
    dtype and device (check_forward's rule), so each result is compared with those."""

    __slots__ = ("spec", "verdicts", "last", "names")

    def __init__(self, spec: RNNSpec, names: CallNames = (None, None, 1)) -> None:
        self.spec = spec
        self.verdicts = _Verdicts()
        self.last: tuple[Any, ...] = _NO_CALL
        self.names = names  # what the module's forward calls x and hx (call_names)

    def remember(self, x: torch.Tensor, result: Any) -> None:
        """Keep a good call's signature for the hot path (torch's two result structures only)."""
        self.last = _NO_CALL
        if type(result) is not tuple or len(result) != 2 or type(result[0]) is not torch.Tensor:
            return
        out, state = result
        if type(state) is torch.Tensor:
            h, c = state, None
        elif type(state) is tuple and len(state) == 2 and type(state[0]) is torch.Tensor \
                and type(state[1]) is torch.Tensor:
            h, c = state
        else:
            return
        device = x.device
        self.last = (x.shape, x.dtype, device, device.type == "cpu", out.shape, h.shape,
                     None if c is None else c.shape)


#: No good call yet: a torch.Size never equals None, so the hot path is never taken.
_NO_CALL: tuple[Any, ...] = (None,) * 7


_module_call = torch.nn.Module.__call__
_is_compiling = torch.compiler.is_compiling
_is_tracing = torch._C._is_tracing  # torch.jit.is_tracing() without its is_scripting() test: 40 ns less
_Tensor = torch.Tensor  # a module global: 20 ns less than torch.Tensor per call


class CheckedModule(torch.nn.Module):
    """The base of every checked module's class: ``isinstance(m, CheckedModule)`` says whether
    ``m`` is checked. Never instantiated itself: :func:`checked` makes ``Checked[type(m)]``, a
    subclass of both, and assigns it to ``m.__class__``."""

    #: The class the module had before checked().
    __rnn_contracts_base__: type[torch.nn.Module]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and type(args[0]) is _Tensor and not kwargs and not _is_compiling() \
                and not _is_tracing():
            # the hot path: one tensor in, the same signature as the last good call (torch.compile,
            # torch.export and torch.jit.trace capture the module alone: see the module docstring).
            # Every read here counts: a tensor attribute costs ~65 ns, a torch.Size ~140 ns.
            x = args[0]
            guard: _Guard = self._rnn_contracts_guard  # in the instance dict: GUARD
            x_shape, dtype, device, on_cpu, out_shape, h_shape, c_shape = guard.last
            try:  # costs nothing until it raises (3.11's zero-cost exceptions)
                if x.shape == x_shape and x.dtype is dtype and (x.is_cpu if on_cpu else x.device == device):
                    result = _module_call(self, x)
                    # the result against the last good call's, field by field; an object without
                    # a tensor's attributes (AttributeError), a tuple of another length
                    # (ValueError) or a state of another structure goes to the signature sets,
                    # which judge it in full (a torch.Size equals only sizes; on the CPU,
                    # Tensor.is_cpu says the device without building a torch.device)
                    try:
                        if type(result) is tuple:
                            out, state = result
                            if out.shape == out_shape and out.dtype is dtype:
                                if c_shape is None:
                                    if state.shape == h_shape and state.dtype is dtype and (
                                            (out.is_cpu and state.is_cpu) if on_cpu
                                            else (out.device == device and state.device == device)):
                                        return result
                                elif type(state) is tuple:
                                    h, c = state
                                    if h.shape == h_shape and c.shape == c_shape \
                                            and h.dtype is dtype and c.dtype is dtype and (
                                            (out.is_cpu and h.is_cpu and c.is_cpu) if on_cpu
                                            else (out.device == device and h.device == device
                                                  and c.device == device)):
                                        return result
                    except (AttributeError, ValueError):
                        pass
                    return _judge_result(guard, self, x, (x.shape, x.dtype, x.device), result)
                return _tensor_call(guard, self, x)
            except RuntimeError:
                if not x.is_nested:  # the module's own error, as it raised it
                    raise
                checked_inputs(guard.spec, x, None, self)  # a nested tensor has no sizes: the
                raise  # engine names it and raises (should it not, the read's own error stands)
        if torch.compiler.is_compiling():  # torch.compile / torch.export capture the module only
            return _module_call(self, *args, **kwargs)
        if torch.jit.is_tracing():
            return _module_call(self, *args, **kwargs)
        guard = self.__dict__[GUARD]
        x, hx = _x_hx(args, kwargs, guard.names, guard.spec)
        return guard.verdicts.run(guard.spec, lambda *_: _module_call(self, *args, **kwargs),
                                  self, x, hx, ())

    def __reduce_ex__(self, protocol: Any) -> Any:
        """Pickled as the plain module: a checkpoint never depends on the kit."""
        state = {k: v for k, v in self.__getstate__().items() if k != GUARD}
        return (copyreg._reconstructor, (type(self).__rnn_contracts_base__, object, None), state)

    def __prepare_scriptable__(self) -> torch.nn.Module:
        """torch.jit.script compiles the plain module (sharing this one's parameters): TorchScript
        cannot run the Python checks, so the scripted module has none."""
        return copy.copy(self)  # __reduce_ex__: the plain class, the same tensors

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        """A deep copy that is checked too, with the same spec and a fresh verdict cache."""
        base = type(self).__rnn_contracts_base__
        clone = base.__new__(base)
        memo[id(self)] = clone
        state = {k: copy.deepcopy(v, memo) for k, v in self.__getstate__().items() if k != GUARD}
        clone.__setstate__(state)
        return checked(clone, self.__dict__[GUARD].spec)


def _tensor_call(guard: _Guard, module: Any, x: torch.Tensor) -> Any:
    """A one-tensor call whose input differs from the last good call's: the signature sets."""
    verdicts = guard.verdicts
    sig_in = (x.shape, x.dtype, x.device)
    facts = None
    if sig_in not in verdicts.inputs:
        facts = checked_inputs(guard.spec, x, None, module)
        _remember(verdicts.inputs, sig_in)
    return _judge_result(guard, module, x, sig_in, _module_call(module, x), facts)


def _judge_result(guard: _Guard, module: Any, x: torch.Tensor, sig_in: Any, result: Any,
                  facts: fastpath.Facts | None = None) -> Any:
    """The result of a one-tensor call whose input was judged good: cached or checked (by the
    fast path when the input's check left its facts, else in full), then kept as the last good
    call."""
    verdicts = guard.verdicts
    sig_call = _call_sig(sig_in, result)
    if sig_call not in verdicts.calls:
        _check_result(guard.spec, module, x, None, result, facts)
        _remember(verdicts.calls, sig_call)
    guard.remember(x, result)
    return result


_CHECKED_CLASSES: dict[type, type] = {}


def _checked_class(cls: type[torch.nn.Module]) -> type:
    made = _CHECKED_CLASSES.get(cls)
    if made is None:
        made = type(cls.__name__, (CheckedModule, cls),
                    {"__rnn_contracts_base__": cls, "__qualname__": cls.__qualname__,
                     "__module__": cls.__module__, "__doc__": cls.__doc__})
        _CHECKED_CLASSES[cls] = made
    return made


def _check_module(module: M, spec: RNNSpec | None) -> M:
    if isinstance(module, torch.jit.ScriptModule):
        raise TypeError(f"checked() cannot check a TorchScript module ({type(module).__name__}): "
                        f"check the eager module, then script it")
    base = _base_class(module)
    spec = spec if spec is not None else RNNSpec.from_module(module)
    if spec.convention == "cell":
        raise TypeError(f"checked() checks whole-sequence calls, and {spec.describe()} is called one "
                        f"step at a time: check the layer that unrolls it, or verify_rnn(cell)")
    guard = _Guard(spec, call_names(module.forward, skip_self=False))  # bound: no self
    module.__dict__[GUARD] = guard
    module.__class__ = _checked_class(base)
    return module


def _base_class(module: torch.nn.Module) -> type:
    """The class checked() found: the module's own class unless checked() made it."""
    return type(module).__dict__.get("__rnn_contracts_base__", type(module))


def unchecked(module: M) -> M:
    """Take checked()'s checks off a module (in place) and return it; other objects unchanged."""
    if type(module) is not _base_class(module):
        module.__dict__.pop(GUARD, None)
        module.__class__ = _base_class(module)
    return module


def _wrap_function(fn: F, spec: RNNSpec | None) -> F:
    params = list(inspect.signature(fn).parameters)
    # a method: its first parameter is self, or it is defined in a class body ("M.forward", not
    # "make.<locals>.forward"), whatever it calls its instance
    in_class = fn.__qualname__.split(".")[-2:-1] not in ([], ["<locals>"])
    is_method = bool(params) and (params[0] == "self" or in_class)
    if spec is None and not is_method:
        raise TypeError(
            f"checked({fn.__name__}): a plain function needs a spec, e.g. "
            f"@checked(spec=RNNSpec(mode='GRU', input_size=4, hidden_size=2))"
        )
    names = call_names(fn, skip_self=is_method)
    if is_method:
        verdicts_attr = f"_rnn_contracts_verdicts_{fn.__name__}"

        @functools.wraps(fn)
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:  # fn's own signature, passed on
            verdicts = self.__dict__.get(verdicts_attr)
            if verdicts is None:
                verdicts = _Verdicts()
                self.__dict__[verdicts_attr] = verdicts
                self.__dict__[verdicts_attr + "_spec"] = spec or RNNSpec.from_module(self)
            own_spec = self.__dict__[verdicts_attr + "_spec"]
            x, hx = _x_hx(args, kwargs, names, own_spec)
            return verdicts.run(own_spec, lambda *_: fn(self, *args, **kwargs), self, x, hx, ())

        return method  # type: ignore[return-value]
    verdicts = _Verdicts()
    assert spec is not None

    @functools.wraps(fn)
    def function(*args: Any, **kwargs: Any) -> Any:
        x, hx = _x_hx(args, kwargs, names, spec)
        return verdicts.run(spec, lambda *_: fn(*args, **kwargs), None, x, hx, ())

    return function  # type: ignore[return-value]


@overload
def checked(target: torch.nn.Module, spec: RNNSpec | None = None) -> torch.nn.Module: ...
@overload
def checked(target: F, spec: RNNSpec | None = None) -> F: ...
@overload
def checked(target: None = None, spec: RNNSpec | None = None) -> Callable[[F], F]: ...


def checked(target: Any = None, spec: RNNSpec | None = None) -> Any:
    """Enforce the contract of ``spec`` on every call of a module or forward function.

    * ``checked(module)`` / ``checked(module, spec)``: the module itself, checked in place (see
      the module docstring: same class for isinstance, same state_dict, hooks still run);
    * ``@checked`` / ``@checked(spec=...)`` on a ``forward(self, x, hx=None)`` method (the spec
      defaults to ``RNNSpec.from_module(self)``) or on a plain ``f(x, hx=None)`` (spec required).

    The forward keeps its signature: x is its first parameter, hx the one named ``hx`` (or a
    second parameter with a state's name: ``h``, ``h0``, ``hidden``, ``state``, ...), by position
    or by name, and any other argument passes through.

    With ``RNN_CONTRACTS_OFF=1`` in the environment at import, returns ``target`` unchanged.
    A spec of the wrong type is a TypeError naming the argument.
    """
    if spec is not None and not isinstance(spec, RNNSpec):
        raise TypeError(f"checked(spec=...) takes an RNNSpec, got {type(spec).__name__}")
    if target is None:
        return lambda fn: checked(fn, spec)
    if DISABLED:
        return target
    if isinstance(target, torch.nn.Module):
        return _check_module(target, spec)
    if callable(target):
        return _wrap_function(target, spec)
    raise TypeError(f"checked() takes a module or a function, got {type(target).__name__}")
