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


# -- the store's validation, one malformed part at a time ----------------------------------------
from pathlib import Path  # noqa: E402

from rnn_contracts.goldens import FORMAT, GoldenStoreError, validate  # noqa: E402

GOOD = {"torch": ">=2.1", "device_type": "cpu", "dtype": "float32", "decimals": 6, "shape": [2],
        "values": [0.5, -0.25]}
BAD_ENTRIES = [  # (what changes, the problem reported)
    ({"torch": "nope"}, "torch 'nope' is not a version specifier such as '>=2.1'"),
    ({"device_type": ""}, "device_type '' is not a device type such as 'cpu'"),
    ({"device_type": 3}, "device_type 3 is not a device type such as 'cpu'"),
    ({"dtype": "float8"}, "dtype 'float8' is not one of "),
    ({"decimals": -1}, "decimals -1 is not an int >= 0"),
    ({"decimals": True}, "decimals True is not an int >= 0"),
    ({"decimals": 2.0}, "decimals 2.0 is not an int >= 0"),
    ({"shape": [-2]}, "shape [-2] is not a list of sizes"),
    ({"shape": (2,)}, "shape (2,) is not a list of sizes"),
    ({"shape": [2.0]}, "shape [2.0] is not a list of sizes"),
    ({"shape": [3]}, "values have shape [2], not the declared [3]"),
    ({"values": ["a", "b"]}, "values are not a nested list of numbers"),
    ({"provenance": "x"}, "provenance must be an object"),
    ({"extra": 1}, "unknown key(s) extra"),
]


def _store(entry: object) -> dict:
    return {"format": FORMAT, "goldens": {"g": {"entries": [GOOD, entry]}}}


def test_a_good_store_validates() -> None:
    validate(_store({**GOOD, "provenance": {"by": "test"}}), Path("s.json"))


@pytest.mark.parametrize(("change", "problem"), BAD_ENTRIES, ids=[str(c) for c, _ in BAD_ENTRIES])
def test_each_malformed_entry_is_named(change: dict, problem: str) -> None:
    with pytest.raises(GoldenStoreError) as caught:
        validate(_store({**GOOD, **change}), Path("s.json"))
    assert str(caught.value).startswith(f"s.json: goldens.g.entries[1]: {problem}")


def test_a_missing_key_is_named() -> None:
    entry = {k: v for k, v in GOOD.items() if k != "dtype"}
    with pytest.raises(GoldenStoreError, match=r"^s\.json: goldens\.g\.entries\[1\]: missing dtype$"):
        validate(_store(entry), Path("s.json"))


@pytest.mark.parametrize(("data", "message"), [
    ([], "s.json: a golden store is a JSON object, got list"),
    ({"format": FORMAT + 1, "goldens": {}}, f"s.json: format {FORMAT + 1!r} is not {FORMAT} (rnn_contracts.goldens)"),
    ({"format": FORMAT, "goldens": []}, "s.json: 'goldens' must be an object of name -> {'entries': [...]}"),
    ({"format": FORMAT, "goldens": {"g": {"entries": {}}}}, "s.json: goldens.g: needs a list 'entries'"),
    ({"format": FORMAT, "goldens": {"g": []}}, "s.json: goldens.g: needs a list 'entries'"),
])
def test_malformed_store_is_named(data: object, message: str) -> None:
    with pytest.raises(GoldenStoreError) as caught:
        validate(data, Path("s.json"))
    assert str(caught.value) == message


def test_put_refuses_a_key_two_entries_match(tmp_path: Path) -> None:
    """Regenerating where two entries' torch ranges both match would rewrite one at random.
    Kills: put() without its ``len(found) > 1`` guard."""
    import json

    from rnn_contracts.goldens import GoldenMissing, GoldenStore

    entries = [{**GOOD, "torch": ">=2.1"}, {**GOOD, "torch": ">=2.0"}]
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"format": FORMAT, "goldens": {"g": {"entries": entries}}}))
    store = GoldenStore(path)
    before = path.read_text()
    with pytest.raises(GoldenMissing, match=r"^2 entries match g\[torch 2\.5\.0, cpu, float32\]: narrow them before regenerating$"):
        store.put("g", torch.tensor([0.5, -0.25]), decimals=6, provenance={}, torch_version="2.5.0")
    assert path.read_text() == before
