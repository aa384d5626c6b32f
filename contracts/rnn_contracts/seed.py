"""The seed's call, checked: nn.RNN(4, 2) under torch.manual_seed(0) on the "hello" batch.

The study note (../shared/seed, Lab11-1 "RNN Basics") builds a (3, 5, 4) one-hot batch it calls
(batch, seq, dim) and feeds it to ``torch.nn.RNN(4, 2)``, whose batch_first defaults to False:
the layer reads the tensor as (seq=3, batch=5), i.e. 5 sequences of length 3, the columns of
the word table. This module runs that call on one device and returns the checks that say so.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from rnn_contracts.checks import check_forward
from rnn_contracts.errors import ContractViolation
from rnn_contracts.spec import RNNSpec

GOLDEN_NAME = "seed_rnn_4_2_output"


@dataclass(frozen=True)
class SeedCheck:
    """One row of the seed report: a named check, its status on a device, and the evidence."""

    name: str
    status: str  # "passed" | "failed"
    detail: str
    seconds: float


def build_seed_rnn(device: str | torch.device = "cpu", *, batch_first: bool = False) -> torch.nn.RNN:
    """The note's layer: nn.RNN(4, 2) built on the CPU under torch.manual_seed(0), then moved
    (CPU and CUDA generators differ by design). Every generator is restored afterwards."""
    from rnn_contracts.devices import seeded_rng

    with seeded_rng(0):
        rnn = torch.nn.RNN(4, 2, batch_first=batch_first)
    return rnn.to(device)


def column_words() -> list[str]:
    """The 5 sequences the seed's call really read: column j of the word table, top to bottom."""
    from rnn_contracts.hello import WORDS

    return ["".join(word[j] for word in WORDS) for j in range(len(WORDS[0]))]


def _expect(holds: bool, message: str) -> None:
    """A seed check's verdict. Not an ``assert``: ``python -O`` strips those (every check would
    pass), and pytest rewrites the asserts of an installed plugin's distribution (the message
    would carry its introspection)."""
    if not holds:
        raise AssertionError(message)


def _timed(name: str, fn: Callable[[], str]) -> SeedCheck:
    start = time.perf_counter()
    try:
        detail, status = fn(), "passed"
    except AssertionError as exc:
        detail, status = str(exc), "failed"
    return SeedCheck(name, status, detail, time.perf_counter() - start)


def seed_checks(device: str) -> tuple[list[SeedCheck], torch.Tensor]:
    """Run the seed's call on ``device`` with TF32 off; return the checks and the output (on
    the CPU)."""
    from rnn_contracts.hello import hello_one_hot
    from rnn_contracts.precision import tf32_disabled

    x = hello_one_hot(device)
    rnn = build_seed_rnn(device)
    spec = RNNSpec.from_module(rnn)
    holder: dict[str, torch.Tensor] = {}

    def seq_first() -> str:
        with torch.no_grad():
            out, h_n = check_forward(rnn, x)
        holder["out"] = out.detach().cpu()
        _expect(tuple(h_n.shape) == (1, 5, 2), f"h_n {tuple(h_n.shape)}, expected (1, 5, 2)")
        return "contract holds: (seq=3, batch=5, dim=4) in, h_n (1, 5, 2)"

    def batch_first() -> str:
        twin = build_seed_rnn(device, batch_first=True)
        with torch.no_grad():
            out, h_n = check_forward(twin, x)
        _expect(tuple(h_n.shape) == (1, 3, 2), f"h_n {tuple(h_n.shape)}, expected (1, 3, 2)")
        return "contract holds with batch_first=True: (batch=3, seq=5, dim=4) in, h_n (1, 3, 2)"

    def claim() -> str:
        try:
            with torch.no_grad():
                check_forward(rnn, x, spec=spec.replace(batch_first=True))
        except ContractViolation as exc:
            mistakes = [v.mistake for v in exc.violations]
            _expect("batch_first" in mistakes, f"the violation does not name batch_first: {exc}")
            return "violated as it must be: h_n has batch 5, not 3 (hint names batch_first)"
        raise AssertionError("declaring (batch, seq, dim) on the note's call raised nothing")

    def columns() -> str:
        out = holder["out"]
        words = column_words()
        _expect(torch.equal(out[:, 2], out[:, 3]), "output[:, 2] != output[:, 3]")
        _expect(not torch.equal(out[:, 0], out[:, 1]), "output[:, 0] == output[:, 1]")
        return f"output[:, 2] == output[:, 3]: both are the sequence {' '.join(words[2])!r}"

    def golden() -> str:
        return _compare_golden(holder["out"], torch.device(device))

    # TF32 off, as the golden's tolerance assumes (a no-op for CPU kernels): on an H200 the
    # default cuDNN TF32 put output[0, 4, 1] 1.1e-4 from the CPU's 0.117995
    with tf32_disabled():
        checks = [
            _timed("seed call, seq-first contract", seq_first),
            _timed("same weights, batch_first=True", batch_first),
            _timed("(batch, seq, dim) claim rejected", claim),
        ]
    if "out" in holder:
        checks.append(_timed("columns 2 and 3 equal", columns))
        checks.append(_timed("seed golden (printed output)", golden))
    return checks, holder.get("out", torch.empty(0))


def _compare_golden(out: torch.Tensor, device: torch.device) -> str:
    """Within half a unit of the 4th printed decimal on CPU; plus the device's tolerance
    (rnn_contracts.precision, TF32 off) elsewhere."""
    from rnn_contracts.goldens import GoldenStore, compare, mismatch_message
    from rnn_contracts.precision import tolerance_for

    entry = GoldenStore().lookup(GOLDEN_NAME, device_type="cpu", dtype=torch.float32)
    rtol, atol = 0.0, entry.half_unit()
    if device.type != "cpu":
        tol = tolerance_for(device.type, torch.float32, tf32=False)
        rtol, atol = tol.rtol, atol + tol.atol
    mismatch = compare(out, entry, rtol=rtol, atol=atol)
    context = f"torch {torch.__version__}, {device}, float32"
    if mismatch is not None:
        raise AssertionError(mismatch_message(GOLDEN_NAME, entry, mismatch, context=context))
    return f"matches the note's 4 decimals (atol {atol:g}, rtol {rtol:g})"


def layout_verdict() -> str:
    """What the seed's call really computed, in words."""
    words = column_words()
    return (
        "The note calls its (3, 5, 4) batch (batch, seq, dim), but nn.RNN(4, 2) has batch_first=False, "
        f"so the layer read it as 5 sequences of length 3 (the columns {', '.join(words)}), not the "
        "3 words of length 5. Evidence: h_n is (1, 5, 2), and output[:, 2] == output[:, 3] because "
        f"both columns are {' '.join(words[2])!r}. Declaring the (batch, seq, dim) contract on that "
        "call raises ContractViolation naming batch_first. For 3 words of length 5 use "
        "nn.RNN(4, 2, batch_first=True)."
    )
