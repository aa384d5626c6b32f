"""Behaviour of the kit's core modules that no other test pinned down, one mutant each.

Kills (mutation/README.md):
  about.py    kit_version() answering "unknown" for an installed kit (``or`` -> ``and``).
  checks.py   an integer output of the right shape reported as a dtype mismatch against the
              input instead of "expected a floating-point dtype (the shape is right)"; a checker
              that accepts a wrong shape silently trusted instead of an internal error; an LSTM
              hx of three tensors unpacked (ValueError) instead of "must be a pair".
  cli.py      ``--spec KEY=true`` read as False; any error of the module while its spec is read
              taken for a missing attribute (the module's own error masked by the --spec
              fallback); ``--contract cell_equivalence`` without --cell called an unknown
              contract; ``--timeout`` accepted up to 1e7 s instead of below 1e6.
  conventions.py  a cell unrolled over a PackedSequence; layer_call() wrapping a layer that
              already has torch's convention and handing a cell over un-unrolled.
  devices.py  MPS discovery without torch.backends.mps, or with MPS available; the CPU's
              description ("Apple MPS" for the CPU, "cpu" instead of the machine's name).
  engine.py   the beartype-installed check run for the wrong checker.
  errors.py   Violation.to_dict() turning None/ints/dtypes/shapes into the wrong JSON values.
  job.py      a module that cannot be copied to the device: a one-line usage error (exit 2),
              not an AttributeError from ``exc.report``.
"""
from __future__ import annotations

import platform
import sys
import textwrap
import types
from importlib import metadata
from pathlib import Path

import pytest
import torch
from torch.nn.utils.rnn import pack_sequence

from rnn_contracts import about, engine
from rnn_contracts.checks import call_violations, inputs_violations
from rnn_contracts.cli import main
from rnn_contracts.conventions import layer_call
from rnn_contracts.devices import DeviceInfo, describe_device, discover_devices
from rnn_contracts.errors import Violation, render_violation
from rnn_contracts.spec import RNNSpec

from cli_helpers import one_error_line

#: Targets for the command line, importable as ``kills_core_targets`` through ``core_targets``.
TARGETS = textwrap.dedent(
    """
    import torch

    class BatchFirst(torch.nn.Module):
        '''A batch-first GRU that carries mode and sizes but no batch_first attribute.'''
        mode, input_size, hidden_size = "GRU", 4, 3

        def __init__(self):
            super().__init__()
            self.gru = torch.nn.GRU(4, 3, batch_first=True)

        def forward(self, x, hx=None):
            return self.gru(x, hx)

    class LazySize(torch.nn.Module):
        '''A module whose hidden_size attribute raises (a bug in the module, not a missing field).'''
        mode, input_size = "GRU", 4

        @property
        def hidden_size(self):
            raise RuntimeError("hidden_size is not known before the weights are loaded")

    class Uncopyable(torch.nn.GRU):
        '''A GRU that refuses to be copied (verify_rnn works on a copy moved to the device).'''

        def __init__(self):
            super().__init__(4, 3)

        def __deepcopy__(self, memo):
            raise RuntimeError("holds an open file handle")
    """
)


@pytest.fixture
def core_targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "kills_core_targets.py").write_text(TARGETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "kills_core_targets", raising=False)
    return "kills_core_targets"


# ----------------------------------------------------------------------------------- about.py
def test_the_version_line_names_the_installed_kit_version(capsys: pytest.CaptureFixture[str]) -> None:
    installed = metadata.version("rnn-contracts")  # the editable install the tests run under
    assert about.kit_version() == installed
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith(f"rnn-contracts {installed} · torch {torch.__version__} · ")


def test_a_kit_that_was_never_installed_is_version_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    assert about.kit_version() == "unknown"


