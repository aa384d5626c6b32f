"""Faulty modules, part 4: negative controls for the sub-checks inside a probe.

Each entry is a realistic mistake that only ONE assertion inside its contract's probe catches;
``evidence`` is a fragment of that assertion's message (tests/test_subchecks.py checks it), so
deleting the assertion fails the test even where another assertion of the same probe, or another
contract, still rejects the module. The comment above each entry names the mutation it kills;
"alone" means verify_rnn accepts the module outright once that assertion is deleted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .loops import CellLoop, State, TorchLoop, ZooEntry


@dataclass(frozen=True)
class SubcheckEntry(ZooEntry):
    """A ZooEntry whose rejection must carry ``evidence`` in the ``expect`` contract's detail."""

    evidence: str = ""


def _unbatched(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.dim() == 2


# -- causality ----------------------------------------------------------------------------------
class ForwardLookahead(CellLoop):
    """Bidirectional; the forward direction reads x[t] + 0.5 * x[t + 1] (a one-frame lookahead)."""

    def run_direction(self, xs: torch.Tensor, state: State, mask: torch.Tensor,
                      layer: int, direction: int) -> tuple[torch.Tensor, State]:
        if direction == 0 and layer == 0:  # padding after a sequence's end is zero, like x[T]
            xs = xs + 0.5 * torch.cat([xs[1:], torch.zeros_like(xs[:1])])
        return super().run_direction(xs, state, mask, layer, direction)


class RelativePosition(CellLoop):
    """Adds the relative position t / length to every input feature."""

    def prepare(self, xs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(xs.shape[0], dtype=xs.dtype).unsqueeze(1)
        fraction = steps / lengths.to(xs.dtype).unsqueeze(0)
        return xs + fraction.unsqueeze(-1).to(xs.device)


# -- batch_independence -------------------------------------------------------------------------
class StateUnitRMS(CellLoop):
    """Rescales the returned h_n (``which="h"``) or c_n (``which="c"``) to unit RMS over the whole
    tensor, batch included, to keep the state bounded between TBPTT chunks."""

    def __init__(self, *args: Any, which: str = "h", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.which = which

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, state = super().forward(x, hx)
        if self.mode != "LSTM":
            return out, state / state.pow(2).mean().sqrt()
        h, c = state
        if self.which == "h":
            return out, (h / h.pow(2).mean().sqrt(), c)
        return out, (h, c / c.pow(2).mean().sqrt())


# -- unbatched ----------------------------------------------------------------------------------
class UnbatchedDirectionsSwapped(CellLoop):
    """Bidirectional; the unbatched branch concatenates the output as (backward, forward)."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, state = super().forward(x, hx)
        if _unbatched(x):
            out = torch.cat([out[:, self.hidden_size:], out[:, : self.hidden_size]], -1)
        return out, state


class UnbatchedStateCopyPaste(CellLoop):
    """LSTM whose unbatched branch squeezes the state pair with a copy-pasted line:
    ``(c.squeeze(1), c.squeeze(1))`` (``copied="c"``) or ``(h.squeeze(1), h.squeeze(1))``
    (``copied="h"``)."""

    def __init__(self, *args: Any, copied: str = "c", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.copied = copied

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, (h, c) = super().forward(x, hx)
        if _unbatched(x):
            h, c = (c, c) if self.copied == "c" else (h, h)
        return out, (h, c)


# -- state_carry --------------------------------------------------------------------------------
class ReturnsGivenState(CellLoop):
    """The `hx given` branch returns the state it was handed instead of the final one: h_0 as h_n
    (RNN / GRU), c_0 as c_n (LSTM). The `hx is None` branch is right."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, state = super().forward(x, hx)
        if hx is None:
            return out, state
        return out, ((state[0], hx[1]) if self.mode == "LSTM" else hx)


# -- reference ----------------------------------------------------------------------------------
class TopStateForEveryLayer(TorchLoop):
    """Returns output[-1] repeated for every layer as h_n: right for the top layer only."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, h = super().forward(x, hx)
        if isinstance(out, torch.Tensor):
            last = out[-1]  # seq-first (batch_first=False), or unbatched (seq, H)
            h = last.unsqueeze(0).repeat(self.num_layers, *([1] * last.dim()))
        return out, h


class H0DirectionMajor(TorchLoop):
    """Reads a given h_0 direction-major (h_0[direction * num_layers + layer]); torch's layout is
    h_0.view(num_layers, D, batch, H). h_n is stacked layer-major, as torch does."""

    def initial(self, hx: Any, batch: int, like: torch.Tensor) -> State:
        if hx is None:
            return super().initial(hx, batch, like)
        rest = hx.shape[1:]
        return (hx.reshape(self.num_directions, self.num_layers, *rest).transpose(0, 1).reshape(hx.shape),)


# -- inputs_untouched ---------------------------------------------------------------------------
class StandardisesInPlace(CellLoop):
    """x.sub_(mean).div_(std) with the identity statistics of a fresh model (mean 0, std 1)."""

    input_mean, input_std = 0.0, 1.0

    def prepare(self, xs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return xs.sub_(self.input_mean).div_(self.input_std)


class MaxNormInForward(TorchLoop):
    """Applies a max-norm constraint to weight_ih_l0 in place at every forward (like
    nn.Embedding(max_norm=...)): weight_ih_l0.renorm_(2, 0, 0.3) under no_grad."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        with torch.no_grad():
            self.weight_ih_l0.renorm_(2, 0, 0.3)
        return super().forward(x, hx)


class CountsSteps(CellLoop):
    """Increments a registered step-counter buffer in every forward, eval mode included."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        self.steps += 1
        return super().forward(x, hx)


# -- added by the mutation run (mutation/README.md): one module per sub-check a mutant deleted ---
def _batched(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.dim() == 3


class OutputLagsWhenResumed(CellLoop):
    """When hx is given, the output is [h_0's top layer, h_1, ..., h_{T-1}]: the sequence of
    states entering each step instead of leaving it (an off-by-one in a streaming wrapper). h_n
    is right; without hx all is right."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, state = super().forward(x, hx)
        if hx is not None and _batched(out):
            top = (hx[0] if self.mode == "LSTM" else hx)[-1]
            out = torch.cat([top.unsqueeze(0), out[:-1]])
        return out, state


class OutputCentredOverBatch(CellLoop):
    """Subtracts the batch mean from the output (batch-statistics normalisation left on in eval
    mode); h_n is returned untouched."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, state = super().forward(x, hx)
        if _batched(out):
            out = out - out.mean(dim=1, keepdim=True)
        return out, state


class ReservedSlotZero(CellLoop):
    """Batch slot 0 is reserved (a prompt-cache slot): its output is overwritten with a constant
    0.25 whatever the sequence. Every other sequence and every state is right."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, state = super().forward(x, hx)
        if _batched(out):
            out = out.clone()
            out[:, 0] = 0.25
        return out, state


class TruncatedContext(CellLoop):
    """Reads only the first ``max_len`` steps: later inputs are zeroed (a training-time max_len
    left on at inference). The recurrence still runs, so later outputs are not zero."""

    max_len = 2

    def prepare(self, xs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        xs = xs.clone()
        xs[self.max_len:] = 0
        return xs


class ReturnsTanhC(TorchLoop):
    """LSTM that returns tanh(c_n) as c_n (h_n / o, the value h is computed from): output and
    h_n are right."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, (h, c) = super().forward(x, hx)
        return out, (h, torch.tanh(c))


class UlpNoise(CellLoop):
    """Adds one ulp of noise (of the tensor's own dtype) to ``which`` (output, h_n or c_n) at every
    call: the run-to-run jitter of an atomics-based reduction, left on in eval mode."""

    def __init__(self, *args: Any, which: str = "output", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.which = which

    @staticmethod
    def _jitter(t: Any) -> Any:
        if not isinstance(t, torch.Tensor):
            return t
        eps = torch.finfo(t.dtype).eps
        return t * (1 + eps * torch.randn(t.shape).sign().to(device=t.device, dtype=t.dtype))

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, state = super().forward(x, hx)
        if self.which == "output":
            return self._jitter(out), state
        if self.mode != "LSTM":
            return out, self._jitter(state)
        h, c = state
        return out, ((self._jitter(h), c) if self.which == "h_n" else (h, self._jitter(c)))


class LearnedInitialState(CellLoop):
    """Without hx, starts from a learned h_0 parameter (initialised small and random) instead of
    zeros; an explicit h_0 is used as given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h0 = torch.nn.Parameter(0.5 * torch.randn(self.num_layers * self.num_directions, 1, self.hidden_size))

    def initial(self, hx: Any, batch: int, like: torch.Tensor) -> State:
        if hx is not None:
            return super().initial(hx, batch, like)
        return (self.h0.expand(-1, batch, -1).to(like),)


class ReadsStateAsContiguous(CellLoop):
    """Reads h_0's memory as if it were contiguous (torch.as_strided with contiguous strides, as
    a custom kernel handed data_ptr() would): a sliced or transposed h_0 is read scrambled."""

    def initial(self, hx: Any, batch: int, like: torch.Tensor) -> State:
        if hx is None:
            return super().initial(hx, batch, like)
        size = hx.shape
        strides = tuple(int(torch.tensor(size[i + 1:]).prod()) for i in range(len(size)))
        return (torch.as_strided(hx, size, strides, hx.storage_offset()),)



class PaddedOutputForPacked(CellLoop):
    """Given a PackedSequence, returns the padded output tensor (pad_packed_sequence's result)
    instead of a PackedSequence; h_n is right."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, state = super().forward(x, hx)
        if isinstance(out, PackedSequence):
            out = pad_packed_sequence(out)[0]
        return out, state



class DropsPackedIndices(CellLoop):
    """Builds its output PackedSequence as PackedSequence(data, batch_sizes), dropping the input's
    sorted_indices / unsorted_indices (a hand-built PackedSequence)."""

    def pack_output(self, out: torch.Tensor, x: PackedSequence, lengths: torch.Tensor) -> Any:
        packed = super().pack_output(out, x, lengths)
        return PackedSequence(packed.data, packed.batch_sizes)



class RepacksFullLength(CellLoop):
    """Packs its output with the full length for every sequence (the padding counted as steps):
    batch_sizes differ from the input's; every valid step and h_n are right."""

    def pack_output(self, out: torch.Tensor, x: PackedSequence, lengths: torch.Tensor) -> Any:
        order = x.sorted_indices if x.sorted_indices is not None else torch.arange(out.shape[1])
        full = pack_padded_sequence(out.index_select(1, order.to(out.device)),
                                    torch.full_like(lengths, out.shape[0]))
        return PackedSequence(full.data, full.batch_sizes, x.sorted_indices, x.unsorted_indices)



class PackedOutputLags(CellLoop):
    """For a PackedSequence, packs the states entering each step ([0, h_1, ..., h_{T-1}]) as the
    output: an off-by-one in the packed branch only; h_n is right."""

    def pack_output(self, out: torch.Tensor, x: PackedSequence, lengths: torch.Tensor) -> Any:
        return super().pack_output(torch.cat([torch.zeros_like(out[:1]), out[:-1]]), x, lengths)


class PackedCellFromPaddedRun(CellLoop):
    """LSTM whose packed branch takes c_n from a run over the padded tensor (the cell state at
    the padded end, not at each sequence's last valid step); output and h_n are right."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, (h, c) = super().forward(x, hx)
        if isinstance(x, PackedSequence):
            padded, _ = pad_packed_sequence(x)
            _, (_, c) = super().forward(padded, hx)
        return out, (h, c)



class StateBatchMajor(CellLoop):
    """Returns h_n batch-major, (batch, num_layers * D, H), for batched input (the layout of the
    output under batch_first, wrongly applied to the state)."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, state = super().forward(x, hx)
        return out, (state.transpose(0, 1) if _batched(out) else state)


class UnbatchedDropsState(CellLoop):
    """The unbatched branch returns (output, None): its author thought a single sequence needs
    no state."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, state = super().forward(x, hx)
        return out, (None if _unbatched(x) else state)


class ExtraTanhOnOutput(TorchLoop):
    """Applies tanh once more to the returned output (a second activation); h_n is right."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        out, state = super().forward(x, hx)
        return (torch.tanh(out) if isinstance(out, torch.Tensor) else out), state


def _entry(id: str, make: Any, expect: str, evidence: str, about: str) -> SubcheckEntry:
    return SubcheckEntry(id, make, about, expect=expect, evidence=evidence)


ENTRIES: tuple[SubcheckEntry, ...] = (
    # kills: causality without "earlier outputs of the forward direction" (alone: bidirectional,
    # so the prefix run is skipped and nothing else looks at the forward half's past)
    _entry("bidir_forward_lookahead", lambda: ForwardLookahead("GRU", 4, 6, bidirectional=True),
           "causality", "earlier outputs of the forward direction",
           "a one-frame lookahead (x[t] + 0.5 x[t+1], Deep Speech 2's row-convolution trick for "
           "streaming models) fed to the forward direction inside a bidirectional layer"),
    # kills: causality without the prefix run (state_carry also fails: its first chunk IS the
    # prefix run, so at the verify_rnn level the prefix check only matters for contracts=[...])
    _entry("relative_position_feature", lambda: RelativePosition("RNN", 4, 6), "causality",
           "a run on the first",
           "adds the relative position t / length as an input feature: every output depends on how "
           "many steps follow, though perturbing one step changes nothing earlier"),
    # kills: batch_independence without h_n[:, 1:] (final_state and packed also fail: the top
    # layer's h_n is pinned to output[-1], and packed compares with sequences run alone)
    _entry("h_n_rms_over_batch", lambda: StateUnitRMS("GRU", 4, 6, bidirectional=True),
           "batch_independence", "h_n[:, 1:6]",
           "rescales the returned h_n to unit RMS over the whole tensor, batch included (state "
           "normalisation between TBPTT chunks): each sequence's h_n depends on the others"),
    # kills: batch_independence without c_n[:, 1:] (packed also fails: it compares with the
    # sequences run alone, a batch of one; bidirectional, so no state_carry)
    _entry("c_n_rms_over_batch", lambda: StateUnitRMS("LSTM", 4, 6, bidirectional=True, which="c"),
           "batch_independence", "c_n[:, 1:6]",
           "rescales the returned c_n to unit RMS over the whole tensor, batch included: output "
           "and h_n are right, each sequence's c_n depends on the others"),
    # kills: unbatched without the output equality (alone)
    _entry("unbatched_directions_swapped",
           lambda: UnbatchedDirectionsSwapped("GRU", 4, 6, bidirectional=True), "unbatched",
           "unbatched output",
           "a separate unbatched branch concatenates the directions as (backward, forward); "
           "torch's output is (forward, backward)"),
    # kills: unbatched without the h_n equality (alone)
    _entry("unbatched_h_n_is_c_n", lambda: UnbatchedStateCopyPaste("LSTM", 4, 6, copied="c"),
           "unbatched", "unbatched h_n",
           "the unbatched branch squeezes the LSTM state with a copy-pasted (c, c): h_n is c_n"),
    # kills: unbatched without the c_n equality (alone)
    _entry("unbatched_c_n_is_h_n", lambda: UnbatchedStateCopyPaste("LSTM", 4, 6, copied="h"),
           "unbatched", "unbatched c_n",
           "the unbatched branch squeezes the LSTM state with a copy-pasted (h, h): c_n is h_n"),
    # kills: state_carry without the h_n equality (alone: CellLoop, so no reference)
    _entry("returns_given_h0", lambda: ReturnsGivenState("GRU", 4, 6), "state_carry", "one run: h_n[",
           "the `hx given` branch returns the h_0 it was handed as h_n (a stale name after a "
           "refactor); without h_0 all is right, so a stream fed in chunks reports a stale state"),
    # kills: state_carry without the c_n equality (alone: CellLoop, so no reference)
    _entry("returns_given_c0", lambda: ReturnsGivenState("LSTM", 4, 6), "state_carry", "one run: c_n[",
           "the `hx given` branch of an LSTM returns the c_0 it was handed as c_n (stale name)"),
    # kills: reference without the h_n comparison (state_carry and packed also fail: the lower
    # layer's h_n is carried into the next chunk, and packed compares h_n with runs alone)
    _entry("top_state_for_every_layer", lambda: TopStateForEveryLayer("GRU", 4, 6, num_layers=2),
           "reference", "computes with its weights: h_n[",
           "returns out[-1].repeat(num_layers, 1, 1) as h_n: right for the top layer only"),
    # kills: reference without the run with a random h_0 (alone: bidirectional, 2 layers)
    _entry("h0_direction_major", lambda: H0DirectionMajor("GRU", 4, 6, num_layers=2, bidirectional=True),
           "reference", "with a random h_0",
           "reads a given h_0 direction-major (h_0[d * num_layers + layer]); torch's layout is "
           "h_0.view(num_layers, D, batch, H)"),
    # kills: inputs_untouched without the version counter (alone: the values never change). The
    # evidence cannot name the version: hygiene.py words a changed value and a bumped version alike
    _entry("standardises_input_in_place", lambda: StandardisesInPlace("RNN", 4, 6),
           "inputs_untouched", "forward modified x in place",
           "x.sub_(mean).div_(std) with a fresh model's identity statistics: the values stay, but "
           "the caller's tensor is written (autograd's version check fails on a later backward)"),
    # kills: inputs_untouched without parameters (alone); also needs the version counter, since
    # earlier probes already renormed the weight, so the write that inputs_untouched sees is
    # value-preserving
    _entry("max_norm_in_forward", lambda: MaxNormInForward("GRU", 4, 6), "inputs_untouched",
           "forward modified parameter weight_ih_l0 in place",
           "a max-norm constraint applied in place in forward (weight.renorm_, as "
           "nn.Embedding(max_norm=...) does): every call rewrites a parameter"),
    # kills: inputs_untouched without buffers (alone; test_verify's CountsCalls kills it too)
    _entry("step_counter_buffer", lambda: CountsSteps("LSTM", 4, 6), "inputs_untouched",
           "forward modified buffer steps in place",
           "increments a registered step-counter buffer in every forward, eval mode included"),
    # -- added with mutation/ (each kills the mutant named; see mutation/README.md) -----------
    # kills: state_carry without the output equality (alone: h_n is right, CellLoop so no
    # reference; initial_state also fails, on its zero-h_0 comparison)
    _entry("output_lags_when_resumed", lambda: OutputLagsWhenResumed("GRU", 4, 6), "state_carry",
           "one run: output[",
           "when hx is given the output is the states entering each step, [h_0, h_1, ..., h_{T-1}] "
           "(an off-by-one in a streaming wrapper); h_n is right"),
    # kills: batch_independence without the output[:, 1:] equality (final_state also fails: the
    # centred output no longer ends at h_n)
    _entry("output_centred_over_batch", lambda: OutputCentredOverBatch("GRU", 4, 6),
           "batch_independence", "output[:, 1:6]",
           "subtracts the batch mean from the output (batch statistics left on in eval mode)"),
    # kills: batch_independence without "replacing sequence 0 must change sequence 0's output"
    _entry("reserved_slot_zero", lambda: ReservedSlotZero("GRU", 4, 6), "batch_independence",
           "must change sequence 0's output",
           "batch slot 0 is reserved as a cache slot and its output overwritten with a constant"),
    # kills: causality without "perturbing step t must change the output from step t on"
    _entry("truncated_context", lambda: TruncatedContext("GRU", 4, 6), "causality",
           "must change the output from step",
           "reads only the first 2 steps (a training-time max_len left on): later inputs are "
           "ignored, so perturbing step 2 changes nothing"),
    # kills: reference without the c_n comparison (state_carry also fails: c_n is carried)
    _entry("returns_tanh_c", lambda: ReturnsTanhC("LSTM", 4, 6), "reference",
           "computes with its weights: c_n[",
           "returns tanh(c_n) as c_n (confusing the cell state with what h is computed from)"),
    # kills: determinism by allclose (alone: 1-ulp noise is inside every tolerance)
    _entry("ulp_noise_output", lambda: UlpNoise("GRU", 4, 6), "determinism", "disagree: output[",
           "one float32 ulp of run-to-run noise on the output (an atomics-based reduction)"),
    # kills: determinism comparing the output only (alone)
    _entry("ulp_noise_h_n", lambda: UlpNoise("GRU", 4, 6, which="h_n"), "determinism", "disagree: h_n[",
           "one float32 ulp of run-to-run noise on h_n only"),
    # kills: determinism comparing output and h_n only (alone)
    _entry("ulp_noise_c_n", lambda: UlpNoise("LSTM", 4, 6, which="c_n"), "determinism", "disagree: c_n[",
           "one float32 ulp of run-to-run noise on c_n only"),
    # kills: initial_state without "an explicit zero h_0 must equal no h_0" (alone: the issue's
    # GRU with a learned default h_0 passed all 12 contracts)
    _entry("learned_default_h0", lambda: LearnedInitialState("GRU", 4, 6), "initial_state",
           "an explicit zero h_0 must equal no h_0",
           "without hx, starts from a learned h_0 parameter instead of zeros (torch: defaults to zeros)"),
    # kills: initial_state without the non-contiguous h_0 comparison (alone)
    _entry("reads_state_as_contiguous", lambda: ReadsStateAsContiguous("GRU", 4, 6), "initial_state",
           "a non-contiguous h_0 must give the result of its contiguous copy",
           "reads h_0's memory as if contiguous (a kernel handed data_ptr()): a transposed h_0 is scrambled"),
    # kills: packed without "a PackedSequence in must give a PackedSequence out" (the next
    # line then crashed on .batch_sizes: still a packed failure, but no evidence)
    _entry("padded_output_for_packed", lambda: PaddedOutputForPacked("GRU", 4, 6), "packed",
           "a PackedSequence in must give a PackedSequence out, got Tensor",
           "returns the padded output tensor for a PackedSequence input (pad_packed_sequence "
           "applied inside forward)"),
    # kills: packed without the batch_sizes / index comparison (the per-sequence comparison
    # then fails on the order instead, with no word about the indices)
    _entry("drops_packed_indices", lambda: DropsPackedIndices("GRU", 4, 6), "packed",
           "the output PackedSequence's sorted_indices differ from the input's",
           "builds the output as PackedSequence(data, batch_sizes), dropping sorted_indices and "
           "unsorted_indices: pad_packed_sequence then returns the sequences in sorted order"),
    # kills: packed comparing the batch_sizes / indices by presence only (alone: every valid
    # step and h_n are right)
    _entry("repacks_full_length", lambda: RepacksFullLength("GRU", 4, 6), "packed",
           "the output PackedSequence's batch_sizes differ from the input's",
           "packs its output with the full length for every sequence: padding counted as steps"),
    # kills: packed without the output comparison (alone: batch_sizes, indices and h_n right)
    _entry("packed_output_lags", lambda: PackedOutputLags("GRU", 4, 6), "packed",
           "packed must equal running them alone from the same h_0: output[:",
           "the packed branch outputs the states entering each step (an off-by-one there only)"),
    # kills: packed without the c_n comparison (alone)
    _entry("packed_c_n_from_padded_run", lambda: PackedCellFromPaddedRun("LSTM", 4, 6), "packed",
           "packed must equal running them alone from the same h_0: c_n[:",
           "an LSTM whose packed branch takes c_n from a run over the padded tensor"),
    # kills: unbatched's shape check with its `or` made `and` (a None h_n then crashed on .shape:
    # no evidence). A wrong-shaped tensor cannot pin it: assert_close words its shape alike
    _entry("unbatched_drops_state", lambda: UnbatchedDropsState("GRU", 4, 6), "unbatched",
           "unbatched h_n has shape NoneType, expected (1, 6)",
           "the unbatched branch returns (output, None)"),
    # kills: reference without the output comparison (final_state also fails)
    _entry("extra_tanh_on_output", lambda: ExtraTanhOnOutput("GRU", 4, 6), "reference",
           "computes with its weights: output[",
           "applies tanh once more to the returned output; h_n is right"),
)
