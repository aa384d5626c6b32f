"""What every probe of verify_rnn shares: the run context, cached calls and evidence.

A probe is a function ``probe(ctx) -> None`` that raises :class:`ProbeFailure` with evidence
(tensor, position, expected, actual, difference) when the module breaks its contract, or
:class:`NotApplicable` with the reason when the contract does not apply to the spec.

Inputs come from a private ``torch.Generator`` seeded with 0, or from a named stream seeded from
it (``Context.randn(stream=...)``: what one contract draws does not move another's); the global
RNG is never drawn from. They are built on the CPU, then moved, so they are identical on every
device. The calls several contracts read are made once (rnn_contracts.probes.shared). Internally
every tensor is held seq-first ((seq, batch, features)); ``ctx.feed`` / ``ctx.split`` translate
to and from the module's layout.
"""
from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from rnn_contracts.conventions import layer_call, non_state_second
from rnn_contracts.diagnose import (
    HX_IN_ANOTHER_PARAMETER_HINT, REQUIRES_HX_HINT, TAKES_NO_HX_HINT, describe_input, first_line, missing_hx,
    takes_no_hx,
)
from rnn_contracts.errors import Violation, position, render_violation
from rnn_contracts.precision import probe_tolerance
from rnn_contracts.spec import RNNSpec
from rnn_contracts.trace import same_values

class ProbeFailure(Exception):
    """The module broke the probe's contract: ``violation`` is the evidence (a sentence becomes
    an "evidence" Violation); ``cause`` the module's own exception, when it raised one."""

    def __init__(self, evidence: str | Violation, *, cause: BaseException | None = None) -> None:
        self.violation = evidence if isinstance(evidence, Violation) else Violation("evidence", detail=evidence)
        self.cause = cause
        super().__init__(render_violation(self.violation))


class NotApplicable(Exception):
    """The contract does not apply to this spec; the message is the reason."""


#: The label the main call goes by in evidence.
MAIN_LABEL = "the main probe input"

#: The reason of every contract about states, for a module that returns only its output.
NO_STATES = "the module returns no states (RNNSpec.returns_states=False)"


#: The reason of every contract that hands the module an h_0, for a module that takes none.
NO_HX = "the module takes no h_0 (RNNSpec.takes_hx=False)"


def require_states(ctx: "Context") -> None:
    """NotApplicable for a contract about states when the module returns none."""
    if not ctx.spec.returns_states:
        raise NotApplicable(NO_STATES)


def require_hx(ctx: "Context") -> None:
    """NotApplicable for a contract that hands the module an h_0 (and reads its states) when the
    module returns no states or takes no h_0."""
    require_states(ctx)
    if not ctx.spec.takes_hx:
        raise NotApplicable(NO_HX)


class KnownLimitation(Exception):
    """The module failed in a way torch's own layers fail on this path (documented upstream);
    the message says which limitation and where it is documented."""


def values_before(t: torch.Tensor, saved: dict[int, tuple[torch.Tensor, int]] | None = None) -> tuple[torch.Tensor, int]:
    """(values, version counter) of ``t`` now, to tell later whether a call wrote into it:
    verify_rnn's no-trace snapshot of the values (``saved``: id -> (values, version) before any
    probe ran) while ``t`` still holds exactly those, else a clone. A module's parameters are not
    cloned a second time: on a large LSTM that was the size of every parameter again."""
    entry = (saved or {}).get(id(t))
    if entry is not None and t._version == entry[1] and torch.equal(t.detach(), entry[0]):
        return entry[0], t._version
    return t.detach().clone(), t._version


def first_written(tensors: dict[str, torch.Tensor], before: dict[str, tuple[torch.Tensor, int]]) -> str | None:
    """The name of the first tensor whose values or version counter changed since ``before``
    (:func:`values_before`), or None."""
    return next((name for name, t in tensors.items()
                 if t._version != before[name][1] or not same_values(t.detach(), before[name][0])), None)


