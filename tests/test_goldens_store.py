"""The golden store cannot be corrupted: validated on load (file and entry named), one usage error
at session start for a missing or malformed store, atomic writes, regeneration that creates a new
store, refuses an installed package and leaves an unchanged file untouched."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rnn_contracts import goldens
from rnn_contracts.goldens import GoldenStore, GoldenStoreError

try:  # tests/ is on sys.path under pytest's default "prepend" import mode
    from plugin_helpers import CPU_ONLY
except ImportError:  # tests/ became a package
    from tests.plugin_helpers import CPU_ONLY

pytest_plugins = ["pytester"]

QUIET = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:xdist")
NAME = "seed_rnn_4_2_output"


def _store_data() -> dict:
    return json.loads(goldens.DEFAULT_PATH.read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: object | str) -> Path:
    path = tmp_path / "goldens.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def _broken(mutate) -> dict:
    data = _store_data()
    mutate(data["goldens"][NAME]["entries"][0])
    return data


@pytest.mark.parametrize(("data", "message"), [
    ('{"format": 1, "goldens": {', r"goldens\.json: not valid JSON: line 1 column 27: Expecting property name"),
    ([], r"goldens\.json: a golden store is a JSON object, got list"),
    ({"format": 2, "goldens": {}}, r"goldens\.json: format 2 is not 1"),
    ({"format": 1, "goldens": {NAME: {}}}, rf"goldens\.json: goldens\.{NAME}: needs a list 'entries'"),
    (_broken(lambda e: e.pop("dtype")), rf"goldens\.{NAME}\.entries\[0\]: missing dtype$"),
    (_broken(lambda e: e.update(dtype="int8")), r"entries\[0\]: dtype 'int8' is not one of float16, bfloat16, float32, float64$"),
    (_broken(lambda e: e.update(torch="two")), r"entries\[0\]: torch 'two' is not a version specifier"),
    (_broken(lambda e: e.update(shape=[3, 5])), r"entries\[0\]: values have shape \[3, 5, 2\], not the declared \[3, 5\]$"),
    (_broken(lambda e: e.update(values=[["a"]])), r"entries\[0\]: values are not a nested list of numbers"),
    (_broken(lambda e: e.update(decimals=-1)), r"entries\[0\]: decimals -1 is not an int >= 0$"),
], ids=["json", "list", "format", "no-entries", "missing-key", "dtype", "torch", "shape", "values", "decimals"])
def test_a_malformed_store_names_the_file_and_the_entry(tmp_path: Path, data: object, message: str) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(GoldenStoreError, match=message) as caught:
        GoldenStore(path)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)


def test_a_missing_store_is_an_error_unless_created(tmp_path: Path) -> None:
    with pytest.raises(GoldenStoreError, match=r"cannot read the golden store: No such file or directory$"):
        GoldenStore(tmp_path / "none.json")
    store = GoldenStore(tmp_path / "none.json", create=True)
    assert store.dirty and store.data["goldens"] == {} and not (tmp_path / "none.json").exists()


def test_a_failed_write_leaves_the_old_store_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, _store_data())
    before = path.read_bytes()
    store = GoldenStore(path)
    store.data["goldens"][NAME]["description"] = "changed"

    def fail(self: Path, *args: object, **kwargs: object) -> None:
        self.open("w").write('{"format": 1, "gol')  # a truncated write, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", fail)
    with pytest.raises(GoldenStoreError, match=r"cannot write the golden store: No space left on device$"):
        store.save()
    monkeypatch.undo()
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["goldens.json"]


def test_installed_package_paths_are_recognised(tmp_path: Path) -> None:
    assert goldens.installed_package_path(tmp_path / "lib" / "site-packages" / "x" / "goldens.json")
    assert not goldens.installed_package_path(tmp_path / "repo" / "goldens.json")


# --- through the plugin -------------------------------------------------------------------------
GOLDEN_TEST = """
import torch
def test_g(rnn_golden, rnn_make_module, hello_batch):
    rnn_golden.check("seed_rnn_4_2_output", rnn_make_module(torch.nn.RNN, 4, 2)(hello_batch)[0].detach())
"""


def _errors(result: pytest.RunResult) -> list[str]:
    return [line for line in result.errlines if line.strip()]


@pytest.mark.parametrize(("content", "message"), [
    (None, "ERROR: rnn-contracts: --rnn-goldens-file: {path}: cannot read the golden store: No such file or directory"),
    ("{", "ERROR: rnn-contracts: --rnn-goldens-file: {path}: not valid JSON: line 1 column 2: Expecting property name enclosed in double quotes"),
], ids=["missing", "malformed"])
def test_a_bad_store_is_one_usage_error_at_session_start(pytester: pytest.Pytester, content: str | None,
                                                         message: str) -> None:
    path = pytester.path / "store.json"
    if content is not None:
        path.write_text(content)
    pytester.makepyfile(test_g=GOLDEN_TEST)
    result = pytester.runpytest_inprocess(*QUIET, "--rnn-goldens-file", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert _errors(result) == [message.format(path=path)]


def test_regen_creates_a_new_store_and_leaves_an_unchanged_one_untouched(pytester: pytest.Pytester) -> None:
    path = pytester.path / "new" / "goldens.json"
    path.parent.mkdir()
    pytester.makepyfile(test_g=GOLDEN_TEST)
    result = pytester.runpytest_inprocess(*QUIET, *CPU_ONLY, "--rnn-goldens-file", str(path), "--rnn-regen-goldens")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["seed_rnn_4_2_output[[]torch *, cpu, float32[]]: new entry *", f"written to {path}"])
    GoldenStore(path).lookup(NAME)  # valid, and holds the entry
    stamp, before = path.stat().st_mtime_ns, path.read_bytes()
    result = pytester.runpytest_inprocess(*QUIET, *CPU_ONLY, "--rnn-goldens-file", str(path), "--rnn-regen-goldens")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["seed_rnn_4_2_output*: unchanged"])
    assert "written to" not in result.stdout.str()
    assert path.stat().st_mtime_ns == stamp and path.read_bytes() == before


def test_regen_refuses_an_installed_package(pytester: pytest.Pytester) -> None:
    path = pytester.path / "venv" / "lib" / "site-packages" / "rnn_contracts" / "data" / "goldens.json"
    path.parent.mkdir(parents=True)
    shutil.copy(goldens.DEFAULT_PATH, path)
    pytester.makepyfile(test_g=GOLDEN_TEST)
    result = pytester.runpytest_inprocess(*QUIET, "--rnn-goldens-file", str(path), "--rnn-regen-goldens")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert _errors(result) == [f"ERROR: rnn-contracts: --rnn-regen-goldens would write into an installed package "
                               f"({path}): copy the store and pass --rnn-goldens-file PATH"]


def test_nan_never_matches_a_golden_and_a_golden_is_never_nan(tmp_path: Path) -> None:
    import torch

    entry = GoldenStore().lookup(NAME)
    values = entry.tensor().clone()
    values[0, 0, 0] = float("nan")
    mismatch = goldens.compare(values, entry, rtol=0.0, atol=1.0)  # even a huge atol
    assert mismatch is not None and mismatch.count == 1 and mismatch.index == (0, 0, 0)
    data = _store_data()
    data["goldens"][NAME]["entries"][0]["values"][0][0][0] = float("nan")
    with pytest.raises(GoldenStoreError, match=r"entries\[0\]: values hold NaN or infinity"):
        GoldenStore(_write(tmp_path, json.dumps(data)))
    assert torch.isnan(values).any()
