"""The seed's printed numbers: nn.RNN(4, 2) under torch.manual_seed(0) on the "hello" batch.

The golden (fixtures/data/goldens.json, "seed_rnn_4_2_output") holds the study note's printed
output to its 4 decimals. On CPU the layer must reproduce every printed digit; elsewhere it must
stay within the device's row of rnn_contracts.precision (built on CPU under the seed, then moved,
TF32 off). Also here: the golden store itself (missing keys, regeneration and its printed
difference) and a negative control that a perturbed golden fails.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from rnn_contracts import devices, goldens, precision
from pytest_rnn_contracts import plugin
from rnn_contracts.goldens import GoldenChecker, GoldenMissing, GoldenStore

NAME = "seed_rnn_4_2_output"


def _seed_output(device: str = "cpu") -> torch.Tensor:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        rnn = torch.nn.RNN(4, 2)
    out, _ = rnn.to(device)(goldens_input(device))
    return out.detach()


def goldens_input(device: str = "cpu") -> torch.Tensor:
    from rnn_contracts.hello import hello_one_hot

    return hello_one_hot(device)


# --- the seed, on every device under test ----------------------------------------------------
def test_seed_rnn_reproduces_the_printed_golden(
    device: str, hello_batch: torch.Tensor, rnn_make_module, rnn_golden, rnn_tolerance, rnn_tf32_off: None
) -> None:
    rnn = rnn_make_module(torch.nn.RNN, 4, 2)  # built on CPU under seed 0, then moved to `device`
    out, h_n = rnn(hello_batch)
    # batch_first=False: the (3, 5, 4) tensor was read as seq=3, batch=5, so h_n is (1, 5, 2).
    assert out.shape == (3, 5, 2) and h_n.shape == (1, 5, 2)
    if device == "cpu":
        # atol 5e-5, rtol 0: half a unit of the last printed decimal (the note printed 4), i.e.
        # "rounds to the printed digits". GoldenChecker adds exactly that half unit.
        rnn_golden.check(NAME, out)
    else:
        # Compared with the CPU golden: half a unit of the 4th decimal plus the device's row
        # of rnn_contracts.precision.TOLERANCES (cuda float32, TF32 off: rtol 1e-5, atol 5e-5).
        rnn_golden.check(NAME, out, key_device_type="cpu", tolerance=rnn_tolerance(torch.float32))


def test_the_notes_literal_code_under_the_seeded_fixture(rnn_seeded: int, rnn_golden) -> None:
    assert rnn_seeded == 0
    rnn = torch.nn.RNN(4, 2)  # the note: torch.manual_seed(0); torch.nn.RNN(input_size, hidden_size)
    outputs, _status = rnn(goldens_input())
    rnn_golden.check(NAME, outputs)  # atol 5e-5: half a unit of the 4th printed decimal


def test_same_seed_twice_gives_identical_results(device: str, hello_batch: torch.Tensor, rnn_make_module) -> None:
    first, second = rnn_make_module(torch.nn.RNN, 4, 2), rnn_make_module(torch.nn.RNN, 4, 2)
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(first(hello_batch)[0], second(hello_batch)[0])
    assert not torch.equal(first.weight_ih_l0, rnn_make_module(torch.nn.RNN, 4, 2, seed=1).weight_ih_l0)


def test_layout_evidence_in_the_printed_values() -> None:
    out = _seed_output()
    # Columns 2 and 3 are both the sequence "l l e" (seq-first reading): equal at every step.
    assert torch.equal(out[:, 2], out[:, 3])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        batch_first = torch.nn.RNN(4, 2, batch_first=True)
    other = batch_first(goldens_input())[0].detach()
    torch.testing.assert_close(other[0, 3], torch.tensor([-0.9141, -0.2142]), atol=5e-5, rtol=0)


# --- seeded: the fixture restores the global RNG state ---------------------------------------
def test_seeded_fixture_restores_the_rng_state() -> None:
    fixture = plugin.rnn_seeded.__wrapped__  # the generator function behind @pytest.fixture
    torch.manual_seed(987)
    before = torch.get_rng_state()
    expected_next = torch.rand(4)
    torch.set_rng_state(before)
    gen = fixture()
    assert next(gen) == 0
    drawn = torch.rand(4)
    torch.manual_seed(0)
    assert torch.equal(drawn, torch.rand(4))  # inside: seed 0
    with pytest.raises(StopIteration):
        next(gen)  # teardown
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(torch.rand(4), expected_next)  # a later draw is as if nothing happened


# --- negative control and the message --------------------------------------------------------
@pytest.fixture
def store_copy(tmp_path: Path) -> GoldenStore:
    path = tmp_path / "goldens.json"
    shutil.copy(goldens.DEFAULT_PATH, path)
    return GoldenStore(path)


def test_a_perturbed_golden_fails_with_the_run_context(store_copy: GoldenStore) -> None:
    entry = store_copy._matching(NAME, "cpu", torch.float32, torch.__version__)[0]
    entry["values"][1][2][0] = round(entry["values"][1][2][0] + 2e-4, 4)  # 2 units of the 4th decimal
    checker = GoldenChecker(store_copy, context=precision.run_context)
    with pytest.raises(AssertionError) as info:
        checker.check(NAME, _seed_output())
    text = str(info.value)
    assert "1 of 30 values outside atol=5e-05 rtol=0; worst at [1, 2, 0]" in text
    cudnn = devices.format_cudnn_version(torch.backends.cudnn.version() if torch.version.cuda else None)
    for part in (f"torch {torch.__version__}", "device cpu", "dtype float32", "TF32 ", f"cuDNN {cudnn}",
                 "--rnn-regen-goldens", "000_3cdda150364cce7c.txt"):
        assert part in text


def test_the_unperturbed_golden_passes_and_a_tiny_offset_inside_half_a_unit_too(store_copy: GoldenStore) -> None:
    checker = GoldenChecker(store_copy)
    checker.check(NAME, _seed_output())
    assert goldens.compare(_seed_output() + 3e-6, store_copy.lookup(NAME), rtol=0, atol=5e-5) is None


def test_shape_mismatch_is_reported(store_copy: GoldenStore) -> None:
    with pytest.raises(AssertionError, match=r"shape \(3, 5, 2\) expected"):
        GoldenChecker(store_copy).check(NAME, _seed_output()[:, :4])


# --- the store -------------------------------------------------------------------------------
def test_golden_entry_has_provenance() -> None:
    entry = GoldenStore().lookup(NAME)
    assert (entry.decimals, entry.shape, entry.device_type, entry.dtype) == (4, [3, 5, 2], "cpu", "float32")
    p = entry.provenance
    assert p["source"].endswith("000_3cdda150364cce7c.txt")
    assert "Lab11-1: RNN Baisics" in p["title"]
    assert "2.13.0" in p["reproduced_with"] and "CPU" in p["reproduced_with"]
    assert "batch_first=False" in p["layout"] and "seq=3, batch=5" in p["layout"]
    assert entry.tensor()[0, 0].tolist() == [-0.7497, -0.6135]  # the note's first printed row


def test_missing_key_names_the_key_and_the_flag(store_copy: GoldenStore) -> None:
    with pytest.raises(GoldenMissing) as info:
        store_copy.lookup(NAME, device_type="cuda", dtype=torch.float32, torch_version="2.13.0")
    assert str(info.value) == (
        f"no golden {NAME}[torch 2.13.0, cuda, float32] in {store_copy.path}; create it by running the "
        "test on a cuda device with --rnn-regen-goldens (and review the printed values), in a store of "
        "your own (--rnn-goldens-file PATH: the kit's own store is read-only once installed)")
    with pytest.raises(GoldenMissing, match=r"no golden .*\[torch 2\.0\.0, cpu, float32\]"):
        store_copy.lookup(NAME, torch_version="2.0.0")  # outside the entry's >=2.1 range


def test_two_matching_entries_are_an_error(store_copy: GoldenStore) -> None:
    entries = store_copy.data["goldens"][NAME]["entries"]
    entries.append(dict(entries[0], torch=f"=={torch.__version__.split('+')[0]}"))  # this torch, whichever
    with pytest.raises(GoldenMissing, match="2 entries match"):
        store_copy.lookup(NAME)


def test_regen_rewrites_the_current_key_and_reports_the_difference(store_copy: GoldenStore) -> None:
    lines: list[str] = []
    checker = GoldenChecker(store_copy, regen=True, record=lines.extend)
    checker.check(NAME, _seed_output())
    assert lines == [f"{NAME}[torch {torch.__version__}, cpu, float32]: unchanged"]
    lines.clear()
    changed = _seed_output()
    changed[0, 1, 1] += 1e-3
    checker.check(NAME, changed)
    assert lines[0].endswith("1 of 30 values changed")
    assert lines[1].endswith("[0, 1, 1]: -0.2473 -> -0.2463")
    store_copy.save()
    saved = json.loads(store_copy.path.read_text(encoding="utf-8"))
    entry = saved["goldens"][NAME]["entries"][0]
    assert entry["values"][0][1][1] == -0.2463 and entry["torch"] == ">=2.1"
    assert "regenerated_with" in entry["provenance"] and entry["provenance"]["title"]


def test_regen_of_a_new_key_adds_an_entry_for_this_minor_release(store_copy: GoldenStore) -> None:
    lines: list[str] = []
    GoldenChecker(store_copy, regen=True, record=lines.extend).check(NAME, _seed_output().double())
    assert "new entry" in lines[0] and "float64" in lines[0]
    entry = store_copy.lookup(NAME, dtype=torch.float64)
    major, minor = torch.__version__.split(".")[:2]
    assert entry.torch == f"=={major}.{minor}.*"


def test_regen_never_writes_a_reference_entry_from_another_device(store_copy: GoldenStore) -> None:
    # On a GPU run the seed test compares a CUDA result with the CPU entry; regeneration must not
    # overwrite that entry with CUDA numbers. Here: a CPU tensor checked against a "cuda" key.
    lines: list[str] = []
    checker = GoldenChecker(store_copy, regen=True, record=lines.extend)
    with pytest.raises(GoldenMissing):  # then it is compared as usual, and there is no cuda entry
        checker.check(NAME, _seed_output(), key_device_type="cuda")
    assert lines == [f"{NAME}: not regenerated from cpu: the entry compared is the cuda one"]
    assert not store_copy.dirty


def test_store_file_is_diff_friendly_and_round_trips() -> None:
    text = goldens.DEFAULT_PATH.read_text(encoding="utf-8")
    assert "[-0.7497, -0.6135]" in text
    assert goldens.dumps(json.loads(text)) == text


def test_the_options_golden_messages_name_are_the_plugins() -> None:
    """goldens.py names two plugin options in its messages; the plugin (which must not import
    the library: it stays inert) registers them: the same strings."""
    from pytest_rnn_contracts import plugin

    from rnn_contracts.goldens import GOLDENS_FILE_FLAG, REGEN_FLAG

    names: list[str] = []

    class Group:
        def addoption(self, *opts: str, **kwargs: object) -> None:
            names.extend(opts)

    class Parser(Group):
        def getgroup(self, *args: object, **kwargs: object) -> Group:
            return self

        def addini(self, *args: object, **kwargs: object) -> None:
            pass

    plugin.pytest_addoption(Parser())
    assert {REGEN_FLAG, GOLDENS_FILE_FLAG} <= set(names)


def test_the_shipped_store_says_what_a_new_store_says() -> None:
    """The package's goldens.json carries the same "about" text a regenerated store is written with."""
    import json

    from rnn_contracts.goldens import _ABOUT, DEFAULT_PATH

    assert json.loads(DEFAULT_PATH.read_text())["about"] == _ABOUT
