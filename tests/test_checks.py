"""check_forward: torch layers pass untouched; each known mistake gets its whole, pinned message.

Message cases are one table of (id, module factory, spec, input factory, expected text) run by
one test body under both checkers; the text is the specification of what a person reads, so it
is compared whole (like GPflow's check_shapes tests), not matched by fragments.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from rnn_contracts import ContractViolation, RNNSpec, check_forward
from zoo import Fake
from rnn_contracts.hello import hello_one_hot





class Recorder(nn.Module):
    """Wraps a layer, counts calls and keeps the last result."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.calls, self.last = inner, 0, None

    def forward(self, x, hx=None):
        self.calls += 1
        self.last = self.inner(x, hx)
        return self.last


def zeros(*shape, dtype=torch.float32):
    return torch.zeros(shape, dtype=dtype)


def packed(lengths=(5, 3, 2), features=4):
    return pack_padded_sequence(zeros(max(lengths), len(lengths), features), torch.tensor(lengths))


@dataclass(frozen=True)
class MessageCase:
    id: str
    module: Callable[[], nn.Module]
    spec: RNNSpec | None  # None: read off the module
    call: Callable[[], tuple]  # () -> (x, hx)
    message: str  # "{checker}" stands for the checker's name

    def param(self):
        return pytest.param(self, id=self.id)


RNN42 = RNNSpec("RNN", 4, 2)
GRU47 = RNNSpec("GRU", 4, 7)
LSTM47 = RNNSpec("LSTM", 4, 7)
LSTM_PROJ = RNNSpec("LSTM", 4, 7, proj_size=6)
BOUND = "  bound: batch=3 seq=5 dim=4 hidden=7 layers=1 directions=1"  # GRU/RNN(4, 7) on (5, 3, 4)
BOUND_PROJ = "  bound: batch=3 seq=5 dim=4 hidden=6 cell=7 layers=1 directions=1"
STATES_HINT = "whatever batch_first is (pytorch/pytorch#4145)"