def same_layout_copy(value: Any) -> Any:
    """A copy of a tensor with the same sizes and strides (a non-contiguous h_0 stays one: clone
    would make a strided view contiguous), or of each tensor of a tuple or list; anything else
    as it is."""
    if isinstance(value, torch.Tensor):
        copy = torch.empty_strided(value.size(), value.stride(), dtype=value.dtype, device=value.device)
        return copy.copy_(value)  # with grad enabled, a copy autograd follows back to ``value``
    if isinstance(value, (tuple, list)):
        return type(value)(same_layout_copy(v) for v in value)
    return value


@dataclass(frozen=True)
class Result:
    """One forward call, in the kit's canonical seq-first layout."""

    output: torch.Tensor  # (seq, batch, D*H_out), or (seq, D*H_out) unbatched
    h_n: torch.Tensor | None  # None: the module returns no states (spec.returns_states=False)
    c_n: torch.Tensor | None
    raw: Any  # what the module returned

    def columns(self, which: slice) -> "Result":
        """The sequences ``which`` of a batched result (output and states sliced on the batch)."""
        def cut(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[:, which]

        return Result(self.output[:, which], cut(self.h_n), cut(self.c_n), self.raw)


def pick_sizes(spec: RNNSpec) -> tuple[int, int]:
    """A (batch, seq) pair where no two dimensions of the call coincide.

    batch, seq, input_size, hidden_size, H_out and num_layers * D all differ, so a swapped axis
    can never hide behind equal sizes.
    """
    taken = {spec.input_size, spec.hidden_size, spec.h_out, spec.num_layers * spec.num_directions}
    free = [n for n in range(3, 64) if n not in taken]
    return free[0], free[1]


class Context:
    """The module under test, its spec, the device and dtype, and cached probe calls.

    ``module`` is the user's module (its parameters and state_dict); probes call it through
    ``caller``, the same module in torch's layer convention (rnn_contracts.conventions)."""

    def __init__(
        self, module: Any, spec: RNNSpec, device: torch.device, dtype: torch.dtype, seed: int = 0
    ) -> None:
        self.module = module
        self.caller = layer_call(module, spec)
        self.spec = spec
        self.device = device
        self.dtype = dtype
        self.seed = seed
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.batch, self.seq = pick_sizes(spec)
        tolerance = probe_tolerance(dtype)  # the run-vs-run rows of rnn_contracts.precision
        self.rtol, self.atol = tolerance.rtol, tolerance.atol
        self._cache: dict[str, Any] = {}
        #: Set by verify_rnn: runs batch_independence once (if it has not run) and says whether
        #: the module keeps the sequences of a batch apart (see :meth:`merged`).
        self.independence: Callable[[], bool] | None = None

    def merged(self) -> bool:
        """Whether probes may read sequences of a call shared along the batch as if each had run
        alone: batch_independence held (or only its "must change" half was not observable). Until
        then, and where it failed, each probe makes its own calls: a module that mixes the
        sequences of a batch must not be blamed for another contract's property."""
        return self.independence is not None and self.independence()

    # -- inputs ---------------------------------------------------------------------------------
    def randn(self, *shape: int, scale: float = 1.0, stream: str | None = None) -> torch.Tensor:
        """Normal values from the private generator, on the device and dtype under test.
        ``stream``: a generator of that name's own (seeded from the seed and the name), so that
        what a contract draws does not depend on what the contracts before it drew."""
        generator = self.generator if stream is None else self.cached(
            f"stream {stream}", lambda: torch.Generator(device="cpu").manual_seed(
                self.seed * 2**32 + zlib.crc32(stream.encode())))
        values = torch.randn(*shape, generator=generator, dtype=torch.float64)
        return (values * scale if scale != 1.0 else values).to(device=self.device, dtype=self.dtype)

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def x(self) -> torch.Tensor:
        """The main probe input, seq-first: (seq, batch, input_size)."""
        return self.cached("x", lambda: self.randn(self.seq, self.batch, self.spec.input_size))

    def state(self, which: str, batch: int | None = None, scale: float = 1.0,
              stream: str | None = None) -> torch.Tensor:
        """A random h_0 (``which="h"``) or c_0 (``which="c"``) for ``batch`` sequences."""
        return self.randn(*self.spec.state_shape(self.batch if batch is None else batch, which).sizes,
                          scale=scale, stream=stream)

    def zero_state(self, which: str, batch: int | None = None) -> torch.Tensor:
        """A zero h_0 / c_0 (draws nothing from the generator)."""
        shape = self.spec.state_shape(self.batch if batch is None else batch, which).sizes
        return torch.zeros(shape, device=self.device, dtype=self.dtype)

    def as_hx(self, h: torch.Tensor, c: torch.Tensor | None) -> Any:
        """The initial state as the module takes it: (h_0, c_0) for an LSTM, h_0 otherwise."""
        return (h, c) if self.spec.has_cell else h

    def hx_or_zeros(self, hx: Any) -> Any:
        """``hx``, or zero states for the main probe input's batch where it is None (what
        torch's layers assume for no h_0)."""
        if hx is not None:
            return hx
        return self.as_hx(self.zero_state("h"), self.zero_state("c") if self.spec.has_cell else None)

    def feed(self, xs: torch.Tensor) -> torch.Tensor:
        """A fresh copy of a seq-first (seq, batch, dim) tensor, in the module's layout.

        Always a copy: a module that writes into its input must not change the input of the
        probes that run after it (inputs_untouched reports the write itself)."""
        return xs.transpose(0, 1).contiguous() if self.spec.batch_first else xs.clone()

    # -- calls ----------------------------------------------------------------------------------
    def call(self, x: Any, hx: Any = None, *, label: str, own_hx: bool = False) -> Any:
        """Call the module; an exception it raises becomes evidence naming the input. ``hx`` is
        handed over as a copy of the same layout (:func:`same_layout_copy`), as :meth:`feed`
        copies x: a module may write into the h_0 it gets, and the states the probes pass are
        shared and cached (a prefix's h_n is the next call's h_0). ``own_hx``: the tensors
        themselves, for a caller that reads them afterwards (inputs_untouched's states call)."""
        if not own_hx:
            hx = same_layout_copy(hx)
        try:
            return self.caller(x) if hx is None else self.caller(x, hx)
        except Exception as exc:  # the module's own error is evidence, never a bare crash
            detail = f"the module raised {type(exc).__name__} on {label} ({describe_input(x, hx)}): {first_line(exc)}"
            hint = None
            if hx is None and not self.spec.requires_hx and missing_hx(self.module, exc):
                hint = REQUIRES_HX_HINT
            elif hx is not None and takes_no_hx(self.module, exc):
                hint = TAKES_NO_HX_HINT
            elif hx is not None and (name := non_state_second(self.module)):
                hint = HX_IN_ANOTHER_PARAMETER_HINT.format(name=name)
            raise ProbeFailure(Violation("evidence", detail=detail, hint=hint), cause=exc) from exc

    def split(self, raw: Any, *, batched: bool = True) -> Result:
        """(output, h_n[, c_n]) of a module result, output turned seq-first."""
        if not isinstance(raw, (tuple, list)) or len(raw) != 2:
            raise ProbeFailure(f"the module returned {type(raw).__name__}, not (output, h_n)")
        output, state = raw
        if not self.spec.returns_states:
            h_n = c_n = None
        elif self.spec.has_cell:
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise ProbeFailure("an LSTM must return (output, (h_n, c_n))")
            h_n, c_n = state
        else:
            h_n, c_n = state, None
        if batched and self.spec.batch_first and isinstance(output, torch.Tensor):
            output = output.transpose(0, 1)
        return Result(output, h_n, c_n, raw)

    def run(self, xs: torch.Tensor, hx: Any = None, *, label: str, key: str | None = None,
            check: Callable[[Any, Any, Any, str], None] | None = None, own_hx: bool = False) -> Result:
        """Run a seq-first input (cached under ``key`` when given) and split the result;
        ``check(fed, hx, raw, label)`` first reads the raw result (shapes checks it); ``own_hx``
        as for :meth:`call`."""
        def go() -> Result:
            fed = self.feed(xs)
            raw = self.call(fed, hx, label=label, own_hx=own_hx)
            if check is not None:
                check(fed, hx, raw, label)
            return self.split(raw)

        return self.cached(key, go) if key else go()

    @property
    def main(self) -> Result:
        """The main call: ctx.x with no hx."""
        return self.main_call()

    def main_call(self, check: Callable[[Any, Any, Any, str], None] | None = None) -> Result:
        """The main call, made once: by whichever probe asks first (shapes passes its check)."""
        return self.run(self.x, label=MAIN_LABEL, key="main", check=check)

    # -- evidence -------------------------------------------------------------------------------
    def assert_close(self, what: str, actual: torch.Tensor, expected: torch.Tensor, why: str) -> None:
        """Raise ProbeFailure with the worst position when actual and expected differ."""
        if tuple(actual.shape) != tuple(expected.shape):
            raise ProbeFailure(
                f"{why}: {what} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
            )
        # Two cheap comparisons decide the common cases. Bitwise-equal values (three of four
        # comparisons of a run on torch's layers: the same kernel on the same numbers) pass
        # whatever the tolerance; torch.equal takes 0.7 us, the conversions and allclose 20.
        # NaN is never equal to itself there: it goes on to allclose.
        if actual.dtype == expected.dtype and torch.equal(actual.detach(), expected.detach()):
            return
        a = actual.detach().to(torch.float64)
        e = expected.detach().to(torch.float64)
        # allclose's rule is the one below, and it says "close" only where the worst-position
        # search would find nothing (NaN against NaN and equal infinities pass both ways).
        if torch.allclose(a, e, rtol=self.rtol, atol=self.atol, equal_nan=True):
            return
        allowed = self.atol + self.rtol * e.abs()
        excess = (a - e).abs() - allowed
        # NaN on one side only, or an infinite expectation not met by the same infinity (there
        # the excess is inf - inf = NaN, which no comparison with 0 would call a violation)
        bad = (torch.isnan(a) != torch.isnan(e)) | (torch.isinf(e) & (a != e))
        if bool((excess > 0).any()) or bool(bad.any()):
            # NaN excess (NaN against NaN, an infinity against itself) is no violation: -inf, so
            # argmax, which takes NaN for the largest, points at a real one
            excess = torch.where(excess.isnan(), float("-inf"), excess)
            flat = int(torch.argmax(torch.where(bad, torch.full_like(excess, float("inf")), excess)))
            pos = position(flat, a.shape)
            raise ProbeFailure(Violation(
                "value", what, why, expected=float(e[pos]), actual=float(a[pos]), position=pos,
                tolerance=(self.rtol, self.atol), difference=float((a[pos] - e[pos]).abs())))

    def assert_differs(self, what: str, a: torch.Tensor, b: torch.Tensor, why: str) -> None:
        """Raise ProbeFailure when a and b are bitwise equal at every informative position.

        The minimum effect is any difference at all, not the equality tolerance. The two values
        are the same module's results on the same device and dtype for two inputs (a perturbed
        step, a replaced sequence, a given initial state): a module that ignores the change runs
        the same operations on the same numbers and returns bitwise-identical values, so "not
        changed" means exactly equal. A real change can be far below the tolerance that allows
        for rounding: torch's own nn.LSTM(1, 1, num_layers=2) in bfloat16 changed its output by
        0.0024 (median over a sweep of torch's layers) against bfloat16's atol 1e-2, and a change
        that passes through a near-saturated gate can be a single ulp. Reading those as "did not
        change" was a false positive on torch's own layers. NaN equals NaN here (no evidence of a
        change either way).

        A position that is exactly 0 in both is no evidence either way: it is relu's dead zone (a
        correct nonlinearity="relu" layer whose units are inactive there outputs exact zeros
        whatever the input; torch's own nn.RNN(4, 2, nonlinearity="relu") did so on the probe
        inputs for some seeds). Such positions are left out; when no other position is left the
        check has no evidence and passes. tanh / sigmoid outputs are never exactly 0 by chance."""
        a, b = a.detach(), b.detach()
        if not self.shows_change(a, b) and bool(((a != 0) | (b != 0)).any()):  # the common case decided first
            raise ProbeFailure(f"{why}: {what} did not change at any position")

    @staticmethod
    def shows_change(a: torch.Tensor, b: torch.Tensor) -> bool:
        """Evidence of a change: some position that is not 0 in both differs (NaN equals NaN),
        as in :meth:`assert_differs`. Where every position is 0 in both there is no evidence, so
        a further try that shows nothing but zeros does not count as a change."""
        a, b = a.detach(), b.detach()
        differs = (a != b) & ~(torch.isnan(a) & torch.isnan(b))
        return bool(differs.any())
