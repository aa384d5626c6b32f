"""The jaxtyping aliases, checked the way the kit checks them, under both checkers.

Every alias of rnn_contracts.aliases.ALIASES gets a positive case and negative controls (wrong rank,
a wrong size on each axis the spec fixes, an int dtype), each in a fresh engine.scope() with the
spec's dimensions bound. The self-tests are themselves negative-controlled: with the checker
monkeypatched into a no-op they must raise.
"""
from __future__ import annotations

import importlib
import sys
import uuid

import pytest
import torch
import typeguard

from rnn_contracts import SelfTestError, aliases, engine

# Sizes bound by the spec (engine.bind_spec) and by the call; pairwise distinct, also from the
# derived layers*directions = 4 and directions*hidden = 12.
DIMS = {"layers": 2, "directions": 2, "hidden": 6, "cell": 7, "dim": 9}
BATCH, SEQ, TOTAL = 3, 5, 11
STACKS, FEATURES = 4, 12

# alias name -> (a shape the alias accepts, indices of the axes the spec fixes)
TABLE = {
    "SeqFirstInput": ((SEQ, BATCH, 9), (-1,)),
    "BatchFirstInput": ((BATCH, SEQ, 9), (-1,)),
    "UnbatchedInput": ((SEQ, 9), (-1,)),
    "PackedInputData": ((TOTAL, 9), (-1,)),
    "SeqFirstOutput": ((SEQ, BATCH, FEATURES), (-1,)),
    "BatchFirstOutput": ((BATCH, SEQ, FEATURES), (-1,)),
    "UnbatchedOutput": ((SEQ, FEATURES), (-1,)),
    "PackedOutputData": ((TOTAL, FEATURES), (-1,)),
    "HiddenState": ((STACKS, BATCH, 6), (0, -1)),
    "UnbatchedHiddenState": ((STACKS, 6), (0, -1)),
    "CellState": ((STACKS, BATCH, 7), (0, -1)),
    "UnbatchedCellState": ((STACKS, 7), (0, -1)),
}


def _cases():
    """(id, alias name, tensor, accepted?) for every alias: 1 positive, >= 3 negative controls."""
    out = []
    for name, (shape, fixed) in TABLE.items():
        out.append((f"{name}-ok", name, torch.zeros(shape), True))
        out.append((f"{name}-rank", name, torch.zeros(shape[1:]), False))
        out.append((f"{name}-extra-axis", name, torch.zeros((2, *shape)), False))
        for axis in fixed:
            wrong = list(shape)
            wrong[axis] += 1
            out.append((f"{name}-axis{axis}", name, torch.zeros(wrong), False))
        out.append((f"{name}-int64", name, torch.zeros(shape, dtype=torch.int64), False))
    return out


CASES = _cases()



def test_table_covers_every_alias():
    assert set(TABLE) == set(aliases.ALIASES)
    assert len({*DIMS.values(), BATCH, SEQ, TOTAL, STACKS, FEATURES}) == 9  # layers == directions only
    assert STACKS == DIMS["layers"] * DIMS["directions"]
    assert FEATURES == DIMS["directions"] * DIMS["hidden"]


