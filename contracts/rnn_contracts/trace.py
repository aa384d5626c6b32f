"""verify_rnn leaves no trace: everything a forward can change, snapshotted, audited, restored.

On the module (and every submodule): which parameters, buffers and submodules it holds and their
identity (a forward may rebind ``self.calls = self.calls + 1`` or register a new Parameter), its
plain attributes by identity (``self.mem = h_n``: restored, not reported),
parameter and buffer values (also writes through ``.data``, which no version counter sees),
``requires_grad``, gradients (the tensor and its values) and training flags. In the process: the
CPU and CUDA RNG states, Python's and NumPy's global generators (a forward may draw from them,
a time mask say, even where its eval mode ignores the draw), the environment variables, the TF32 /
precision flags, torch's process-wide switches (:data:`_SWITCHES`: deterministic algorithms,
anomaly detection, the thread count, cuDNN's and oneDNN's flags), the default dtype and grad mode.

:meth:`ModuleSnapshot.changes` says what the probes changed, as :class:`Change` records (the
``inputs_untouched`` contract reports them); :meth:`ModuleSnapshot.restore` puts everything back,
so a module that changed itself during the eval-mode probes still runs its next training step.
"""
from __future__ import annotations

import contextlib
import os
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch

from rnn_contracts import precision


@dataclass(frozen=True)
class Change:
    """One thing the probes changed on the module. ``kind`` "buffer" with ``how`` "values" is the
    only change a spec may declare (``RNNSpec.updates_buffers``): running statistics, observers."""

    kind: Literal["parameter", "buffer", "submodule", "flag"]
    name: str
    how: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name} ({self.how})"

    @property
    def declarable(self) -> bool:
        return self.kind == "buffer" and self.how == "values changed"


_SLOTS = (("parameter", "_parameters"), ("buffer", "_buffers"), ("submodule", "_modules"))


def same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal values, NaN equal to NaN (a module that holds NaN has not changed it)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if torch.equal(a, b):  # one pass, no temporaries: 338 MB of LSTM weights in a few ms
        return True
    if a.is_floating_point() or a.is_complex():  # NaN makes torch.equal False: look again
        return bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())
    return False


def _slots(owner: torch.nn.Module, attr: str) -> dict[str, Any]:
    """A copy of one of the module's slot dicts (``_parameters``, ``_buffers``, ``_modules``),
    read through ``items()``: a TorchScript module holds them in wrappers that are no Mapping."""
    return dict(getattr(owner, attr).items())


#: What ModuleSnapshot keeps apart from a module's plain attributes: its slots, and its
#: training flag (restored last).
_NOT_PLAIN = frozenset({attr for _, attr in _SLOTS} | {"training"})


def _plain_attributes(owner: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(owner).items() if k not in _NOT_PLAIN}


_MISSING = object()


def _restore_attributes(owner: Any, saved: dict[str, Any]) -> None:
    """``owner``'s plain attributes as ``saved`` held them (identity): added ones removed,
    rebound ones put back, written straight into its ``__dict__`` (no ``__setattr__`` of the
    module's own runs). An object changed in place stays as it is."""
    current = vars(owner)
    for name in [n for n in current if n not in saved and n not in _NOT_PLAIN]:
        del current[name]
    for name, value in saved.items():
        if current.get(name, _MISSING) is not value:
            current[name] = value


