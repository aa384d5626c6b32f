"""RNNSpec: what a recurrent layer promises, in the vocabulary of the torch recurrent API.

The shapes encode the "Inputs" and "Outputs" sections of the torch.nn.RNN, torch.nn.LSTM and
torch.nn.GRU documentation, through the one table of :mod:`rnn_contracts.layouts` (which axes
each tensor has in each layout); the spec supplies the sizes: dim = input_size, hidden = H_out
(proj_size if > 0 else hidden_size), cell = H_cell (hidden_size), layers = num_layers,
directions = D (2 if bidirectional else 1).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from rnn_contracts.errors import SpecError
from rnn_contracts.layouts import Layout, Role, axes, layout_of, size_of

Mode = Literal["RNN", "LSTM", "GRU"]
_MODES = ("RNN", "LSTM", "GRU")
Convention = Literal["layer", "cell"]
_CONVENTIONS = ("layer", "cell")
#: torch's cells, by class name: their mode (RNNCell's nonlinearity is an attribute).
_TORCH_CELLS = {"RNNCell": "RNN", "LSTMCell": "LSTM", "GRUCell": "GRU"}
_TORCH_MODES = {"RNN_TANH": ("RNN", "tanh"), "RNN_RELU": ("RNN", "relu")}
_REQUIRED = ("mode", "input_size", "hidden_size")


class NamedShape(tuple):
    """A shape whose axes carry names: ``NamedShape((("batch", 3), ("seq", 5)))``.

    ``str()`` gives ``(batch=3, seq=5)``; ``sizes`` gives the plain ``(3, 5)``.
    """

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(size for _, size in self)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self)

    def __str__(self) -> str:
        return "(" + ", ".join(f"{name}={size}" for name, size in self) + ")"


def _as_bool(owner: str, name: str, value: Any) -> bool:
    """A module attribute read into a bool field: True/False (or 0/1) only."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    shown = repr(value) if len(repr(value)) <= 40 else f"a {type(value).__name__}"
    raise SpecError(f"{owner}.{name} is {shown}, not a bool: RNNSpec.{name} needs True or False "
                    f"(pass {name}=... to RNNSpec.from_module to give it)")


def unwrap(module: Any) -> Any:
    """The module behind known wrappers: torch.compile's OptimizedModule (``_orig_mod``),
    DataParallel and DistributedDataParallel (``module``)."""
    import torch

    for _ in range(8):  # wrappers of wrappers, bounded
        inner = getattr(module, "_orig_mod", None)
        if inner is None and isinstance(module, (torch.nn.DataParallel,
                                                 torch.nn.parallel.DistributedDataParallel)):
            inner = module.module
        if not isinstance(inner, torch.nn.Module):
            return module
        module = inner
    return module


_ABSENT = object()


def _attribute(module: Any, name: str) -> Any:
    """``module.name``, or _ABSENT when the module has no such attribute; an attribute whose
    reading raises anything else (a property of the module's own) is a SpecError naming it."""
    try:
        return getattr(module, name)
    except AttributeError:
        return _ABSENT
    except Exception as exc:  # noqa: BLE001 - the module's own property: named, never a traceback
        raise SpecError(f"reading {type(module).__name__}.{name} raised {type(exc).__name__}: {exc} "
                        f"(give it as a field: RNNSpec.from_module(module, {name}=...))") from exc