# ---------------------------------------------------------------------------------- checks.py
def _gru_call() -> tuple[RNNSpec, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return RNNSpec("GRU", 4, 3), torch.randn(5, 2, 4), torch.zeros(1, 2, 3)


def test_an_integer_output_of_the_right_shape_is_a_floating_point_dtype_violation() -> None:
    spec, x, h = _gru_call()
    output = torch.zeros(5, 2, 3, dtype=torch.int64)
    got = call_violations(spec, x, None, (output, h))
    assert [render_violation(v) for v in got] == [
        "output: dtype torch.int64, expected a floating-point dtype (the shape (5, 2, 3) is right)"
    ]
    assert got[0].kind == "dtype"


def test_a_checker_that_accepts_a_wrong_shape_is_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine and the spec's sizes must agree: a checker passing an output one feature short
    is never trusted silently (nor reported as the module's fault)."""
    spec, x, h = _gru_call()
    monkeypatch.setattr(engine, "accepts", lambda value, alias: True)
    with pytest.raises(RuntimeError) as raised:
        call_violations(spec, x, None, (torch.zeros(5, 2, 2), h))
    assert str(raised.value) == (
        "rnn-contracts internal error: the typeguard checker accepted output (5, 2, 2) against "
        "(seq=5, batch=2, directions*hidden=3); please report this"
    )


@pytest.mark.parametrize("length", [1, 3])
def test_an_lstm_hx_that_is_not_a_pair_is_a_type_violation(length: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(5, 2, 4)
    hx = tuple(torch.zeros(1, 2, 3) for _ in range(length))
    got = inputs_violations(RNNSpec("LSTM", 4, 3), x, hx)
    assert [render_violation(v) for v in got] == [
        f"hx: LSTM states must be a pair (h_0, c_0), got tuple of length {length}"
    ]


# ------------------------------------------------------------------------------------- cli.py
def test_a_spec_override_true_declares_the_layout(core_targets: str, capsys: pytest.CaptureFixture[str]) -> None:
    """BatchFirst carries no batch_first attribute: only ``--spec batch_first=true`` declares its
    layout (read as False, the spec would be seq-first and the shapes contract would fail)."""
    target = f"{core_targets}:BatchFirst"
    assert main([target, "--device", "cpu", "--contract", "shapes", "--spec", "batch_first=true"]) == 0
    out = capsys.readouterr().out
    assert "spec:   GRU(4, 3, batch_first=True)" in out
    assert "all contracts hold" in out


def test_a_module_attribute_that_raises_is_one_usage_line(core_targets: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A module whose own property raises while the spec is read is the target's problem: one
    line naming the attribute and its error, exit 2, never a traceback."""
    assert main([f"{core_targets}:LazySize", "--device", "cpu", "--contract", "shapes"]) == 2
    assert one_error_line(capsys) == (
        "reading LazySize.hidden_size raised RuntimeError: hidden_size is not known before the "
        "weights are loaded (give it as a field: RNNSpec.from_module(module, hidden_size=...)) "
        "(or give every field with --spec KEY=VALUE)")


def test_a_field_given_is_never_read_off_the_module(core_targets: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([f"{core_targets}:LazySize", "--device", "cpu", "--contract", "shapes",
                 "--spec", "hidden_size=3"]) in (0, 1)
    assert "spec:   GRU(4, 3)" in capsys.readouterr().out


def test_cell_equivalence_without_cell_asks_for_cell(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--device", "cpu", "--contract", "cell_equivalence"]) == 2
    assert one_error_line(capsys) == (
        "--contract cell_equivalence: needs --cell TARGET, the cell the layer unrolls"
    )


@pytest.mark.parametrize(("value", "shown"), [("1e6", "1e+06"), ("5e6", "5e+06"), ("0", "0")])
def test_a_timeout_outside_zero_to_1e6_is_a_usage_error(value: str, shown: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--device", "cpu", "--contract", "shapes", "--timeout", value]) == 2
    assert one_error_line(capsys) == f"--timeout {shown}: expected a positive number of seconds below 1e6"


# ------------------------------------------------------------------------------------- job.py
def test_a_module_that_cannot_be_copied_is_a_usage_error(core_targets: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """verify_rnn checks a copy moved to the asked dtype (float64 here): a copy that fails is the
    module's problem, one line on stderr and exit 2, not a violation nor a traceback."""
    assert main([f"{core_targets}:Uncopyable", "--device", "cpu", "--dtype", "float64", "--contract", "shapes"]) == 2
    assert one_error_line(capsys) == (
        "verify_rnn could not run on cpu float64: ValueError: verify_rnn could not move a copy of the "
        "module to cpu (torch.float64): RuntimeError: holds an open file handle"
    )


# ----------------------------------------------------------------------------- conventions.py
def test_layer_call_unrolls_a_cell_like_the_torch_layer() -> None:
    torch.manual_seed(0)
    cell = torch.nn.GRUCell(4, 3)
    layer = torch.nn.GRU(4, 3)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(layer, f"{name}_l0").copy_(getattr(cell, name))
    x = torch.randn(5, 2, 4)
    output, h_n = layer_call(cell, RNNSpec.from_module(cell))(x)
    expected_output, expected_h = layer(x)
    assert output.shape == expected_output.shape == (5, 2, 3)
    assert h_n.shape == expected_h.shape == (1, 2, 3)
    # the same float32 arithmetic step by step: equal up to rounding
    assert torch.allclose(output, expected_output, rtol=1e-5, atol=1e-6)
    assert torch.allclose(h_n, expected_h, rtol=1e-5, atol=1e-6)


def test_layer_call_returns_a_torch_layer_itself() -> None:
    layer = torch.nn.GRU(4, 3)
    assert layer_call(layer, RNNSpec.from_module(layer)) is layer


def test_an_unrolled_cell_refuses_a_packed_sequence() -> None:
    torch.manual_seed(0)
    cell = torch.nn.GRUCell(4, 3)
    packed = pack_sequence([torch.randn(3, 4), torch.randn(2, 4)])
    with pytest.raises(TypeError) as raised:
        layer_call(cell, RNNSpec.from_module(cell))(packed)
    assert str(raised.value) == "a cell unrolled by the kit takes no PackedSequence (spec.packed=False)"


# --------------------------------------------------------------------------------- devices.py
def _no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_mps_is_discovered_when_torch_reports_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_cuda(monkeypatch)
    monkeypatch.setattr(torch.backends, "mps", types.SimpleNamespace(is_available=lambda: True))
    assert discover_devices() == ["cpu", "mps"]


def test_a_torch_without_an_mps_backend_offers_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_cuda(monkeypatch)
    monkeypatch.delattr(torch.backends, "mps")
    assert discover_devices() == ["cpu"]


def test_the_cpu_is_described_by_the_machine_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "riscv64")
    assert describe_device("cpu") == DeviceInfo("cpu", "riscv64")
    assert describe_device("mps") == DeviceInfo("mps", "Apple MPS")
    monkeypatch.setattr(platform, "machine", lambda: "")  # Python's answer when it cannot tell
    assert describe_device("cpu") == DeviceInfo("cpu", "cpu")


# ---------------------------------------------------------------------------------- engine.py
def test_beartype_is_required_only_for_the_beartype_checker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "beartype", None)  # import beartype -> ImportError
    previous = engine.get_checker()
    try:
        engine.set_checker("typeguard")
        assert engine.get_checker() == "typeguard"
        with pytest.raises(ValueError) as raised:
            engine.set_checker("beartype")
        assert str(raised.value) == "contract checker 'beartype' needs: pip install beartype"
        assert engine.get_checker() == "typeguard"
    finally:
        engine.set_checker(previous)


# ---------------------------------------------------------------------------------- errors.py
def test_to_dict_keeps_none_and_numbers_and_writes_dtypes_as_text() -> None:
    v = Violation("dtype", "output", "the shape (5, 2, 3) is right", expected=None, actual=torch.int64)
    d = v.to_dict()
    assert (d["expected"], d["actual"]) == (None, "int64")
    n = Violation("value", "output", "the layer is deterministic", expected=3, actual=2.5, position=(0,),
                  tolerance=(0.0, 0.0), difference=0.5).to_dict()
    assert (n["expected"], n["actual"]) == (3, 2.5)
    flag = Violation("evidence", "output", "x", expected=True, actual="text").to_dict()
    assert (flag["expected"], flag["actual"]) == (True, "text")


def test_to_dict_of_a_shape_violation_gives_named_sizes_and_a_list() -> None:
    spec, x, h = _gru_call()
    (v,) = call_violations(spec, x, None, (torch.zeros(5, 2, 2), h))
    d = v.to_dict()
    assert d["expected"] == {"seq": 5, "batch": 2, "directions*hidden": 3}
    assert d["actual"] == [5, 2, 2]


def test_to_dict_writes_lists_as_lists() -> None:
    d = Violation("evidence", "output", "x", expected=[3, 2], actual=[]).to_dict()
    assert (d["expected"], d["actual"]) == ([3, 2], [])
