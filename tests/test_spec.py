"""RNNSpec: validation, reading a spec off a module, and the shapes it promises.

Expected specs are written from the constructor arguments, expected shapes from the torch docs'
"Inputs" / "Outputs" sections (H_out = proj_size or hidden_size, H_cell = hidden_size,
D = 2 if bidirectional), never from RNNSpec's own output.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from rnn_contracts import NamedShape, RNNSpec, SpecError

LSTM = dict(mode="LSTM", input_size=4, hidden_size=7)


# -- validation: one row per rule, with the whole message -----------------------------------------
@pytest.mark.parametrize(
    "fields, message",
    [
        pytest.param(dict(mode="rnn", input_size=4, hidden_size=2),
                     "RNNSpec.mode must be one of ('RNN', 'LSTM', 'GRU'), got 'rnn'", id="mode-case"),
        pytest.param(dict(mode="RNN_TANH", input_size=4, hidden_size=2),
                     "RNNSpec.mode must be one of ('RNN', 'LSTM', 'GRU'), got 'RNN_TANH'", id="mode-torch-name"),
        pytest.param(dict(LSTM, input_size=0), "RNNSpec.input_size must be a positive int, got 0", id="input-zero"),
        pytest.param(dict(LSTM, input_size=4.0), "RNNSpec.input_size must be a positive int, got 4.0", id="input-float"),
        pytest.param(dict(LSTM, hidden_size=-1), "RNNSpec.hidden_size must be a positive int, got -1", id="hidden-neg"),
        pytest.param(dict(LSTM, hidden_size=True), "RNNSpec.hidden_size must be a positive int, got True", id="hidden-bool"),
        pytest.param(dict(LSTM, num_layers=0), "RNNSpec.num_layers must be a positive int, got 0", id="layers-zero"),
        pytest.param(dict(LSTM, num_layers="2"), "RNNSpec.num_layers must be a positive int, got '2'", id="layers-str"),
        pytest.param(dict(LSTM, proj_size=-1), "RNNSpec.proj_size must be an int >= 0, got -1", id="proj-neg"),
        pytest.param(dict(LSTM, proj_size=True), "RNNSpec.proj_size must be an int >= 0, got True", id="proj-bool"),
        pytest.param(dict(LSTM, proj_size=1.0), "RNNSpec.proj_size must be an int >= 0, got 1.0", id="proj-float"),
        pytest.param(dict(LSTM, mode="GRU", proj_size=3),
                     "proj_size is an LSTM feature; GRU has none (got 3)", id="proj-gru"),
        pytest.param(dict(LSTM, proj_size=7),
                     "proj_size (7) must be smaller than hidden_size (7)", id="proj-equals-hidden"),
        pytest.param(dict(LSTM, proj_size=9),
                     "proj_size (9) must be smaller than hidden_size (7)", id="proj-above-hidden"),
        pytest.param(dict(LSTM, mode="RNN", nonlinearity="sigmoid"),
                     "nonlinearity must be 'tanh' or 'relu', got 'sigmoid'", id="nonlinearity-unknown"),
        pytest.param(dict(LSTM, nonlinearity="relu"),
                     "nonlinearity='relu' exists for RNN only, not LSTM", id="relu-lstm"),
        pytest.param(dict(LSTM, mode="GRU", nonlinearity="relu"),
                     "nonlinearity='relu' exists for RNN only, not GRU", id="relu-gru"),
    ],
)
def test_invalid_spec_raises(fields, message):
    with pytest.raises(SpecError) as info:
        RNNSpec(**fields)
    assert str(info.value) == message


def test_spec_error_is_a_value_error():
    assert issubclass(SpecError, ValueError)


@pytest.mark.parametrize(
    "fields",
    [dict(LSTM, proj_size=6), dict(LSTM, proj_size=1), dict(mode="RNN", input_size=1, hidden_size=1,
                                                               nonlinearity="relu")],
    ids=["proj-just-below-hidden", "proj-1", "relu-rnn"],
)
def test_boundary_specs_are_valid(fields):
    spec = RNNSpec(**fields)
    assert all(getattr(spec, name) == value for name, value in fields.items())


def test_spec_is_frozen_and_replace_revalidates():
    spec = RNNSpec(**LSTM)
    with pytest.raises(AttributeError):
        spec.hidden_size = 3
    assert spec.replace(batch_first=True) == RNNSpec(**LSTM, batch_first=True)
    with pytest.raises(SpecError):
        spec.replace(mode="GRU", proj_size=2)


# -- from_module ----------------------------------------------------------------------------------
TORCH = dict(packed=True, unbatched=True)


@pytest.mark.parametrize(
    "factory, expected",
    [
        pytest.param(lambda: nn.RNN(4, 2), RNNSpec("RNN", 4, 2, **TORCH), id="rnn-tanh"),
        pytest.param(lambda: nn.RNN(4, 2, nonlinearity="relu"),
                     RNNSpec("RNN", 4, 2, nonlinearity="relu", **TORCH), id="rnn-relu"),
        pytest.param(lambda: nn.LSTM(4, 7, proj_size=6), RNNSpec("LSTM", 4, 7, proj_size=6, **TORCH), id="lstm-proj"),
        pytest.param(lambda: nn.GRU(3, 5), RNNSpec("GRU", 3, 5, **TORCH), id="gru"),
        pytest.param(lambda: nn.GRU(3, 5, num_layers=3, bidirectional=True, batch_first=True, bias=False),
                     RNNSpec("GRU", 3, 5, num_layers=3, bidirectional=True, batch_first=True, bias=False, **TORCH),
                     id="gru-bi-bf-3layers-nobias"),
        pytest.param(lambda: nn.LSTM(2, 8, num_layers=2, bidirectional=True, batch_first=True, proj_size=3),
                     RNNSpec("LSTM", 2, 8, num_layers=2, bidirectional=True, batch_first=True, proj_size=3, **TORCH),
                     id="lstm-everything"),
    ],
)
def test_from_torch_module(factory, expected):
    assert RNNSpec.from_module(factory()) == expected


class Lookalike(nn.Module):
    """Not a torch.nn.RNNBase: only carries torch's attribute names."""

    def __init__(self, **attrs) -> None:
        super().__init__()
        for name, value in attrs.items():
            setattr(self, name, value)


