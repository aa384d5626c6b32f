"""check_forward: run a recurrent module once and check every tensor against its contract.

The contract is the "Inputs" / "Outputs" sections of the torch.nn.RNN, LSTM and GRU docs (see
rnn_contracts.spec). Dimensions bind across the call: the batch and seq of the input fix the batch
of h_0, output, h_n and c_n, so a layer that read the input in the other layout is caught even
when the output's shape looks right (the seed note's nn.RNN(4, 2) on a (3, 5, 4) batch).

Shapes are judged by the engine (jaxtyping aliases, typeguard by default); dtypes and devices
must equal the input's. Nothing here synchronises a CUDA device: only shapes, dtypes and devices
are read (a PackedSequence's batch_sizes live on the CPU by torch's rule).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn.utils.rnn import PackedSequence

from rnn_contracts import aliases, diagnose, engine, fastpath
from rnn_contracts.conventions import layer_call
from rnn_contracts.errors import ContractViolation, Violation, shape_text
from rnn_contracts.spec import NamedShape, RNNSpec


@dataclass(frozen=True)
class CallFacts:
    """What the input of one call fixes: layout, batch (None when unbatched), seq, dtype, device."""

    packed: bool
    batch: int | None
    seq: int
    total: int
    dtype: torch.dtype
    device: torch.device
    shape: tuple[int, ...]

    @property
    def unbatched(self) -> bool:
        return self.batch is None and not self.packed

    def bound(self, spec: RNNSpec) -> dict[str, int]:
        """The sizes a message reports; ``cell`` only where the mode has a cell state."""
        dims = dict(spec.dims())
        if not spec.has_cell:
            del dims["cell"]  # bound for the engine, but RNN and GRU have no c: noise in a message
        if self.batch is not None:
            dims["batch"] = self.batch
        dims["seq"] = self.seq
        if self.packed:
            dims["total"] = self.total
        return dims


class _Checker:
    """Collects violations for one call; every shape check runs in one engine scope."""

    def __init__(self, spec: RNNSpec, module: Any) -> None:
        self.spec = spec
        self.module = module
        self.violations: list[Violation] = []
        self.facts: CallFacts | None = None

    # -- input ----------------------------------------------------------------------------------
    def read_input(self, x: Any) -> CallFacts | None:
        spec = self.spec
        if isinstance(x, PackedSequence):
            if not spec.packed:
                self.violations.append(Violation(
                    "type", "input", "a PackedSequence was passed, but the spec declares no packed "
                    "support (RNNSpec.packed=False)"))
                return None
            problem = _packed_problem(x)
            if problem is not None:
                self.violations.append(Violation("evidence", "input", problem))
                return None
            data = x.data
            batch_sizes = x.batch_sizes
            return CallFacts(True, int(batch_sizes[0]), len(batch_sizes), data.shape[0],
                             data.dtype, data.device, tuple(data.shape))
        if not isinstance(x, torch.Tensor):
            self.violations.append(Violation(
                "type", "input", f"expected a Tensor or PackedSequence, got {type(x).__name__}"))
            return None
        if x.is_nested:  # its sizes differ per sequence: torch's layers take neither
            self.violations.append(Violation(
                "type", "input", "a nested tensor was passed: torch's recurrent layers take a padded "
                "tensor or a PackedSequence (torch.nn.utils.rnn.pad_sequence, pack_sequence)"))
            return None
        shape = tuple(x.shape)
        if x.dim() == 2:
            if not spec.unbatched:
                self.violations.append(Violation(
                    "type", "input", f"a 2-D (unbatched) tensor {shape_text(shape)} was passed, but "
                    f"the spec declares no unbatched support (RNNSpec.unbatched=False)"))
                return None
            if shape[0] == 0:
                self.violations.append(Violation(
                    "evidence", "input", "seq length 0: torch's recurrent layers need at least one step"))
                return None
            return CallFacts(False, None, shape[0], 0, x.dtype, x.device, shape)
        if x.dim() == 3:
            batch, seq = (shape[0], shape[1]) if spec.batch_first else (shape[1], shape[0])
            if seq == 0:
                self.violations.append(Violation(
                    "evidence", "input", "seq length 0: torch's recurrent layers need at least one step"))
                return None
            return CallFacts(False, batch, seq, 0, x.dtype, x.device, shape)
        expected = spec.input_shape(2, 3)
        self.violations.append(Violation(
            "type", "input", f"expected a 3-D tensor {shape_text(expected.names)} or a 2-D "
            f"unbatched one, got {x.dim()}-D {shape_text(shape)}"))
        return None

    def check_tensor(self, name: str, value: Any, alias: Any, expected: NamedShape) -> None:
        """Shape through the engine (in the open scope), then dtype and device against the input."""
        facts = self.facts
        assert facts is not None
        if not isinstance(value, torch.Tensor):
            self.violations.append(Violation(
                "type", name, f"expected a Tensor of shape {expected}, got {type(value).__name__}"))
            return
        actual = tuple(value.shape)
        accepted = engine.accepts(value, alias)
        if not accepted or actual != expected.sizes:
            if accepted:  # the engine passed what the spec rejects: never silently trust either
                raise RuntimeError(
                    f"rnn-contracts internal error: the {engine.get_checker()} checker accepted "
                    f"{name} {actual} against {expected}; please report this"
                )
            if actual == expected.sizes:
                self.violations.append(Violation(
                    "dtype", name, f"the shape {shape_text(actual)} is right",
                    expected="a floating-point dtype", actual=value.dtype))
                return
            hint = diagnose.shape_hint(name, expected, actual, self.spec, self.module, facts.seq)
            self.violations.append(
                diagnose.shape_violation(name, expected, actual, facts.bound(self.spec), hint)
            )
            return
        if value.dtype != facts.dtype:
            self.violations.append(
                diagnose.attribute_violation(name, "dtype", value.dtype, facts.dtype, "the input's dtype")
            )
        if value.device != facts.device:
            self.violations.append(
                diagnose.attribute_violation(name, "device", value.device, facts.device, "the input's device")
            )

    def check_states(self, prefix: str, value: Any) -> None:
        """h_0 / c_0 (prefix "0") or h_n / c_n (prefix "n"), as the mode expects them."""
        spec, facts = self.spec, self.facts
        assert facts is not None
        unbatched = facts.unbatched
        if spec.has_cell:
            if isinstance(value, torch.Tensor):
                if prefix == "0":
                    self.violations.append(diagnose.lstm_hx_hint(spec, value))
                else:
                    self.violations.append(Violation(
                        "type", "h_n", "LSTM returns (output, (h_n, c_n)), but the module returned "
                        f"a single state tensor {shape_text(tuple(value.shape))}"))
                return
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                what = "hx" if prefix == "0" else "the state"
                self.violations.append(Violation(
                    "type", what, f"LSTM states must be a pair (h_{prefix}, c_{prefix}), got "
                    f"{type(value).__name__}"
                    + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else "")))
                return
            h, c = value
            self.check_tensor(f"h_{prefix}", h, aliases.state_alias("h", unbatched),
                              spec.state_shape(facts.batch, "h"))
            self.check_tensor(f"c_{prefix}", c, aliases.state_alias("c", unbatched),
                              spec.state_shape(facts.batch, "c"))
            return
        if isinstance(value, (tuple, list)):
            if prefix == "0":
                self.violations.append(diagnose.tuple_hx_hint(spec, value))
            else:
                self.violations.append(Violation(
                    "type", "h_n", f"{spec.mode} returns a single state tensor h_n, got a {type(value).__name__}"))
            return
        self.check_tensor(f"h_{prefix}", value, aliases.state_alias("h", unbatched),
                          spec.state_shape(facts.batch, "h"))

    def check_inputs(self, x: Any, hx: Any) -> None:
        self.facts = self.read_input(x)
        if self.facts is None:
            return
        facts, spec = self.facts, self.spec
        self.check_against_parameters()
        engine.bind_spec(spec.dims())
        if facts.packed:
            self.check_tensor("input", x.data, aliases.PackedInputData,
                              spec.packed_data_shape(facts.total, "input"))
        else:
            self.check_tensor("input", x, aliases.input_alias(spec.batch_first, facts.unbatched),
                              spec.input_shape(facts.batch, facts.seq))
        if hx is not None and not spec.takes_hx:
            self.violations.append(Violation(
                "type", "hx", "an hx was passed, but the spec declares that the module takes none "
                "(RNNSpec.takes_hx=False)"))
        elif hx is not None:
            self.check_states("0", hx)

    def check_against_parameters(self) -> None:
        """The input's dtype and device must be those of the module's floating-point parameters
        (torch's own error otherwise comes from inside the kernel); under autocast the dtype may
        differ by design, and a module whose parameters come in several dtypes (a float64 scale
        on a float32 layer) takes any of them."""
        facts = self.facts
        assert facts is not None
        reference = fastpath.first_float_parameter(self.module)
        if reference is None:
            return
        if reference.device != facts.device:
            self.violations.append(diagnose.attribute_violation(
                "input", "device", facts.device, reference.device, "the module's parameters"))
        if reference.dtype != facts.dtype and not torch.is_autocast_enabled(facts.device.type) \
                and not any(p.dtype == facts.dtype for p in self.module.parameters()):
            self.violations.append(diagnose.attribute_violation(
                "input", "dtype", facts.dtype, reference.dtype, "the module's parameters"))

    def check_result(self, x: Any, result: Any) -> None:
        facts, spec = self.facts, self.spec
        assert facts is not None
        if not spec.returns_states:
            # the whole result is the output: LayerCall's (result, None), or the module's own
            # result as checked() sees it; a tuple there is a broken promise, not (output, h_n)
            adapted = isinstance(result, tuple) and len(result) == 2 and result[1] is None
            result = (result[0] if adapted else result, None)
            output = result[0]
            if isinstance(output, (tuple, list)) and len(output) == 2 \
                    and isinstance(output[0], (torch.Tensor, PackedSequence)):
                self.violations.append(Violation(
                    "type", "result", f"a module declared output-only returns its output alone, got "
                    f"{_describe(output)}", **diagnose.RETURNS_STATES_HINT))
                return
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            flat = spec.has_cell and isinstance(result, (tuple, list)) and len(result) == 3 \
                and isinstance(result[0], (torch.Tensor, PackedSequence)) \
                and all(isinstance(t, torch.Tensor) for t in result[1:])
            promise = "torch's LSTM returns (output, (h_n, c_n))" if spec.has_cell else \
                "torch's recurrent layers return (output, h_n)"
            hint = diagnose.OUTPUT_ONLY_HINT if isinstance(result, torch.Tensor) else \
                diagnose.FLAT_STATES_HINT if flat else {}
            self.violations.append(Violation("type", "result", f"{promise}, got {_describe(result)}", **hint))
            return
        output, state = result
        if not spec.returns_states:
            state = None
        if facts.packed:
            if not isinstance(output, PackedSequence):
                self.violations.append(Violation(
                    "type", "output", f"a PackedSequence in must give a PackedSequence out, got {_describe(output)}"))
            else:
                if not torch.equal(output.batch_sizes, x.batch_sizes):
                    self.violations.append(Violation(
                        "evidence", "output", f"batch_sizes {output.batch_sizes.tolist()} differ from "
                        f"the input's {x.batch_sizes.tolist()}", expected=x.batch_sizes.tolist(),
                        actual=output.batch_sizes.tolist()))
                self.check_tensor("output", output.data, aliases.PackedOutputData,
                                  spec.packed_data_shape(facts.total, "output"))
        else:
            self.check_tensor("output", output, aliases.output_alias(spec.batch_first, facts.unbatched),
                              spec.output_shape(facts.batch, facts.seq))
        if spec.returns_states:
            self.check_states("n", state)


def _packed_problem(x: PackedSequence) -> str | None:
    """What makes a PackedSequence malformed (torch.nn.utils.rnn docs: batch_sizes is a CPU int64
    tensor of non-increasing positive counts that sum to the rows of data), or None."""
    sizes = x.batch_sizes
    if not isinstance(sizes, torch.Tensor) or sizes.dtype != torch.int64 or sizes.device.type != "cpu" \
            or sizes.dim() != 1:
        got = f"{sizes.dtype} on {sizes.device}" if isinstance(sizes, torch.Tensor) else type(sizes).__name__
        return f"PackedSequence batch_sizes must be an int64 CPU tensor, got {got}"
    values = sizes.tolist()
    if not values or any(v <= 0 for v in values):
        return f"PackedSequence batch_sizes {values} hold a zero entry" if values else \
            "PackedSequence batch_sizes is empty"
    if any(b > a for a, b in zip(values, values[1:])):
        return f"PackedSequence batch_sizes {values} must not increase"
    if not isinstance(x.data, torch.Tensor) or x.data.dim() < 1 or x.data.shape[0] != sum(values):
        rows = x.data.shape[0] if isinstance(x.data, torch.Tensor) and x.data.dim() else "no"
        return f"PackedSequence data has {rows} rows, but batch_sizes {values} sum to {sum(values)}"
    return None


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a Tensor {shape_text(tuple(value.shape))}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of length {len(value)}"
    return type(value).__name__


def _title(spec: RNNSpec, x: Any, stage: str) -> str:
    what = diagnose.describe_input(x)
    return f"{spec.describe()} broke its contract {stage} on {what} [checker: {engine.get_checker()}]"


def inputs_violations(spec: RNNSpec, x: Any, hx: Any = None, module: Any = None) -> list[Violation]:
    """Violations of the input contract (x and hx), without running anything."""
    checker = _Checker(spec, module)
    with engine.scope():
        checker.check_inputs(x, hx)
    return checker.violations


def call_violations(spec: RNNSpec, x: Any, hx: Any, result: Any, module: Any = None) -> list[Violation]:
    """Violations of the whole call: inputs, then the module's result, with dimensions bound across."""
    checker = _Checker(spec, module)
    with engine.scope():
        checker.check_inputs(x, hx)
        if checker.facts is not None and not checker.violations:
            checker.check_result(x, result)
    return checker.violations


def _require_spec(spec: Any, who: str) -> None:
    if not isinstance(spec, RNNSpec):
        raise TypeError(f"{who}(spec=...) takes an RNNSpec, got {type(spec).__name__}")


def check_inputs(spec: RNNSpec, x: Any, hx: Any = None, module: Any = None) -> None:
    """Raise ContractViolation when x or hx break the input contract of ``spec``. A conforming
    input is passed by the direct comparison of rnn_contracts.fastpath; any other goes to the
    engine, which decides and diagnoses."""
    _require_spec(spec, "check_inputs")
    checked_inputs(spec, x, hx, module)


def checked_inputs(spec: RNNSpec, x: Any, hx: Any = None, module: Any = None) -> fastpath.Facts | None:
    """check_inputs, returning the fast path's facts for the result (None when the engine
    judged the inputs)."""
    facts = fastpath.read_inputs(spec, x, hx, module)
    if facts is not None:
        return facts
    violations = inputs_violations(spec, x, hx, module)
    if violations:
        raise ContractViolation(_title(spec, x, "before the call"), violations)
    return None


def check_forward(
    module: Any,
    x: Any,
    hx: Any = None,
    *,
    spec: RNNSpec | None = None,
) -> Any:
    """Run ``module(x)`` (or ``module(x, hx)``) once and check every tensor against the contract.

    ``spec`` defaults to ``RNNSpec.from_module(module)``; pass one to declare the layout you
    expect (e.g. ``spec.replace(batch_first=True)`` for a (batch, seq, dim) batch). The input and
    hx are checked before the call, so a wrong input is a ContractViolation, not torch's own
    error. The spec's calling convention applies (rnn_contracts.conventions): a cell is unrolled
    over ``x``, a module that requires hx gets zeros, and a module that returns only the output
    gives ``(output, None)``. Returns the result in torch's layer convention; raises
    :class:`ContractViolation` listing every broken contract otherwise.
    """
    if spec is None:
        spec = RNNSpec.from_module(module)
    _require_spec(spec, "check_forward")
    facts = checked_inputs(spec, x, hx, module)
    call = layer_call(module, spec)
    result = call(x) if hx is None else call(x, hx)
    if facts is not None and fastpath.result_ok(facts, x, result):
        return result
    violations = call_violations(spec, x, hx, result, module)
    if violations:
        raise ContractViolation(_title(spec, x, "in its result"), violations)
    return result


def check_call(
    spec: RNNSpec, x: Any, hx: Any, result: Any, module: Any = None
) -> None:
    """Check a call that already ran (for wrappers that call the module themselves): the fast
    path for a conforming call, the engine for any other (rnn_contracts.fastpath)."""
    facts = fastpath.read_inputs(spec, x, hx, module)
    if facts is not None and fastpath.result_ok(facts, x, result):
        return
    violations = call_violations(spec, x, hx, result, module)
    if violations:
        raise ContractViolation(_title(spec, x, "in its result"), violations)


__all__: Sequence[str] = ("check_forward", "check_inputs", "checked_inputs", "check_call", "CallFacts")