MESSAGE_CASES = [
    MessageCase(
        "seed-batch-first", lambda: nn.RNN(4, 2), RNNSpec.from_module(nn.RNN(4, 2)).replace(batch_first=True),
        lambda: (hello_one_hot(), None),
        "RNN(4, 2, batch_first=True) broke its contract in its result on input (3, 5, 4) float32 on cpu [checker: {checker}]\n\n"
        "h_n: expected (layers*directions=1, batch=3, hidden=2), got (1, 5, 2)\n"
        "  bound: batch=3 seq=5 dim=4 hidden=2 layers=1 directions=1\n"
        "  hint: h_n's batch is 5, the input's seq length: the module read the input as (seq, batch, dim), "
        "5 sequences of length 3. Check batch_first (spec: True, module: False)",
    ),
    MessageCase(
        "h0-batch-first", lambda: nn.GRU(4, 7, batch_first=True), None, lambda: (zeros(3, 5, 4), zeros(3, 1, 7)),
        "GRU(4, 7, batch_first=True) broke its contract before the call on input (3, 5, 4) float32 on cpu [checker: {checker}]\n\n"
        "h_0: expected (layers*directions=1, batch=3, hidden=7), got (3, 1, 7)\n"
        f"{BOUND}\n"
        "  hint: h_0 is laid out batch-first; torch keeps h and c states as (num_layers * D, batch, H_out) "
        f"{STATES_HINT}",
    ),
    MessageCase(
        "lstm-one-tensor-hx", lambda: nn.LSTM(4, 7), None, lambda: (zeros(5, 3, 4), zeros(1, 3, 7)),
        "LSTM(4, 7) broke its contract before the call on input (5, 3, 4) float32 on cpu [checker: {checker}]\n\n"
        "hx: LSTM takes hx as a tuple (h_0, c_0); one tensor (1, 3, 7) was passed\n"
        "  hint: pass (h_0, c_0), with c_0 of shape (layers*directions, batch, cell=7)",
    ),
    MessageCase(
        "c0-with-proj-size", lambda: nn.LSTM(4, 7, proj_size=6), None,
        lambda: (zeros(5, 3, 4), (zeros(1, 3, 6), zeros(1, 3, 6))),
        "LSTM(4, 7, proj_size=6) broke its contract before the call on input (5, 3, 4) float32 on cpu [checker: {checker}]\n\n"
        "c_0: expected (layers*directions=1, batch=3, cell=7), got (1, 3, 6)\n"
        f"{BOUND_PROJ}\n"
        "  hint: c_0 / c_n keep hidden_size=7 even with proj_size=6",
    ),
    MessageCase(
        "wrong-input-features", lambda: nn.GRU(4, 7), None, lambda: (zeros(5, 3, 3), None),
        "GRU(4, 7) broke its contract before the call on input (5, 3, 3) float32 on cpu [checker: {checker}]\n\n"
        "input: expected (seq=5, batch=3, dim=4), got (5, 3, 3)\n"
        f"{BOUND}\n"
        "  hint: the last axis of the input holds its features: dim = input_size = 4",
    ),
    MessageCase(
        "output-batch-seq-swapped", lambda: Fake(lambda x: (zeros(3, 5, 7), zeros(1, 3, 7))), GRU47,
        lambda: (zeros(5, 3, 4), None),
        "GRU(4, 7) broke its contract in its result on input (5, 3, 4) float32 on cpu [checker: {checker}]\n\n"
        "output: expected (seq=5, batch=3, directions*hidden=7), got (3, 5, 7)\n"
        f"{BOUND}\n"
        "  hint: batch and seq are swapped: the layer laid out output as (batch, seq, ...). "
        "Check batch_first (spec: False, module: unknown)",
    ),
    MessageCase(
        "bidirectional-H-not-2H", lambda: Fake(lambda x: (zeros(5, 3, 7), zeros(2, 3, 7))),
        GRU47.replace(bidirectional=True), lambda: (zeros(5, 3, 4), None),
        "GRU(4, 7, bidirectional=True) broke its contract in its result on input (5, 3, 4) float32 on cpu [checker: {checker}]\n\n"
        "output: expected (seq=5, batch=3, directions*hidden=14), got (5, 3, 7)\n"
        "  bound: batch=3 seq=5 dim=4 hidden=7 layers=1 directions=2\n"
        "  hint: a bidirectional layer concatenates both directions: output has D * H_out = 14 features, "
        "forward in [..., :7], backward in [..., 7:]",
    ),
    MessageCase(
        "lstm-single-state", lambda: Fake(lambda x: (zeros(5, 3, 7), zeros(1, 3, 7))), LSTM47,
        lambda: (zeros(5, 3, 4), None),
        "LSTM(4, 7) broke its contract in its result on input (5, 3, 4) float32 on cpu [checker: {checker}]\n\n"
        "h_n: LSTM returns (output, (h_n, c_n)), but the module returned a single state tensor (1, 3, 7)",
    ),
    MessageCase(
        "float64-out-of-float32", lambda: Fake(lambda x: (zeros(5, 3, 7, dtype=torch.float64), zeros(1, 3, 7))),
        GRU47, lambda: (zeros(5, 3, 4), None),
        "GRU(4, 7) broke its contract in its result on input (5, 3, 4) float32 on cpu [checker: {checker}]\n\n"
        "output: dtype torch.float64, expected torch.float32 (the input's dtype)",
    ),
    MessageCase(
        "output-on-another-device",
        lambda: Fake(lambda x: (torch.zeros(5, 3, 7, device="meta"), zeros(1, 3, 7))),
        GRU47, lambda: (zeros(5, 3, 4), None),
        "GRU(4, 7) broke its contract in its result on input (5, 3, 4) float32 on cpu [checker: {checker}]\n\n"
        "output: device meta, expected cpu (the input's device)",
    ),
    MessageCase(
        "result-not-a-pair", lambda: Fake(lambda x: zeros(5, 3, 7)), GRU47, lambda: (zeros(5, 3, 4), None),
        "GRU(4, 7) broke its contract in its result on input (5, 3, 4) float32 on cpu [checker: {checker}]\n\n"
        "result: torch's recurrent layers return (output, h_n), got a Tensor (5, 3, 7)\n"
        "  hint: a module that returns only its output: declare RNNSpec(returns_states=False) "
        "(command line: --spec returns_states=false)",
    ),
    MessageCase(
        "result-a-triple", lambda: Fake(lambda x: (zeros(5, 3, 7), zeros(1, 3, 7), None)), GRU47,
        lambda: (zeros(5, 3, 4), None),
        "GRU(4, 7) broke its contract in its result on input (5, 3, 4) float32 on cpu [checker: {checker}]\n\n"
        "result: torch's recurrent layers return (output, h_n), got a tuple of length 3",
    ),
    MessageCase(
        "lstm-states-flat", lambda: Fake(lambda x: (zeros(5, 3, 7), zeros(1, 3, 7), zeros(1, 3, 7))), LSTM47,
        lambda: (zeros(5, 3, 4), None),
        "LSTM(4, 7) broke its contract in its result on input (5, 3, 4) float32 on cpu [checker: {checker}]\n\n"
        "result: torch's LSTM returns (output, (h_n, c_n)), got a tuple of length 3\n"
        "  hint: torch's LSTM returns its final states as one tuple: return output, (h_n, c_n)",
    ),
    MessageCase(
        "lstm-output-only", lambda: Fake(lambda x: zeros(5, 3, 7)), LSTM47, lambda: (zeros(5, 3, 4), None),
        "LSTM(4, 7) broke its contract in its result on input (5, 3, 4) float32 on cpu [checker: {checker}]\n\n"
        "result: torch's LSTM returns (output, (h_n, c_n)), got a Tensor (5, 3, 7)\n"
        "  hint: a module that returns only its output: declare RNNSpec(returns_states=False) "
        "(command line: --spec returns_states=false)",
    ),
    MessageCase(
        "lstm-packed-states-flat", lambda: Fake(lambda x: (x, zeros(1, 3, 7), zeros(1, 3, 7))),
        LSTM47.replace(packed=True), lambda: (packed(), None),
        "LSTM(4, 7) broke its contract in its result on PackedSequence data (10, 4), batch_sizes [3, 3, 2, 1, 1] "
        "[checker: {checker}]\n\n"
        "result: torch's LSTM returns (output, (h_n, c_n)), got a tuple of length 3\n"
        "  hint: torch's LSTM returns its final states as one tuple: return output, (h_n, c_n)",
    ),
    MessageCase(
        "lstm-result-a-triple-with-none", lambda: Fake(lambda x: (zeros(5, 3, 7), zeros(1, 3, 7), None)), LSTM47,
        lambda: (zeros(5, 3, 4), None),
        "LSTM(4, 7) broke its contract in its result on input (5, 3, 4) float32 on cpu [checker: {checker}]\n\n"
        "result: torch's LSTM returns (output, (h_n, c_n)), got a tuple of length 3",
    ),
    MessageCase(
        "hx-to-a-module-that-takes-none", lambda: Fake(lambda x: (zeros(5, 3, 7), zeros(1, 3, 7))),
        RNNSpec("GRU", 4, 7, takes_hx=False), lambda: (zeros(5, 3, 4), zeros(1, 3, 7)),
        "GRU(4, 7) broke its contract before the call on input (5, 3, 4) float32 on cpu [checker: {checker}]\n\n"
        "hx: an hx was passed, but the spec declares that the module takes none (RNNSpec.takes_hx=False)",
    ),
    MessageCase(
        "unbatched-not-declared", lambda: Fake(lambda x: (zeros(5, 7), zeros(1, 7))), GRU47,
        lambda: (zeros(5, 4), None),
        "GRU(4, 7) broke its contract before the call on input (5, 4) float32 on cpu [checker: {checker}]\n\n"
        "input: a 2-D (unbatched) tensor (5, 4) was passed, but the spec declares no unbatched support "
        "(RNNSpec.unbatched=False)",
    ),
    MessageCase(
        "input-4d", lambda: nn.GRU(4, 7, batch_first=True), None, lambda: (zeros(2, 3, 5, 4), None),
        "GRU(4, 7, batch_first=True) broke its contract before the call on input (2, 3, 5, 4) float32 on cpu "
        "[checker: {checker}]\n\n"
        "input: expected a 3-D tensor (batch, seq, dim) or a 2-D unbatched one, got 4-D (2, 3, 5, 4)",
    ),
    MessageCase(
        "packed-in-padded-out", lambda: Fake(lambda x: (zeros(5, 3, 7), zeros(1, 3, 7))),
        GRU47.replace(packed=True), lambda: (packed(), None),
        "GRU(4, 7) broke its contract in its result on PackedSequence data (10, 4), batch_sizes [3, 3, 2, 1, 1] [checker: {checker}]\n\n"
        "output: a PackedSequence in must give a PackedSequence out, got a Tensor (5, 3, 7)",
    ),
    MessageCase(
        "packed-out-with-other-lengths",
        lambda: Fake(lambda x: nn.GRU(4, 7)(pack_padded_sequence(zeros(5, 3, 4), torch.tensor([5, 3, 1])))),
        GRU47.replace(packed=True), lambda: (packed((5, 3, 2)), None),
        "GRU(4, 7) broke its contract in its result on PackedSequence data (10, 4), batch_sizes [3, 3, 2, 1, 1] [checker: {checker}]\n\n"
        "output: batch_sizes [3, 2, 2, 1, 1] differ from the input's [3, 3, 2, 1, 1]\n\n"
        "output: expected (total=10, directions*hidden=7), got (9, 7)\n"
        "  bound: batch=3 seq=5 total=10 dim=4 hidden=7 layers=1 directions=1",
    ),
    MessageCase(
        "packed-not-declared", lambda: Fake(lambda x: None), GRU47, lambda: (packed(), None),
        "GRU(4, 7) broke its contract before the call on PackedSequence data (10, 4), batch_sizes [3, 3, 2, 1, 1] "
        "[checker: {checker}]\n\n"
        "input: a PackedSequence was passed, but the spec declares no packed support (RNNSpec.packed=False)",
    ),
    MessageCase(
        "several-violations-listed-together",
        lambda: Fake(lambda x: (zeros(3, 5, 6), (zeros(3, 1, 6), zeros(1, 3, 6)))), LSTM_PROJ,
        lambda: (zeros(5, 3, 4), None),
        "LSTM(4, 7, proj_size=6) broke its contract in its result on input (5, 3, 4) float32 on cpu [checker: {checker}]\n\n"
        "output: expected (seq=5, batch=3, directions*hidden=6), got (3, 5, 6)\n"
        f"{BOUND_PROJ}\n"
        "  hint: batch and seq are swapped: the layer laid out output as (batch, seq, ...). "
        "Check batch_first (spec: False, module: unknown)\n\n"
        "h_n: expected (layers*directions=1, batch=3, hidden=6), got (3, 1, 6)\n"
        f"{BOUND_PROJ}\n"
        "  hint: h_n is laid out batch-first; torch keeps h and c states as (num_layers * D, batch, H_out) "
        f"{STATES_HINT}\n\n"
        "c_n: expected (layers*directions=1, batch=3, cell=7), got (1, 3, 6)\n"
        f"{BOUND_PROJ}\n"
        "  hint: c_0 / c_n keep hidden_size=7 even with proj_size=6",
    ),
]