@pytest.mark.parametrize(
    "attrs, expected",
    [
        pytest.param(dict(mode="GRU", input_size=3, hidden_size=5), RNNSpec("GRU", 3, 5), id="defaults"),
        pytest.param(dict(mode="RNN_RELU", input_size=3, hidden_size=5),
                     RNNSpec("RNN", 3, 5, nonlinearity="relu"), id="torch-mode-relu"),
        pytest.param(dict(mode="RNN_TANH", input_size=3, hidden_size=5), RNNSpec("RNN", 3, 5), id="torch-mode-tanh"),
        pytest.param(dict(mode="LSTM", input_size=3, hidden_size=5, proj_size=2, num_layers=2, bidirectional=1,
                          batch_first=0, packed=True),
                     RNNSpec("LSTM", 3, 5, proj_size=2, num_layers=2, bidirectional=True, packed=True),
                     id="all-attrs-truthy-ints"),
    ],
)
def test_from_lookalike_module(attrs, expected):
    spec = RNNSpec.from_module(Lookalike(**attrs))
    assert spec == expected
    assert type(spec.bidirectional) is bool and type(spec.batch_first) is bool


def test_overrides_replace_fields_and_supply_missing_ones():
    assert RNNSpec.from_module(nn.RNN(4, 2), batch_first=True) == RNNSpec("RNN", 4, 2, batch_first=True, **TORCH)
    lookalike = Lookalike(mode="GRU")
    assert RNNSpec.from_module(lookalike, input_size=3, hidden_size=6) == RNNSpec("GRU", 3, 6)
    with pytest.raises(SpecError, match="proj_size is an LSTM feature"):
        RNNSpec.from_module(nn.GRU(3, 5), proj_size=2)


def how(example: str) -> str:
    return ("RNNSpec.from_module needs 'mode', 'input_size' and 'hidden_size' on the module, or as "
            f"fields: RNNSpec.from_module(module, {example}). Or pass the spec, spec=RNNSpec({example}), "
            "to whichever you called: verify_rnn(module, spec), checked(module, spec=spec), "
            "check_forward(module, x, spec=spec), or rnn-contracts --spec KEY=VALUE")


