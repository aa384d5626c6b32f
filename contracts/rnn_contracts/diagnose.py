"""Error context: turn a failed check into text a person can act on.

Each violation is one paragraph: which tensor, expected versus actual with the bound dimension
names and sizes, and a hint where the mismatch matches a known mistake:

* batch and seq swapped (a batch_first mismatch, silent when shapes line up: huyanxin/phasen#13);
* h_n / c_n laid out batch-first (torch keeps them (num_layers * D, batch, H_out) whatever
  batch_first is: pytorch/pytorch#4145, #19675);
* one tensor passed where LSTM wants (h_0, c_0) (pytorch/pytorch#45437);
* D * H_out features missing from a bidirectional output; proj_size used for c or hidden_size for h.
"""
from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn.utils.rnn import PackedSequence

from rnn_contracts.errors import Violation, shape_text
from rnn_contracts.spec import NamedShape, RNNSpec


@dataclass(frozen=True)
class Hint:
    """A known mistake that explains a mismatch: its code (for code that acts on it) and the
    sentence a person reads."""

    mistake: str
    text: str


def shape_violation(
    name: str,
    expected: NamedShape,
    actual: Sequence[int],
    bound: dict[str, int],
    hint: Hint | None,
) -> Violation:
    """A tensor whose shape broke its contract."""
    return Violation("shape", name, expected=expected, actual=tuple(actual), bound=dict(bound),
                     hint=hint.text if hint else None, mistake=hint.mistake if hint else None)


def _module_batch_first(module: Any) -> str:
    value = getattr(module, "batch_first", None)
    return "unknown" if value is None else str(bool(value))


def shape_hint(
    name: str,
    expected: NamedShape,
    actual: Sequence[int],
    spec: RNNSpec,
    module: Any = None,
    seq: int | None = None,
) -> Hint | None:
    """A hint when ``actual`` matches a known mistake, else None (``seq``: the input's seq length)."""
    actual = tuple(actual)
    sizes = expected.sizes
    names = expected.names
    if len(actual) != len(sizes):
        return _rank_hint(name, expected, actual)
    if "batch" in names and "seq" in names:
        i, j = names.index("batch"), names.index("seq")
        swapped = list(sizes)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        if sizes[i] != sizes[j] and actual == tuple(swapped):
            return Hint("batch_first", (
                f"batch and seq are swapped: the layer laid out {name} as "
                f"({'seq, batch' if spec.batch_first else 'batch, seq'}, ...). "
                f"Check batch_first (spec: {spec.batch_first}, module: {_module_batch_first(module)})"
            ))
    if name in ("h_0", "h_n", "c_0", "c_n") and len(sizes) == 3:
        stacks, batch, feat = sizes
        if stacks != batch and actual == (batch, stacks, feat):
            return Hint("state_batch_first", (
                f"{name} is laid out batch-first; torch keeps h and c states as "
                f"(num_layers * D, batch, H_out) whatever batch_first is (pytorch/pytorch#4145)"
            ))
        if actual[0] == stacks and actual[2] == feat and actual[1] != batch and name in ("h_n", "c_n"):
            if actual[1] == seq:
                read_as = "(batch, seq, dim)" if not spec.batch_first else "(seq, batch, dim)"
                return Hint("batch_first", (
                    f"{name}'s batch is {actual[1]}, the input's seq length: the module read the "
                    f"input as {read_as}, {seq} sequences of length {batch}. Check batch_first "
                    f"(spec: {spec.batch_first}, module: {_module_batch_first(module)})"
                ))
            return Hint("state_batch", (
                f"{name}'s batch is {actual[1]}, not the input's batch {batch}: states must keep "
                f"one row per sequence of the batch"
            ))
    return _feature_hint(name, expected, actual, spec)


def _rank_hint(name: str, expected: NamedShape, actual: tuple[int, ...]) -> Hint | None:
    if name == "input":
        return Hint("input_rank", "the input must be 3-D (batched) or 2-D (unbatched, if the spec allows it)")
    if len(actual) == len(expected) - 1:
        return _merged_hint(name, expected, actual) or _lost_hint(name, expected, actual)
    if len(actual) == len(expected) + 1:
        return Hint("extra_axis", f"{name} has an extra axis: with unbatched (2-D) input, states have no batch axis")
    return None


def _lost_hint(name: str, expected: NamedShape, actual: tuple[int, ...]) -> Hint:
    """One axis of ``expected`` missing: named where only one axis's absence gives ``actual``
    (an h_n of one layer returned without its layers*directions axis, (batch, hidden): the
    unsqueeze that restores it; of several layers, only one of them was returned); the batch
    axis, or an axis that cannot be told apart, in general words."""
    sizes, names = tuple(expected.sizes), expected.names
    lost = {names[k]: k for k in range(len(sizes)) if sizes[:k] + sizes[k + 1:] == tuple(actual)}
    if len(lost) == 1 and "batch" not in lost:
        (axis, k), = lost.items()
        fix = (f"put it back with {name}.unsqueeze({k})" if sizes[k] == 1 else
               f"return every one of its {sizes[k]}, not one")
        return Hint("lost_axis", f"{name} lost its {axis} axis (size {sizes[k]}): torch keeps {name} as "
                                 f"({', '.join(names)}); {fix}")
    return Hint("lost_axis", f"{name} lost an axis: a batched call must keep the batch axis")