@pytest.mark.parametrize("case", [c.param() for c in MESSAGE_CASES])
def test_violation_message(case, checker):
    module = case.module()
    x, hx = case.call()
    with pytest.raises(ContractViolation) as info:
        check_forward(module, x, hx, spec=case.spec)
    assert str(info.value) == case.message.format(checker=checker)


def test_violations_are_kept_one_per_paragraph():
    case = next(c for c in MESSAGE_CASES if c.id == "several-violations-listed-together")
    x, hx = case.call()
    with pytest.raises(ContractViolation) as info:
        check_forward(case.module(), x, hx, spec=case.spec)
    assert [(v.kind, v.tensor) for v in info.value.violations] == [
        ("shape", "output"), ("shape", "h_n"), ("shape", "c_n")]
    assert info.value.title.startswith("LSTM(4, 7, proj_size=6) broke its contract in its result")


def test_contract_violation_is_an_assertion_error():
    assert issubclass(ContractViolation, AssertionError)


# -- wrong inputs never reach the module ----------------------------------------------------------
@pytest.mark.parametrize(
    "factory, call",
    [
        pytest.param(lambda: nn.GRU(4, 7), lambda: (zeros(5, 3, 3), None), id="input-features"),
        pytest.param(lambda: nn.GRU(4, 7), lambda: (zeros(1, 5, 3, 4), None), id="input-4d"),
        pytest.param(lambda: nn.GRU(4, 7), lambda: (zeros(5, 3, 4, dtype=torch.int64), None), id="input-int"),
        pytest.param(lambda: nn.GRU(4, 7), lambda: (zeros(5, 3, 4), zeros(3, 1, 7)), id="h0-batch-first"),
        pytest.param(lambda: nn.GRU(4, 7), lambda: (zeros(5, 3, 4), (zeros(1, 3, 7),)), id="gru-tuple-hx"),
        pytest.param(lambda: nn.LSTM(4, 7), lambda: (zeros(5, 3, 4), zeros(1, 3, 7)), id="lstm-one-tensor"),
        pytest.param(lambda: nn.LSTM(4, 7, proj_size=6), lambda: (zeros(5, 3, 4), (zeros(1, 3, 7), zeros(1, 3, 7))),
                     id="lstm-h0-without-proj"),
    ],
)
def test_wrong_input_never_reaches_the_module(factory, call):
    inner = factory()
    recorder = Recorder(inner)
    x, hx = call()
    with pytest.raises(ContractViolation, match="broke its contract before the call"):
        check_forward(recorder, x, hx, spec=RNNSpec.from_module(inner))
    assert recorder.calls == 0