@pytest.mark.parametrize(
    "module, message",
    [
        pytest.param(nn.Linear(4, 2), "Linear has no attribute 'mode', 'input_size' or 'hidden_size': "
                     + how("mode=..., input_size=..., hidden_size=..."),
                     id="linear"),
        pytest.param(Lookalike(input_size=4, hidden_size=2), "Lookalike has no attribute 'mode': "
                     + how("mode=..., input_size=4, hidden_size=2"),
                     id="no-mode"),
        pytest.param(Lookalike(mode="GRU", hidden_size=2), "Lookalike has no attribute 'input_size': "
                     + how("mode='GRU', input_size=..., hidden_size=2"),
                     id="no-input-size"),
        pytest.param(Lookalike(mode="GRU", input_size=4), "Lookalike has no attribute 'hidden_size': "
                     + how("mode='GRU', input_size=4, hidden_size=..."),
                     id="no-hidden-size"),
        pytest.param(Lookalike(mode="GRU"), "Lookalike has no attribute 'input_size' or 'hidden_size': "
                     + how("mode='GRU', input_size=..., hidden_size=..."),
                     id="no-sizes"),
    ],
)
def test_missing_required_attribute(module, message):
    with pytest.raises(SpecError) as info:
        RNNSpec.from_module(module)
    assert str(info.value) == message


# -- expected shapes ------------------------------------------------------------------------------
# (spec, batch, seq, {name: shape}) with shapes from the torch docs: N=batch, L=seq.
SHAPES = [
    pytest.param(RNNSpec("RNN", 4, 2), 3, 5,
                 {"input": (5, 3, 4), "h_0": (1, 3, 2), "output": (5, 3, 2), "h_n": (1, 3, 2)}, id="rnn-seed"),
    pytest.param(RNNSpec("RNN", 4, 2, batch_first=True), 3, 5,
                 {"input": (3, 5, 4), "h_0": (1, 3, 2), "output": (3, 5, 2), "h_n": (1, 3, 2)}, id="rnn-bf"),
    pytest.param(RNNSpec("GRU", 4, 7, num_layers=3, bidirectional=True), 2, 5,
                 {"input": (5, 2, 4), "h_0": (6, 2, 7), "output": (5, 2, 14), "h_n": (6, 2, 7)}, id="gru-bi-3"),
    pytest.param(RNNSpec("LSTM", 4, 7, proj_size=6, num_layers=2, bidirectional=True, batch_first=True), 3, 5,
                 {"input": (3, 5, 4), "h_0": (4, 3, 6), "c_0": (4, 3, 7), "output": (3, 5, 12),
                  "h_n": (4, 3, 6), "c_n": (4, 3, 7)}, id="lstm-proj-bi-bf"),
    pytest.param(RNNSpec("LSTM", 4, 7), 3, 5,
                 {"input": (5, 3, 4), "h_0": (1, 3, 7), "c_0": (1, 3, 7), "output": (5, 3, 7),
                  "h_n": (1, 3, 7), "c_n": (1, 3, 7)}, id="lstm"),
    pytest.param(RNNSpec("LSTM", 4, 7, proj_size=2, num_layers=3, batch_first=True), None, 5,
                 {"input": (5, 4), "h_0": (3, 2), "c_0": (3, 7), "output": (5, 2), "h_n": (3, 2), "c_n": (3, 7)},
                 id="lstm-proj-unbatched-bf-ignored"),
    pytest.param(RNNSpec("GRU", 4, 7, bidirectional=True), None, 5,
                 {"input": (5, 4), "h_0": (2, 7), "output": (5, 14), "h_n": (2, 7)}, id="gru-bi-unbatched"),
]


@pytest.mark.parametrize("spec, batch, seq, expected", SHAPES)
def test_expected_shapes(spec, batch, seq, expected):
    shapes = spec.expected_shapes(batch, seq)
    assert {name: shape.sizes for name, shape in shapes.items()} == expected
    assert all(isinstance(shape, NamedShape) for shape in shapes.values())