def _merged_hint(name: str, expected: NamedShape, actual: tuple[int, ...]) -> Hint | None:
    """Two axes of ``expected`` merged into one: a merged axis is not a lost one. An axis of size
    1 merges into any other without a trace: that is a lost axis (:func:`_lost_hint`)."""
    sizes, names = expected.sizes, expected.names
    for i in range(len(sizes) - 1):
        for j in range(i + 1, len(sizes)):
            if 1 in (sizes[i], sizes[j]):
                continue
            kept = [s for k, s in enumerate(sizes) if k not in (i, j)]
            for at in range(len(kept) + 1):
                if tuple(kept[:at] + [sizes[i] * sizes[j]] + kept[at:]) == actual:
                    layout = [n for k, n in enumerate(names) if k not in (i, j)]
                    layout.insert(at, f"{names[i]}*{names[j]}" if names[i] != names[j] else names[i])
                    return Hint("merged_axes", (
                        f"{name} merged its {names[i]} and {names[j]} axes into one: got "
                        f"({', '.join(layout)}); torch keeps {name} as ({', '.join(names)})"))
    return None


def _feature_hint(
    name: str, expected: NamedShape, actual: tuple[int, ...], spec: RNNSpec
) -> Hint | None:
    want, got = expected.sizes[-1], actual[-1]
    if name == "input" and got != want:
        return Hint("input_size", f"the last axis of the input holds its features: dim = input_size = {spec.input_size}")
    if name == "output" and spec.bidirectional and got == spec.h_out:
        return Hint("bidirectional_features", (
            f"a bidirectional layer concatenates both directions: output has D * H_out = "
            f"{want} features, forward in [..., :{spec.h_out}], backward in [..., {spec.h_out}:]"
        ))
    if spec.proj_size and name in ("output", "h_0", "h_n") and got == spec.hidden_size * (
        want // spec.proj_size
    ):
        return Hint("proj_size", (
            f"with proj_size={spec.proj_size}, output and h use proj_size while c uses "
            f"hidden_size={spec.hidden_size}"
        ))
    if spec.proj_size and name in ("c_0", "c_n") and got == spec.proj_size:
        return Hint("proj_size", f"c_0 / c_n keep hidden_size={spec.hidden_size} even with proj_size={spec.proj_size}")
    if name in ("h_0", "h_n", "c_0", "c_n") and len(actual) >= 2 and got == want:
        stacks = spec.num_layers * spec.num_directions
        if actual[0] != stacks:
            return Hint("state_stacks", (
                f"the first axis of {name} stacks layers and directions: num_layers * D = {stacks}, "
                f"ordered as view(num_layers, D, batch, H_out)"
            ))
    return None


#: The hint and mistake of a module that returned one tensor where (output, h_n) was due.
OUTPUT_ONLY_HINT = {
    "hint": "a module that returns only its output: declare RNNSpec(returns_states=False) "
            "(command line: --spec returns_states=false)",
    "mistake": "output_only",
}
#: The hint and mistake of a module declared output-only that returned (output, state).
RETURNS_STATES_HINT = {
    "hint": "the module returns (output, state): drop the declaration RNNSpec(returns_states=False) "
            "(command line: leave out --spec returns_states=false)",
    "mistake": "returns_states",
}
#: The hint and mistake of an LSTM that returned (output, h_n, c_n) where torch's returns
#: (output, (h_n, c_n)).
FLAT_STATES_HINT = {
    "hint": "torch's LSTM returns its final states as one tuple: return output, (h_n, c_n)",
    "mistake": "flat_lstm_states",
}
#: The hint of a module whose forward(x, hx) has no default for hx (:func:`missing_hx`).
REQUIRES_HX_HINT = ("a module whose forward has no default for hx: declare RNNSpec(requires_hx=True) "
                    "(command line: --spec requires_hx=true); the kit then passes zeros where torch's "
                    "layers default h_0")
#: The hint of a module whose forward(x) takes no hx at all (:func:`takes_no_hx`).
TAKES_NO_HX_HINT = ("a module whose forward takes only the input: declare RNNSpec(takes_hx=False) "
                    "(command line: --spec takes_hx=false); the kit then never passes an h_0, and the "
                    "contracts that need one do not apply")