# -- torch layers pass, and the result comes back untouched ---------------------------------------
def _batched(spec: RNNSpec, device: str, batch: int = 3, seq: int = 5):
    shape = (batch, seq, spec.input_size) if spec.batch_first else (seq, batch, spec.input_size)
    return torch.randn(shape).to(device)


def _hx(spec: RNNSpec, device: str, batch: int = 3):
    layers = spec.num_layers * (2 if spec.bidirectional else 1)
    h = torch.randn(layers, batch, spec.proj_size or spec.hidden_size).to(device)
    return (h, torch.randn(layers, batch, spec.hidden_size).to(device)) if spec.mode == "LSTM" else h


TORCH_LAYERS = [
    pytest.param(lambda: nn.RNN(4, 2), id="rnn"),
    pytest.param(lambda: nn.RNN(4, 2, nonlinearity="relu", num_layers=2, batch_first=True), id="rnn-relu-bf"),
    pytest.param(lambda: nn.GRU(4, 7, bidirectional=True, num_layers=2), id="gru-bi"),
    pytest.param(lambda: nn.LSTM(4, 7, proj_size=6, bidirectional=True, batch_first=True), id="lstm-proj-bi-bf"),
]


# torch warns "LSTM with projections is not supported with oneDNN" for some proj_size dtypes: a
# notice that it uses its default kernel, not a defect of the layer under test.
@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning")
@pytest.mark.parametrize("with_hx", [False, True], ids=["no-hx", "hx"])
@pytest.mark.parametrize("factory", TORCH_LAYERS)
def test_torch_layer_passes_and_result_is_returned_unchanged(factory, with_hx, device, rnn_seeded):
    inner = factory().to(device)
    spec = RNNSpec.from_module(inner)
    recorder = Recorder(inner)
    x = _batched(spec, device)
    hx = _hx(spec, device) if with_hx else None
    assert check_forward(recorder, x, hx, spec=spec) is recorder.last
    assert recorder.calls == 1


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning")
@pytest.mark.parametrize("enforce_sorted", [True, False], ids=["sorted", "unsorted"])
@pytest.mark.parametrize("with_hx", [False, True], ids=["no-hx", "hx"])
@pytest.mark.parametrize("factory", TORCH_LAYERS)
def test_packed_sequence_happy_path(factory, with_hx, enforce_sorted, device, rnn_seeded):
    module = factory().to(device)
    spec = RNNSpec.from_module(module)
    lengths = [5, 3, 2] if enforce_sorted else [2, 5, 3]
    padded = _batched(spec, device)
    # lengths stay on the CPU, int64 (pytorch/pytorch#43227)
    x = pack_padded_sequence(padded, torch.tensor(lengths), batch_first=spec.batch_first,
                             enforce_sorted=enforce_sorted)
    hx = _hx(spec, device) if with_hx else None
    output, _ = check_forward(module, x, hx)
    assert isinstance(output, PackedSequence)
    assert output.data.shape == (sum(lengths), spec.num_directions * spec.h_out)