def test_named_shapes_carry_the_kit_vocabulary():
    spec = RNNSpec("LSTM", 4, 7, proj_size=6, bidirectional=True, batch_first=True)
    shapes = spec.expected_shapes(3, 5)
    assert str(shapes["input"]) == "(batch=3, seq=5, dim=4)"
    assert str(shapes["output"]) == "(batch=3, seq=5, directions*hidden=12)"
    assert str(shapes["h_n"]) == "(layers*directions=2, batch=3, hidden=6)"
    assert str(shapes["c_n"]) == "(layers*directions=2, batch=3, cell=7)"
    assert shapes["c_0"].names == ("layers*directions", "batch", "cell")
    assert str(spec.expected_shapes(None, 5)["h_0"]) == "(layers*directions=2, hidden=6)"


@pytest.mark.parametrize(
    "spec, total, which, expected",
    [
        (RNNSpec("GRU", 4, 7, bidirectional=True), 11, "input", (11, 4)),
        (RNNSpec("GRU", 4, 7, bidirectional=True), 11, "output", (11, 14)),
        (RNNSpec("LSTM", 4, 7, proj_size=3), 9, "output", (9, 3)),
    ],
)
def test_packed_data_shape(spec, total, which, expected):
    assert spec.packed_data_shape(total, which).sizes == expected


@pytest.mark.parametrize(
    "spec, d, h_out, h_cell",
    [(RNNSpec("RNN", 4, 2), 1, 2, 2), (RNNSpec("LSTM", 4, 7, proj_size=6, bidirectional=True), 2, 6, 7)],
)
def test_derived_sizes(spec, d, h_out, h_cell):
    assert (spec.num_directions, spec.h_out, spec.h_cell) == (d, h_out, h_cell)


# -- describe -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, text",
    [
        (RNNSpec("RNN", 4, 2), "RNN(4, 2)"),
        (RNNSpec("RNN", 4, 2, nonlinearity="relu"), "RNN(4, 2, nonlinearity='relu')"),
        (RNNSpec("LSTM", 4, 7, num_layers=2, bidirectional=True, batch_first=True, proj_size=6, bias=False),
         "LSTM(4, 7, num_layers=2, bidirectional=True, batch_first=True, proj_size=6, bias=False)"),
        (RNNSpec("GRU", 3, 5, packed=True, unbatched=True), "GRU(3, 5)"),
    ],
)
def test_describe(spec, text):
    assert spec.describe() == text


# -- every field typed; from_module for any module ----------------------------------------------
@pytest.mark.parametrize("name", ["bidirectional", "batch_first", "bias", "packed", "unbatched", "updates_buffers"])
@pytest.mark.parametrize("value", ["False", 1, None])
def test_bool_fields_take_only_bools(name: str, value: object) -> None:
    with pytest.raises(SpecError, match=rf"^RNNSpec\.{name} must be True or False, got {value!r}$"):
        RNNSpec("GRU", 3, 5, **{name: value})


def test_a_string_attribute_is_an_error_never_true() -> None:
    class Stringly(nn.Module):
        mode, input_size, hidden_size, bidirectional = "GRU", 3, 5, "False"

    with pytest.raises(SpecError, match=r"^Stringly\.bidirectional is 'False', not a bool"):
        RNNSpec.from_module(Stringly())
    assert RNNSpec.from_module(Stringly(), bidirectional=False) == RNNSpec("GRU", 3, 5)


def test_fields_give_what_a_hand_written_module_lacks() -> None:
    class Bare(nn.Module):  # none of torch's attribute names
        def forward(self, x, hx=None):
            return x, x

    spec = RNNSpec.from_module(Bare(), mode="GRU", input_size=4, hidden_size=3, batch_first=True)
    assert spec == RNNSpec("GRU", 4, 3, batch_first=True)
    with pytest.raises(TypeError, match=r"unknown field\(s\) hiden_size"):
        RNNSpec.from_module(Bare(), mode="GRU", input_size=4, hiden_size=3)


def test_from_module_sees_through_known_wrappers() -> None:
    gru = nn.GRU(3, 5, num_layers=2)
    expected = RNNSpec.from_module(gru)
    assert RNNSpec.from_module(torch.compile(gru)) == expected  # packed/unbatched kept
    assert RNNSpec.from_module(nn.DataParallel(gru)) == expected