#: The hint of a module whose forward has no state parameter and took the kit's h_0 into another
#: (``forward(x, mask=None)``), and raised: {name} is that parameter.
HX_IN_ANOTHER_PARAMETER_HINT = ("its forward names no state parameter, so h_0 went second, into '{name}': "
                                "a module that takes no hx declares RNNSpec(takes_hx=False) (command line: "
                                "--spec takes_hx=false); one that does names that parameter hx")
_MISSING = re.compile(r"(?:^|\.)(\w+)\(\) missing \d+ required positional arguments?: (.+)$")
_TOO_MANY = re.compile(r"(?:^|\.)(\w+)\(\) takes \d+ positional arguments? but \d+ were given$")


def _own_signature(module: Any, exc: BaseException, pattern: re.Pattern[str]) -> tuple[
        re.Match[str], list[inspect.Parameter]] | None:
    """(the match, the parameters) when ``exc`` is a TypeError of ``pattern`` raised by the
    callable verify_rnn calls itself: a module's ``forward``, or a plain function (not a helper
    it calls, whose name differs), else None."""
    target = getattr(module, "forward", module)
    found = pattern.search(str(exc)) if isinstance(exc, TypeError) else None
    if found is None or found.group(1) != getattr(target, "__name__", None):
        return None
    try:
        return found, list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return None


def positional_names(parameters: list[inspect.Parameter]) -> list[str]:
    """The names of the parameters that can come by position, in order."""
    return [p.name for p in parameters
            if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]


def missing_hx(module: Any, exc: BaseException) -> bool:
    """Whether ``exc``, raised by a call ``module(x)`` without hx, is the module's own
    ``forward(x, hx)`` (or a function's) asking for its hx: a TypeError from that function itself
    (not a helper it calls) naming the second of exactly two positional parameters (a
    ``forward(x, lengths, hx=None)`` missing ``lengths`` does not take zeros there)."""
    own = _own_signature(module, exc, _MISSING)
    if own is None:
        return False
    found, parameters = own
    positional = positional_names(parameters)
    return len(positional) == 2 and f"'{positional[1]}'" in found.group(2)


def takes_no_hx(module: Any, exc: BaseException) -> bool:
    """Whether ``exc``, raised by a call ``module(x, hx)``, is the module's own ``forward(x)``
    (or a function's) refusing the hx: a TypeError from that function itself ("takes 2
    positional arguments but 3 were given", self counted) of one with exactly one positional
    parameter and no ``*args``."""
    own = _own_signature(module, exc, _TOO_MANY)
    if own is None:
        return False
    parameters = own[1]
    return len(positional_names(parameters)) == 1 and all(
        p.kind is not inspect.Parameter.VAR_POSITIONAL for p in parameters)


def lstm_hx_hint(spec: RNNSpec, hx: Any) -> Violation:
    """An LSTM given one tensor as hx (pytorch/pytorch#45437)."""
    shape = shape_text(tuple(hx.shape)) if hasattr(hx, "shape") else type(hx).__name__
    return Violation("type", "hx", f"LSTM takes hx as a tuple (h_0, c_0); one tensor {shape} was passed",
                     hint=f"pass (h_0, c_0), with c_0 of shape (layers*directions, batch, cell={spec.h_cell})",
                     mistake="lstm_hx_tensor")


def tuple_hx_hint(spec: RNNSpec, given: Any = ()) -> Violation:
    """A tuple (or list) given as hx to a mode that takes one tensor."""
    kind = type(given).__name__ if isinstance(given, (tuple, list)) else "tuple"
    return Violation("type", "hx", f"{spec.mode} takes a single tensor h_0, but a {kind} was passed",
                     hint="only LSTM takes (h_0, c_0)", mistake="tuple_hx")


def attribute_violation(name: str, what: str, got: Any, want: Any, whose: str) -> Violation:
    """A dtype or device mismatch (``what``: "dtype" or "device")."""
    return Violation(what, name, whose, expected=want, actual=got)  # type: ignore[arg-type]


def describe_input(x: Any, hx: Any = None) -> str:
    """``input (3, 5, 4) float32 on cpu, h_0 (1, 5, 2)``: what a call was given."""
    if isinstance(x, PackedSequence):
        text = f"PackedSequence data {tuple(x.data.shape)}, batch_sizes {x.batch_sizes.tolist()}"
    elif isinstance(x, torch.Tensor) and x.is_nested:  # no sizes: its sequences' lengths differ
        text = f"a nested tensor of {x.size(0)} sequences {str(x.dtype).replace('torch.', '')} on {x.device}"
    elif isinstance(x, torch.Tensor):
        text = f"input {tuple(x.shape)} {str(x.dtype).replace('torch.', '')} on {x.device}"
    else:
        text = f"input of type {type(x).__name__}"
    if isinstance(hx, torch.Tensor):
        text += f", h_0 {tuple(hx.shape)}"
    elif isinstance(hx, (tuple, list)):
        text += ", hx (" + ", ".join(str(tuple(t.shape)) for t in hx) + ")"
    return text


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (torch's errors run long)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
