"""goldens.compare from both sides of its bound ``|actual - golden| <= atol + rtol * |golden|``.

Kills: the comparison ignoring rtol (``err > atol``), or ignoring atol, or using ``>=`` at the
bound's edge, none of which tests/test_goldens_store.py or the seed goldens noticed
(mutation/README.md).
"""
from __future__ import annotations

import pytest
import torch

from rnn_contracts.goldens import GoldenEntry, compare


def _entry(values: list[float]) -> GoldenEntry:
    return GoldenEntry(name="g", torch=">=2.1", device_type="cpu", dtype="float32", decimals=6,
                       shape=[len(values)], values=values)


@pytest.mark.parametrize("golden", [0.0, 1000.0, -1000.0])
def test_just_inside_passes_just_outside_fails(golden: float) -> None:
    rtol, atol = 1e-3, 1e-2
    bound = atol + rtol * abs(golden)
    entry = _entry([golden, golden])
    assert compare(torch.tensor([golden + 0.9 * bound, golden - 0.9 * bound], dtype=torch.float64),
                   entry, rtol=rtol, atol=atol) is None
    m = compare(torch.tensor([golden, golden + 1.1 * bound], dtype=torch.float64), entry, rtol=rtol, atol=atol)
    assert m is not None
    assert (m.count, m.total, m.index) == (1, 2, (1,))
    assert m.max_abs == pytest.approx(1.1 * bound)
    assert (m.got, m.want, m.rtol, m.atol) == (pytest.approx(golden + 1.1 * bound), golden, rtol, atol)


def test_rtol_alone_allows_relative_error() -> None:
    """atol 0: only rtol * |golden| is allowed (a comparison that ignores rtol rejects this)."""
    entry = _entry([100.0])
    assert compare(torch.tensor([100.05], dtype=torch.float64), entry, rtol=1e-3, atol=0.0) is None
    assert compare(torch.tensor([100.2], dtype=torch.float64), entry, rtol=1e-3, atol=0.0) is not None


def test_shape_mismatch_is_a_mismatch() -> None:
    m = compare(torch.zeros(3, dtype=torch.float64), _entry([0.0, 0.0]), rtol=0.0, atol=1.0)
    assert m is not None and m.index == () and m.total == 2
