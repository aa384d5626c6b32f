"""Data tables for the shape suite (tests/test_shapes.py).

Every expected shape here is written by plain arithmetic from the "Inputs" / "Outputs" sections
of the torch.nn.RNN / LSTM / GRU documentation, independently of rnn_contracts.spec.RNNSpec:

* input  (L, N, H_in), or (N, L, H_in) with batch_first=True, or (L, H_in) unbatched;
* output (L, N, D * H_out), same layout as the input;
* h_0 / h_n (D * num_layers, N, H_out), never batch-first; (D * num_layers, H_out) unbatched;
* c_0 / c_n (D * num_layers, N, H_cell);
* H_out = proj_size if proj_size > 0 else hidden_size; H_cell = hidden_size; D = 2 if bidirectional.

The main sizes are chosen so that no two of batch, seq, input, hidden, proj, D * H_out and
num_layers * D are equal (test_shapes asserts it): a layer that mixes up two axes then changes
a shape, it cannot hide behind a coincidence. The degenerate cases (batch 1, seq 1) make such
coincidences on purpose.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
import torch

BATCH, SEQ, INPUT, HIDDEN, PROJ = 5, 7, 8, 10, 9
NUM_LAYERS = (1, 2, 3)
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

#: (mode, nonlinearity, proj_size) of the main matrix: LSTM once without and once with proj_size.
MODE_CONFIGS = (("RNN", "tanh", 0), ("LSTM", "tanh", 0), ("LSTM", "tanh", PROJ), ("GRU", "tanh", 0))
#: seq_first: batch_first=False (torch's default); batch_first; unbatched: 2-D input (batch_first
#: does not apply to it, so one unbatched layout, built with batch_first=False).
LAYOUTS = ("seq_first", "batch_first", "unbatched")

# torch warns once per process "LSTM with projections is not supported with oneDNN. Using default
# implementation." when an LSTM with proj_size runs in bfloat16 on CPU: torch's own notice that it
# falls back from oneDNN, not a defect of the layer under test. Filtered on the proj_size cases only.
ONEDNN_PROJ_FILTER = pytest.mark.filterwarnings(
    "ignore:LSTM with projections is not supported with oneDNN:UserWarning"
)


@dataclass(frozen=True)
class ShapeCase:
    """One forward call and the shapes the torch docs promise for it."""

    mode: str
    nonlinearity: str
    num_layers: int
    bidirectional: bool
    batch_first: bool
    proj_size: int
    batch: int | None  # None: unbatched (2-D) input
    seq: int
    with_h0: bool
    input_size: int = INPUT
    hidden_size: int = HIDDEN
    tag: str = ""

    # -- torch-doc arithmetic ---------------------------------------------------------------------
    @property
    def d(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def h_out(self) -> int:
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    def _laid_out(self, features: int) -> tuple[int, ...]:
        if self.batch is None:
            return (self.seq, features)
        if self.batch_first:
            return (self.batch, self.seq, features)
        return (self.seq, self.batch, features)

    def _state(self, features: int) -> tuple[int, ...]:
        if self.batch is None:
            return (self.d * self.num_layers, features)
        return (self.d * self.num_layers, self.batch, features)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._laid_out(self.input_size)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self._laid_out(self.d * self.h_out)

    @property
    def h_shape(self) -> tuple[int, ...]:
        return self._state(self.h_out)

    @property
    def c_shape(self) -> tuple[int, ...] | None:
        return self._state(self.hidden_size) if self.mode == "LSTM" else None

    # -- construction -----------------------------------------------------------------------------
    def build(self) -> torch.nn.Module:
        """The torch layer, on the CPU in float32 (seed the generator before calling)."""
        kwargs = dict(
            num_layers=self.num_layers, bidirectional=self.bidirectional, batch_first=self.batch_first
        )
        if self.mode == "RNN":
            return torch.nn.RNN(self.input_size, self.hidden_size, nonlinearity=self.nonlinearity, **kwargs)
        if self.mode == "LSTM":
            return torch.nn.LSTM(self.input_size, self.hidden_size, proj_size=self.proj_size, **kwargs)
        return torch.nn.GRU(self.input_size, self.hidden_size, **kwargs)

    @property
    def id(self) -> str:
        mode = self.mode + ("-relu" if self.nonlinearity == "relu" else "")
        mode += f"-proj{self.proj_size}" if self.proj_size else ""
        layout = "unbatched" if self.batch is None else ("bf" if self.batch_first else "sf")
        parts = [mode, layout, "bi" if self.bidirectional else "uni", f"L{self.num_layers}",
                 "h0" if self.with_h0 else "noh0"]
        if self.tag:
            parts.append(self.tag)
        return "-".join(parts)

    def param(self):
        marks = [ONEDNN_PROJ_FILTER] if self.proj_size else []
        return pytest.param(self, id=self.id, marks=marks)


def _main_matrix() -> list[ShapeCase]:
    cases = []
    for (mode, nonlin, proj), layout, bidir, layers, h0 in itertools.product(
        MODE_CONFIGS, LAYOUTS, (False, True), NUM_LAYERS, (False, True)
    ):
        cases.append(ShapeCase(
            mode=mode, nonlinearity=nonlin, num_layers=layers, bidirectional=bidir,
            batch_first=layout == "batch_first", proj_size=proj,
            batch=None if layout == "unbatched" else BATCH, seq=SEQ, with_h0=h0,
        ))
    return cases


def _degenerate() -> list[ShapeCase]:
    """batch 1 and seq 1, where axes coincide (batch 1 == num_layers * D 1), for every mode."""
    cases = []
    configs = MODE_CONFIGS + (("RNN", "relu", 0),)
    for (mode, nonlin, proj), (batch, seq, tag) in itertools.product(
        configs, ((1, SEQ, "batch1"), (BATCH, 1, "seq1"), (1, 1, "batch1-seq1"))
    ):
        for batch_first, bidir, layers in ((False, False, 1), (True, True, 2)):
            cases.append(ShapeCase(
                mode=mode, nonlinearity=nonlin, num_layers=layers, bidirectional=bidir,
                batch_first=batch_first, proj_size=proj, batch=batch, seq=seq, with_h0=True, tag=tag,
            ))
    return cases


MAIN_CASES: list[ShapeCase] = _main_matrix()
DEGENERATE_CASES: list[ShapeCase] = _degenerate()
#: nn.RNN with nonlinearity="relu" at the main sizes (only RNN has a nonlinearity argument).
RELU_CASES: list[ShapeCase] = [
    ShapeCase(mode="RNN", nonlinearity="relu", num_layers=2, bidirectional=True, batch_first=bf,
              proj_size=0, batch=BATCH, seq=SEQ, with_h0=True)
    for bf in (False, True)
]
ALL_CASES: list[ShapeCase] = MAIN_CASES + DEGENERATE_CASES + RELU_CASES


def stacked_values() -> set[int]:
    """Every num_layers * D the main matrix uses."""
    return {layers * d for layers in NUM_LAYERS for d in (1, 2)}


def main_sizes() -> dict[str, int]:
    """The main matrix's named sizes, for the distinctness assertion."""
    sizes = {"batch": BATCH, "seq": SEQ, "input": INPUT, "hidden": HIDDEN, "proj": PROJ,
             "2*hidden": 2 * HIDDEN, "2*proj": 2 * PROJ}
    sizes.update({f"layers*D={v}": v for v in sorted(stacked_values())})
    return sizes


def draw_call(
    case: ShapeCase, dtype: torch.dtype, device: str = "cpu", seed: int = 1
) -> tuple[torch.Tensor, Any]:
    """Input and hx of ``case``: drawn in float64 on the CPU from a local generator (the global
    RNG is untouched), rounded to ``dtype``, then moved to ``device``."""
    gen = torch.Generator().manual_seed(seed)

    def draw(shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(shape, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)

    x = draw(case.input_shape)
    if not case.with_h0:
        return x, None
    if case.mode == "LSTM":
        return x, (draw(case.h_shape), draw(case.c_shape))
    return x, draw(case.h_shape)