@pytest.mark.parametrize("name, value, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_alias(checker, name, value, expected):
    with engine.scope():
        engine.bind_spec(DIMS)
        assert engine.accepts(value, aliases.ALIASES[name]) is expected


def test_dims_bind_across_checks_in_one_scope_only(checker):
    x = torch.zeros(SEQ, BATCH, 9)
    h_n_with_seq_as_batch = torch.zeros(STACKS, SEQ, 6)
    with engine.scope():
        engine.bind_spec(DIMS)
        assert engine.accepts(x, aliases.SeqFirstInput)
        assert not engine.accepts(h_n_with_seq_as_batch, aliases.HiddenState)  # batch 5 vs 3
        assert engine.accepts(torch.zeros(STACKS, BATCH, 6), aliases.HiddenState)
    with engine.scope():  # a new call: batch is free again
        engine.bind_spec(DIMS)
        assert engine.accepts(h_n_with_seq_as_batch, aliases.HiddenState)


def test_spec_dims_are_fresh_in_each_scope(checker):
    other = dict(DIMS, hidden=3)
    with engine.scope():
        engine.bind_spec(DIMS)
        assert not engine.accepts(torch.zeros(STACKS, BATCH, 3), aliases.HiddenState)
    with engine.scope():
        engine.bind_spec(other)
        assert engine.accepts(torch.zeros(STACKS, BATCH, 3), aliases.HiddenState)


# -- the self-tests and their own negative controls -----------------------------------------------
@pytest.mark.parametrize("name", engine.CHECKERS)
def test_engine_selftest_passes_and_restores_the_checker(name):
    before = engine.get_checker()
    engine.selftest(name)
    assert engine.get_checker() == before


@pytest.mark.parametrize("name", engine.CHECKERS)
def test_engine_selftest_catches_a_no_op_checker(name, monkeypatch):
    monkeypatch.setitem(engine._ACCEPTS, name, lambda value, alias: True)
    before = engine.get_checker()
    with pytest.raises(SelfTestError) as info:
        engine.selftest(name)
    assert str(info.value) == (
        f"contract self-test failed: the {name} checker accepted h_n with batch 5 after an input of "
        f"batch 3; contracts would not be enforced"
    )
    assert engine.get_checker() == before


@pytest.mark.parametrize("name", engine.CHECKERS)
def test_engine_selftest_catches_a_checker_that_rejects_everything(name, monkeypatch):
    monkeypatch.setitem(engine._ACCEPTS, name, lambda value, alias: False)
    with pytest.raises(SelfTestError, match="could not bind the spec's dimensions"):
        engine.selftest(name)


def _selftest_module():
    # ``rnn_contracts.selftest`` is the function (re-exported by the package); the module is here:
    return importlib.import_module("rnn_contracts.selftest")


@pytest.mark.parametrize("name", engine.CHECKERS)
def test_package_selftest_passes_and_catches_a_no_op_checker(name, monkeypatch):
    module = _selftest_module()
    module.selftest(name)
    monkeypatch.setitem(engine._ACCEPTS, name, lambda value, alias: True)
    with pytest.raises(SelfTestError, match=f"the {name} checker accepted"):
        module.selftest(name)


def test_package_selftest_catches_a_check_forward_that_checks_nothing(monkeypatch):
    module = _selftest_module()
    monkeypatch.setattr(module, "check_forward", lambda *args, **kwargs: None)
    with pytest.raises(SelfTestError) as info:
        module.selftest("typeguard")
    assert str(info.value) == (
        "contract self-test failed: check_forward accepted an h_n of shape (5, 1, 2) for a "
        "(seq=3, batch=5) input [checker: typeguard]; contracts would not be enforced"
    )


def test_set_checker_rejects_unknown_names():
    before = engine.get_checker()
    with pytest.raises(ValueError) as info:
        engine.set_checker("mypy")
    assert str(info.value) == "unknown contract checker 'mypy'; choose one of typeguard, beartype"
    assert engine.get_checker() == before


# -- why the engine uses the context form ---------------------------------------------------------
TRAP_SOURCE = '''
import typeguard
from jaxtyping import Float, jaxtyped
from torch import Tensor

State = Float[Tensor, "layers batch hidden"]


@jaxtyped(typechecker=typeguard.typechecked)
def last_state(h: State) -> State:
    return h
'''

INLINE_SOURCE = '''
import typeguard
from jaxtyping import Float, jaxtyped
from torch import Tensor


@jaxtyped(typechecker=typeguard.typechecked)
def last_state(h: Float[Tensor, "layers batch hidden"]) -> Float[Tensor, "layers batch hidden"]:
    return h
'''


@pytest.fixture
def import_source(tmp_path, monkeypatch):
    """Write source to a fresh module file and import it (typeguard reads the module's source)."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def load(source: str):
        name = f"trap_{uuid.uuid4().hex}"
        (tmp_path / f"{name}.py").write_text(source)
        monkeypatch.delitem(sys.modules, name, raising=False)  # removed again at teardown
        return importlib.import_module(name)

    return load


def test_decorator_form_checks_nothing_under_typeguard_4(import_source):
    with pytest.warns(typeguard.InstrumentationWarning, match="not typechecking"):
        module = import_source(TRAP_SOURCE)
    wrong = torch.zeros(3, dtype=torch.int64)  # wrong rank AND wrong dtype
    assert module.last_state(wrong) is wrong  # nothing was checked
    with engine.scope():  # the engine's context form rejects the same tensor
        assert not engine.accepts(wrong, module.State)


def test_decorator_form_with_inline_annotations_breaks_import(import_source):
    # typeguard re-parses the whole module, and "layers batch hidden" is not a Python expression.
    with pytest.raises(SyntaxError):
        import_source(INLINE_SOURCE)