@dataclass(frozen=True)
class RNNSpec:
    """The configuration a recurrent module claims, mirroring torch.nn.RNNBase's arguments.

    ``packed`` and ``unbatched`` say whether the module accepts a PackedSequence and 2-D
    (unbatched) input; torch's own layers accept both. The calling convention
    (:mod:`rnn_contracts.conventions`): ``convention="cell"`` for a cell the kit unrolls over
    time (one layer, one direction), ``returns_states=False`` for a module that returns only the
    output, ``requires_hx=True`` for one without a default hx, ``takes_hx=False`` for one whose
    forward takes only the input (and starts every call from its own initial state: the contracts
    that hand it an h_0 do not apply). ``updates_buffers`` declares that the
    module updates its buffers by design (running statistics, quantization observers):
    verify_rnn then restores and reports those updates instead of failing ``inputs_untouched``.
    Every field is type-checked: a bool field takes only True or False (``"False"`` is an error,
    never True).
    """

    mode: Mode
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False
    batch_first: bool = False
    proj_size: int = 0
    nonlinearity: str = "tanh"
    bias: bool = True
    packed: bool = False
    unbatched: bool = False
    updates_buffers: bool = False
    convention: Convention = "layer"
    returns_states: bool = True
    requires_hx: bool = False
    takes_hx: bool = True

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if field.type in ("bool", bool):
                value = getattr(self, field.name)
                if not isinstance(value, bool):
                    raise SpecError(f"RNNSpec.{field.name} must be True or False, got {value!r}")
        if not isinstance(self.mode, str) or self.mode not in _MODES:
            raise SpecError(f"RNNSpec.mode must be one of {_MODES}, got {self.mode!r}")
        for name in ("input_size", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SpecError(f"RNNSpec.{name} must be a positive int, got {value!r}")
        if not isinstance(self.proj_size, int) or isinstance(self.proj_size, bool) or self.proj_size < 0:
            raise SpecError(f"RNNSpec.proj_size must be an int >= 0, got {self.proj_size!r}")
        if self.proj_size and self.mode != "LSTM":
            raise SpecError(f"proj_size is an LSTM feature; {self.mode} has none (got {self.proj_size})")
        if self.proj_size and self.proj_size >= self.hidden_size:
            raise SpecError(
                f"proj_size ({self.proj_size}) must be smaller than hidden_size ({self.hidden_size})"
            )
        if self.convention not in _CONVENTIONS:
            raise SpecError(f"RNNSpec.convention must be one of {_CONVENTIONS}, got {self.convention!r}")
        if self.convention == "cell":
            extra = [f"{n}={getattr(self, n)!r}" for n, single in
                     (("num_layers", 1), ("bidirectional", False), ("proj_size", 0), ("packed", False),
                      ("returns_states", True), ("takes_hx", True))
                     if getattr(self, n) != single]
            if extra:
                raise SpecError(f"a cell is one layer in one direction without packed input, and its "
                                f"step returns its state: "
                                f"convention='cell' excludes {', '.join(extra)}")
        if self.requires_hx and not self.takes_hx:
            raise SpecError("requires_hx=True and takes_hx=False contradict each other: a module that "
                            "takes no hx cannot require one")
        if not isinstance(self.nonlinearity, str) or self.nonlinearity not in ("tanh", "relu"):
            raise SpecError(f"nonlinearity must be 'tanh' or 'relu', got {self.nonlinearity!r}")
        if self.nonlinearity == "relu" and self.mode != "RNN":
            raise SpecError(f"nonlinearity='relu' exists for RNN only, not {self.mode}")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_module(cls, module: Any, **fields: Any) -> "RNNSpec":
        """Read the spec off a torch.nn.RNNBase or any module with the same attribute names.

        torch's ``mode`` "RNN_TANH" / "RNN_RELU" becomes "RNN" with that nonlinearity. Attributes
        the module lacks take the field's default; for torch's own layers ``packed`` and
        ``unbatched`` are True. ``fields`` give or replace any field (e.g. batch_first=True to
        declare the layout a caller expects, or mode/input_size/hidden_size for a module that
        carries none of torch's attribute names); they win over the module's attributes.
        torch's cells (RNNCell, LSTMCell, GRUCell) give ``convention="cell"``, unbatched input
        included. Wrappers are seen through: ``torch.compile``'s OptimizedModule, DataParallel and
        DistributedDataParallel. Attribute values of the wrong type (``bidirectional="False"``)
        are a SpecError naming the attribute, and so is an attribute whose reading raises (a
        property that needs weights not loaded yet); a field given is never read off the module.
        """
        import torch

        unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(f"RNNSpec.from_module() got unknown field(s) {', '.join(unknown)}; "
                            f"fields: {', '.join(f.name for f in dataclasses.fields(cls))}")
        module = unwrap(module)
        if isinstance(module, torch.nn.RNNCellBase) and type(module).__name__ in _TORCH_CELLS:
            fields = {"mode": _TORCH_CELLS[type(module).__name__], "convention": "cell",
                      "unbatched": True, "packed": False, **fields}
        read = {f.name: _attribute(module, f.name) for f in dataclasses.fields(cls) if f.name not in fields}
        missing = [name for name in _REQUIRED if name not in fields and read[name] is _ABSENT]
        if missing:
            kind = type(module).__name__
            quoted = [repr(m) for m in missing]
            names = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
            # The example shows what the module does carry, and ... for what it lacks.
            known = {**{n: read[n] for n in _REQUIRED if n in read and read[n] is not _ABSENT}, **fields}
            if "mode" in known:
                known["mode"] = _TORCH_MODES.get(str(known["mode"]), (known["mode"],))[0]
            example = ", ".join(f"{n}={known[n]!r}" if n in known else f"{n}=..." for n in _REQUIRED)
            raise SpecError(
                f"{kind} has no attribute {names}: RNNSpec.from_module needs 'mode', 'input_size' "
                f"and 'hidden_size' on the module, or as fields: RNNSpec.from_module(module, "
                f"{example}). Or pass the spec, spec=RNNSpec({example}), to whichever you called: "
                f"verify_rnn(module, spec), checked(module, spec=spec), check_forward(module, x, "
                f"spec=spec), or rnn-contracts --spec KEY=VALUE"
            )
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            value = read.get(field.name, _ABSENT)
            if value is not _ABSENT:
                if isinstance(value, (torch.Tensor, torch.nn.Module)):
                    continue  # a parameter named bias, a submodule named mode: not configuration
                if field.type in ("bool", bool):
                    value = _as_bool(type(module).__name__, field.name, value)
                values[field.name] = value
        if isinstance(module, torch.nn.RNNBase):
            values["packed"] = values["unbatched"] = True
        values.update(fields)
        mode = values.get("mode")
        if isinstance(mode, str) and mode in _TORCH_MODES:  # torch's RNN_TANH / RNN_RELU
            values["mode"], nonlinearity = _TORCH_MODES[mode]
            if "nonlinearity" not in fields:
                values["nonlinearity"] = nonlinearity
        return cls(**values)

    def replace(self, **changes: Any) -> "RNNSpec":
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    # -- derived sizes --------------------------------------------------------------------------
    @property
    def num_directions(self) -> int:
        """D in the torch docs: 2 if bidirectional else 1."""
        return 2 if self.bidirectional else 1

    @property
    def h_out(self) -> int:
        """H_out: proj_size if proj_size > 0 else hidden_size (size of h_n and of each direction's output)."""
        return self.proj_size if self.proj_size else self.hidden_size

    @property
    def h_cell(self) -> int:
        """H_cell: hidden_size (size of the LSTM cell state c_n)."""
        return self.hidden_size

    @property
    def has_cell(self) -> bool:
        return self.mode == "LSTM"

    @property
    def gives_hx(self) -> bool:
        """Whether verify_rnn's probes hand the module an initial state: it takes one
        (``takes_hx``) and returns its states (a module that returns only its output may take
        no hx either, so it is never given one)."""
        return self.takes_hx and self.returns_states

    def dims(self) -> dict[str, int]:
        """The dimension sizes the spec fixes, by name."""
        return {
            "dim": self.input_size,
            "hidden": self.h_out,
            "cell": self.h_cell,
            "layers": self.num_layers,
            "directions": self.num_directions,
        }

    # -- expected shapes (from the one table in rnn_contracts.layouts) -----------------------
    def shape(self, role: Role, layout: Layout, **sizes: int) -> NamedShape:
        """The named shape of ``role`` in ``layout``; ``sizes`` gives batch, seq or total."""
        known = {**self.dims(), **sizes}
        return NamedShape(tuple((name, size_of(name, known)) for name in axes(role, layout)))

    def _call_layout(self, batch: int | None) -> Layout:
        return layout_of(batch_first=self.batch_first, unbatched=batch is None)

    def input_shape(self, batch: int | None, seq: int) -> NamedShape:
        """Expected input shape; ``batch=None`` means unbatched (2-D) input."""
        return self.shape("input", self._call_layout(batch), batch=batch or 0, seq=seq)

    def output_shape(self, batch: int | None, seq: int) -> NamedShape:
        """Expected output shape: the input's layout with directions*hidden features."""
        return self.shape("output", self._call_layout(batch), batch=batch or 0, seq=seq)

    def state_shape(self, batch: int | None, which: str = "h") -> NamedShape:
        """Expected h_0/h_n (``which="h"``) or c_0/c_n (``which="c"``) shape, never batch-first."""
        return self.shape("h" if which == "h" else "c", self._call_layout(batch), batch=batch or 0)

    def packed_data_shape(self, total: int, which: str) -> NamedShape:
        """Rows of a PackedSequence's ``data``: input (total, dim), output (total, directions*hidden)."""
        return self.shape("input" if which == "input" else "output", "packed", total=total)

    def expected_shapes(self, batch: int | None, seq: int) -> dict[str, NamedShape]:
        """Every tensor of one forward call, by the names the torch docs use."""
        shapes = {
            "input": self.input_shape(batch, seq),
            "h_0": self.state_shape(batch, "h"),
            "output": self.output_shape(batch, seq),
            "h_n": self.state_shape(batch, "h"),
        }
        if self.has_cell:
            shapes["c_0"] = self.state_shape(batch, "c")
            shapes["c_n"] = self.state_shape(batch, "c")
        return shapes

    def describe(self) -> str:
        """Short constructor-like text, e.g. ``LSTM(4, 2, num_layers=2, proj_size=1)``."""
        parts = [str(self.input_size), str(self.hidden_size)]
        defaults = RNNSpec(mode=self.mode, input_size=self.input_size, hidden_size=self.hidden_size)
        for field in dataclasses.fields(self)[3:]:
            if field.name in ("packed", "unbatched", "updates_buffers", "convention",
                              "returns_states", "requires_hx", "takes_hx"):
                continue  # capabilities and conventions, not constructor arguments
            value = getattr(self, field.name)
            if value != getattr(defaults, field.name):
                parts.append(f"{field.name}={value!r}")
        kind = f"{self.mode}Cell" if self.convention == "cell" else self.mode
        return f"{kind}({', '.join(parts)})"