def _same_slots(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The same names in the same order, holding the same objects (identity, not values)."""
    return len(a) == len(b) and all(ka == kb and va is vb for (ka, va), (kb, vb) in zip(a.items(), b.items()))


class ModuleSnapshot:
    """What a module holds, taken before the probes."""

    def __init__(self, module: Any) -> None:
        self.is_module = isinstance(module, torch.nn.Module)
        owners = list(module.named_modules(remove_duplicate=False)) if self.is_module else []
        self.owners = [(prefix, owner, {attr: _slots(owner, attr) for _, attr in _SLOTS},
                        owner.training) for prefix, owner in owners]
        #: each owner's plain attributes (a forward's ``self.mem = h`` or ``self.calls += 1``),
        #: by identity: put back, never reported (bookkeeping is no violation)
        self.attributes = [(owner, _plain_attributes(owner)) for _, owner, _, _ in self.owners]
        seen: dict[int, tuple[str, str, torch.Tensor]] = {}
        for prefix, owner, slots, _ in self.owners:
            for kind, attr in _SLOTS[:2]:
                for name, tensor in slots[attr].items():
                    if tensor is not None and id(tensor) not in seen:
                        seen[id(tensor)] = (kind, f"{prefix}.{name}" if prefix else name, tensor)
        self.tensors = [(kind, name, t, t._version, t.detach().clone(), t.requires_grad)
                        for kind, name, t in seen.values()]
        self.grads = [(t, t.grad, None if t.grad is None else t.grad.detach().clone())
                      for kind, _, t, *_ in self.tensors if kind == "parameter"]
        self._changed: set[int] | None = None

    def changed_values(self) -> set[int]:
        """The ids of the tensors whose values differ from the snapshot's. Compared once: the
        audit and the restore both read it (on a 338 MB LSTM each comparison is ~45 ms)."""
        if self._changed is None:
            self._changed = {id(tensor) for _, _, tensor, version, values, _ in self.tensors
                             if tensor._version != version or not same_values(tensor.detach(), values)}
        return self._changed

    def changes(self) -> list[Change]:
        """What differs now from the snapshot, in a stable order."""
        found: list[Change] = []
        for prefix, owner, slots, _ in self.owners:
            for kind, attr in _SLOTS:
                before, after = slots[attr], _slots(owner, attr)
                for name in list(before) + [n for n in after if n not in before]:
                    full = f"{prefix}.{name}" if prefix else name
                    if name not in after:
                        found.append(Change(kind, full, "removed"))  # type: ignore[arg-type]
                    elif name not in before:
                        found.append(Change(kind, full, "added"))  # type: ignore[arg-type]
                    elif after[name] is not before[name]:
                        found.append(Change(kind, full, "replaced by another object"))  # type: ignore[arg-type]
        changed = self.changed_values()
        for kind, name, tensor, _, _, requires_grad in self.tensors:
            if id(tensor) in changed:
                found.append(Change(kind, name, "values changed"))  # type: ignore[arg-type]
            if tensor.requires_grad != requires_grad:
                found.append(Change("flag", name, f"requires_grad {requires_grad} -> {tensor.requires_grad}"))
        return found

    def restore(self) -> None:
        """Put back every slot, value, flag, gradient and training mode of the snapshot. A
        recurrent layer's flat weight list is rebuilt from the restored tensors (on CUDA it
        flattens them for cuDNN, which fails on a parameter still resized through ``.data``),
        before the training modes come back."""
        for _, owner, slots, _ in self.owners:
            for _, attr in _SLOTS:
                current = getattr(owner, attr)
                if _same_slots(dict(current.items()), slots[attr]):
                    continue
                if isinstance(current, dict):
                    current.clear()
                    current.update(slots[attr])
                else:  # a TorchScript module's wrapper: no clear(); its slots cannot be added to
                    for name, value in slots[attr].items():
                        current[name] = value
        for owner, attributes in self.attributes:
            _restore_attributes(owner, attributes)
        changed = self.changed_values()
        with torch.no_grad():
            for _, _, tensor, _, values, requires_grad in self.tensors:
                if tensor.shape != values.shape or tensor.dtype != values.dtype:
                    tensor.data = values  # resized or retyped through .data: put the tensor back whole
                elif id(tensor) in changed:
                    tensor.detach().copy_(values)
                if tensor.requires_grad != requires_grad:
                    tensor.requires_grad_(requires_grad)
            for param, grad, values in self.grads:
                if grad is not None and values is not None and (
                        grad.shape != values.shape or grad.dtype != values.dtype):
                    grad.data = values  # resized or retyped through .data, as a parameter above
                param.grad = grad
                if grad is not None and values is not None and not torch.equal(grad, values):
                    grad.copy_(values)
        for _, owner, _, _ in self.owners:
            if isinstance(owner, torch.nn.RNNBase):
                owner._init_flat_weights()  # its flat weight list follows the restored parameters
        # training flags last: the rebuild reads each weight, and a parametrized one computed in
        # training mode moves on (spectral_norm's power iteration updates its buffers)
        for _, owner, _, training in self.owners:
            owner.training = training
        self._changed = None  # a later restore compares again


def _environ() -> dict[Any, Any]:
    """A snapshot of the process environment: os.environ's raw mapping where it has one (a copy
    of ~40 byte strings takes 0.2 us; reading it through os.environ decodes each, 30 us)."""
    raw = getattr(os.environ, "_data", None)
    return dict(raw) if isinstance(raw, dict) else {"": dict(os.environ)}


def _restore_environ(saved: dict[Any, Any]) -> None:
    """The process environment as ``saved`` (:func:`_environ`): variables a probe added
    (torch.compile's inductor sets TORCHINDUCTOR_CACHE_DIR the first time), changed or removed,
    put back; nothing done where nothing changed."""
    if _environ() == saved:
        return
    raw = getattr(os.environ, "_data", None)
    values = ({os.fsdecode(k): os.fsdecode(v) for k, v in saved.items()} if isinstance(raw, dict)
              else saved[""])
    for name in [n for n in os.environ if n not in values]:
        del os.environ[name]
    for name, value in values.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


#: Process-wide torch switches a forward can flip and never put back, each (getter, setter) as
#: data: the deterministic-algorithms mode (with warn_only), anomaly detection (with check_nan),
#: the intra-op thread count, cuDNN's benchmark and deterministic flags and oneDNN's switch. Not
#: cudnn.enabled: the differentiability contract turns it off on CUDA under a count shared by
#: concurrent runs (hygiene.gradient_kernels), so a run that started inside another's gradient
#: pass would "restore" it off.
_SWITCHES: tuple[tuple[Any, Any], ...] = (
    (lambda: (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()),
     lambda v: torch.use_deterministic_algorithms(v[0], warn_only=v[1])),
    (lambda: (torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()),
     lambda v: torch.autograd.set_detect_anomaly(v[0], check_nan=v[1])),
    (torch.get_num_threads, torch.set_num_threads),
    (lambda: torch.backends.cudnn.benchmark, lambda v: setattr(torch.backends.cudnn, "benchmark", v)),
    (lambda: torch.backends.cudnn.deterministic, lambda v: setattr(torch.backends.cudnn, "deterministic", v)),
    (lambda: torch.backends.mkldnn.enabled, lambda v: setattr(torch.backends.mkldnn, "enabled", v)),
)


def _save_switches() -> list[Any]:
    return [get() for get, _ in _SWITCHES]


def _restore_switches(saved: list[Any]) -> None:
    """Each switch of :data:`_SWITCHES` as ``saved`` left it; set only where it changed."""
    for (get, put), value in zip(_SWITCHES, saved):
        if get() != value:
            put(value)


@contextlib.contextmanager
def no_trace(module: Any, device: torch.device) -> Iterator[ModuleSnapshot]:
    """Snapshot the module and the process state; after the block, record the module's changes
    on ``snapshot.found`` and restore everything, exceptions included."""
    snapshot = ModuleSnapshot(module)
    snapshot.found = []  # type: ignore[attr-defined]
    flags = precision.save_flags()
    switches = _save_switches()
    default_dtype, grad_mode = torch.get_default_dtype(), torch.is_grad_enabled()
    environ = _environ()
    python_rng = random.getstate()
    numpy = sys.modules.get("numpy")  # only where something imported it: the kit never does
    numpy_rng = numpy.random.get_state() if numpy is not None else None
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        try:
            yield snapshot
        finally:
            try:
                snapshot.found = snapshot.changes()  # type: ignore[attr-defined]
                snapshot.restore()
            finally:  # the process state comes back even if the module could not
                precision.restore_flags(flags)
                _restore_switches(switches)
                torch.set_default_dtype(default_dtype)
                torch.set_grad_enabled(grad_mode)
                random.setstate(python_rng)
                _restore_environ(environ)
                if numpy_rng is not None:
                    numpy.random.set_state(numpy_rng)
