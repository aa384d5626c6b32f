"""Calling conventions as part of the spec, with no adapter code: torch's cells and users' cells,
output-only modules, modules that require hx, through verify_rnn, check_forward, the command
line and the conformance class (tests/test_conformance.py, tests/test_corpus.py); and hints that
name what is actually wrong (a merged axis is not a lost one)."""
from __future__ import annotations

import json
import textwrap

import pytest
import torch
from torch import nn

from rnn_contracts import CONTRACT_NAMES, ContractViolation, RNNSpec, check_forward, verify_rnn
from rnn_contracts.cli import main
from rnn_contracts.diagnose import (
    HX_IN_ANOTHER_PARAMETER_HINT, OUTPUT_ONLY_HINT, REQUIRES_HX_HINT, RETURNS_STATES_HINT, TAKES_NO_HX_HINT,
)
from rnn_contracts.engine import get_checker


STATE_CONTRACTS = {"final_state", "initial_state", "state_carry"}
#: The contracts that hand the module an h_0 and read what it does with it.
HX_CONTRACTS = {"initial_state", "state_carry"}


@pytest.mark.parametrize("cell", [nn.RNNCell(4, 3), nn.RNNCell(4, 3, nonlinearity="relu"), nn.GRUCell(4, 3),
                                  nn.LSTMCell(4, 3)], ids=["rnn", "rnn-relu", "gru", "lstm"])
def test_torchs_cells_need_no_spec(cell: nn.Module) -> None:
    torch.manual_seed(0)
    report = verify_rnn(cell)
    assert report.spec.convention == "cell" and report.spec.unbatched and not report.spec.packed
    statuses = {r.name: r.status for r in report.results}
    assert statuses == {**{n: "passed" for n in CONTRACT_NAMES}, "packed": "not applicable"}
    assert next(r.detail for r in report.results if r.name == "reference").startswith(
        "placed by order and shape: weight_ih_l0 <- weight_ih, weight_hh_l0 <- weight_hh")


class UserLSTMCell(nn.Module):
    """A user's LSTM cell: ``cell(x_t, (h, c)) -> (h, c)``, batch-first data in its project."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.gates = nn.Linear(4 + 3, 12)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        h, c = state
        i, f, g, o = self.gates(torch.cat([x, h], 1)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


def test_a_users_cell_through_check_forward_and_verify_rnn() -> None:
    spec = RNNSpec("LSTM", 4, 3, convention="cell", batch_first=True)
    output, (h_n, c_n) = check_forward(UserLSTMCell(), torch.randn(2, 6, 4), spec=spec)
    assert (output.shape, h_n.shape, c_n.shape) == ((2, 6, 3), (1, 2, 3), (1, 2, 3))
    report = verify_rnn(UserLSTMCell(), spec)
    # one Linear over [x, h]: its weight is split at the input's width, x's columns then h's
    reference = next(r for r in report.results if r.name == "reference")
    assert (reference.status, reference.detail) == ("passed", (
        "placed by order and shape: weight_ih_l0 <- gates.weight[:, :4], weight_hh_l0 <- gates.weight[:, 4:], "
        "bias_ih_l0 <- gates.bias, bias_hh_l0 <- zeros; gate order i, f, g, o"))


class Encoder(nn.Module):
    """Returns only the output sequence (a common encoder)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.rnn = nn.GRU(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


def test_an_output_only_module_runs_every_contract_but_the_states_ones() -> None:
    spec = RNNSpec("GRU", 4, 3, returns_states=False)
    output, state = check_forward(Encoder(), torch.randn(5, 2, 4), spec=spec)
    assert output.shape == (5, 2, 3) and state is None
    report = verify_rnn(Encoder(), spec)
    na = {r.name: r.detail for r in report.results if r.status == "not applicable"}
    assert {n: na[n] for n in STATE_CONTRACTS} == {
        n: "the module returns no states (RNNSpec.returns_states=False)" for n in STATE_CONTRACTS}
    assert {r.name for r in report.results if r.status == "passed"} >= {
        "shapes", "finite", "causality", "batch_independence", "determinism", "differentiability", "reference"}


class TakesOnlyX(nn.GRU):
    """forward(x) -> (output, h_n): starts every call from zeros, and says so by taking no hx."""

    def forward(self, x):
        return super().forward(x)


def test_a_module_that_takes_no_hx_runs_every_contract_but_the_ones_that_give_one() -> None:
    """Declared takes_hx=False, it is never handed an h_0 (its forward would raise): the two
    contracts that need one do not apply, naming the field, and every other contract holds,
    packed and unbatched included (torch's GRU underneath)."""
    torch.manual_seed(9)
    module = TakesOnlyX(4, 3)
    spec = RNNSpec.from_module(module, takes_hx=False)
    output, h_n = check_forward(module, torch.randn(5, 2, 4), spec=spec)
    assert (output.shape, h_n.shape) == ((5, 2, 3), (1, 2, 3))
    report = verify_rnn(module, spec)
    statuses = {r.name: (r.status, r.detail) for r in report.results}
    assert {n: statuses[n] for n in HX_CONTRACTS} == {
        n: ("not applicable", "the module takes no h_0 (RNNSpec.takes_hx=False)") for n in HX_CONTRACTS}
    assert {n for n, (status, _) in statuses.items() if status == "passed"} == set(CONTRACT_NAMES) - HX_CONTRACTS


def test_a_module_that_takes_no_hx_is_told_the_spec_field() -> None:
    """Without the declaration its forward refuses the states call's h_0: shapes names the
    field in a hint; a forward that takes *args, or an hx it then mishandles, gets no such hint."""
    torch.manual_seed(9)
    module = TakesOnlyX(4, 3)
    with pytest.raises(ContractViolation) as caught:
        verify_rnn(module)
    shapes = next(r for r in caught.value.report.results if r.name == "shapes")
    assert shapes.detail == (
        "the module raised TypeError on batch 1 with a random h_0 (input "
        "(6, 1, 4) float32 on cpu, h_0 (1, 1, 3)): TakesOnlyX.forward() takes 2 positional "
        "arguments but 3 were given\n"
        f"  hint: {TAKES_NO_HX_HINT}")


class VariadicRefusesHx(nn.GRU):
    def forward(self, x, *args):  # its own extra arguments: not a forward(x)
        if args:
            raise TypeError("VariadicRefusesHx.forward() takes 2 positional arguments but 3 were given")
        return super().forward(x)


class PassesHxOn(nn.GRU):
    def forward(self, x, hx=None):
        return self._run(x, hx)

    def _run(self, x):  # a bug inside the module, not a forward that takes no hx
        return super().forward(x)


class MaskSecond(nn.GRU):
    def forward(self, x, mask=None):  # takes no hx: h_0 would land in mask
        return super().forward(x if mask is None else x * mask)


def test_an_h0_that_lands_in_a_parameter_of_another_name_gets_the_hint() -> None:
    """From a second user-view review: forward(x, mask=None) without takes_hx=False raised on the
    kit's h_0 with no hint, though the kit itself reads mask as no state; declared, it passes."""
    torch.manual_seed(0)
    with pytest.raises(ContractViolation) as caught:
        verify_rnn(MaskSecond(4, 3))
    shapes = next(r for r in caught.value.report.results if r.name == "shapes")
    assert shapes.detail.startswith("the module raised RuntimeError on batch 1 with a random h_0")
    assert shapes.detail.endswith("\n  hint: " + HX_IN_ANOTHER_PARAMETER_HINT.format(name="mask"))
    assert verify_rnn(MaskSecond(4, 3), RNNSpec.from_module(MaskSecond(4, 3), takes_hx=False)).ok


@pytest.mark.parametrize("make", [lambda: VariadicRefusesHx(4, 3), lambda: PassesHxOn(4, 3)],
                         ids=["forward(x, *args)", "a helper's TypeError"])
def test_the_takes_no_hx_hint_is_for_a_forward_of_one_argument(make) -> None:
    torch.manual_seed(9)
    with pytest.raises(ContractViolation) as caught:
        verify_rnn(make())
    detail = next(r.detail for r in caught.value.report.results if r.status == "failed")
    assert "the module raised TypeError" in detail and "hint:" not in detail


def test_a_function_gets_the_hx_hints_too() -> None:
    """verify_rnn takes any callable: a function of x alone, or of (x, hx) without a default,
    gets the same hint as such a forward (its own TypeError names the function, not forward)."""
    torch.manual_seed(9)
    gru = nn.GRU(4, 3)

    def run(x):
        return gru(x)

    def run_needs_hx(x, hx):
        return gru(x, hx)

    for fn, hint in ((run, TAKES_NO_HX_HINT), (run_needs_hx, REQUIRES_HX_HINT)):
        with pytest.raises(ContractViolation) as caught:
            verify_rnn(fn, RNNSpec("GRU", 4, 3))
        detail = next(r.detail for r in caught.value.report.results if r.status == "failed")
        assert detail.endswith(f"\n  hint: {hint}"), detail
    assert verify_rnn(run, RNNSpec("GRU", 4, 3, takes_hx=False)).ok


@pytest.mark.parametrize(("entry_id", "contract"), [
    ("centres_over_time", "causality"), ("batch_statistics", "batch_independence"),
    ("keeps_hidden_between_calls", "determinism"), ("detach_every_step", "differentiability"),
    ("extra_tanh_on_output", "reference"),
])
def test_a_faulty_module_that_takes_no_hx_is_still_caught(entry_id: str, contract: str) -> None:
    """The contracts that run without an h_0 still fire: zoo faults that need no h_0 to show,
    behind a forward(x), each fail their contract under takes_hx=False."""
    from zoo import FAULTY

    inner = next(e for e in FAULTY if e.id == entry_id).build()

    class OnlyX(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x)

    spec = RNNSpec.from_module(inner, takes_hx=False)
    with pytest.raises(ContractViolation) as caught:
        verify_rnn(OnlyX(), spec)
    assert contract in {r.name for r in caught.value.report.failures}


class LengthsThenHx(nn.GRU):
    def forward(self, x, lengths=None, hx=None):  # hx third: by name
        return super().forward(x, hx)


class KeywordOnlyHx(nn.LSTM):
    def forward(self, x, *, hx=None):  # hx keyword-only: by name
        return super().forward(x, hx)


class LengthsThenHidden(nn.GRU):
    def forward(self, x, lengths=None, hidden=None):  # a state's name, third: by name
        return super().forward(x, hidden)


class KeywordOnlyState(nn.GRU):
    def forward(self, x, *, state=None):  # a state's name, keyword-only
        return super().forward(x, state)


@pytest.mark.parametrize("make", [lambda: LengthsThenHx(4, 3), lambda: KeywordOnlyHx(4, 3),
                                  lambda: KeywordOnlyState(4, 3, batch_first=True),
                                  lambda: LengthsThenHidden(4, 3)],
                         ids=["lengths-then-hx", "keyword-only-hx", "keyword-only-state", "lengths-then-hidden"])
def test_an_hx_taken_elsewhere_than_second_is_passed_by_its_name(make) -> None:
    """From a user-view review: verify_rnn passed h_0 second, so forward(x, lengths=None, hx=None)
    got it as lengths (initial_state, state_carry and reference failed a correct module) and
    check_forward returned the no-h_0 result without a word; a keyword-only hx was a TypeError
    that the kit answered with "declare RNNSpec(takes_hx=False)"."""
    torch.manual_seed(0)
    module = make()
    report = verify_rnn(module)
    assert report.ok, report
    assert [r.status for r in report.results] == ["passed"] * len(CONTRACT_NAMES)
    spec = RNNSpec.from_module(module)
    x = torch.randn(2, 5, 4) if spec.batch_first else torch.randn(5, 2, 4)
    h = torch.randn(1, 2, 3)
    hx = (h, torch.randn(1, 2, 3)) if spec.has_cell else h
    output, _ = check_forward(module, x, hx, spec=spec)
    name = {LengthsThenHx: "hx", KeywordOnlyHx: "hx", KeywordOnlyState: "state",
            LengthsThenHidden: "hidden"}[type(module)]
    torch.testing.assert_close(output, module(x, **{name: hx})[0], rtol=0, atol=0)
    assert not torch.equal(output, module(x)[0])


def test_reading_where_a_forward_takes_hx_keeps_no_model_alive() -> None:
    """The reading is kept per module class or function code, never per object: a function that
    closes over a model, or a module whose instance replaces its forward, is not held on to."""
    import gc
    import weakref

    def closing_over(model):  # cells that `del` below cannot empty
        return (lambda x, *, hx=None: nn.GRU.forward(model, x, hx)), (lambda x, hx=None: model(x, hx=hx))

    model = nn.GRU(4, 3)
    model.forward, call = closing_over(model)  # the instance's own forward; a closure over the model
    x, h = torch.randn(5, 2, 4), torch.randn(1, 2, 3)
    torch.testing.assert_close(check_forward(model, x, h, spec=RNNSpec("GRU", 4, 3))[0],
                               nn.GRU.forward(model, x, h)[0], rtol=0, atol=0)  # by name: hx=
    check_forward(call, x, h, spec=RNNSpec("GRU", 4, 3))
    dead = weakref.ref(model)
    del model, call
    gc.collect()
    assert dead() is None


class NeedsHx(nn.GRU):
    def forward(self, x, hx):  # no default
        return super().forward(x, hx)


def test_a_module_that_requires_hx_gets_zeros_and_the_report_says_so() -> None:
    torch.manual_seed(5)
    module = NeedsHx(4, 3)
    spec = RNNSpec.from_module(module, requires_hx=True)
    check_forward(module, torch.randn(5, 2, 4), spec=spec)
    report = verify_rnn(module, spec)
    assert report.ok and report.notes == (
        "the module requires hx: where torch's layers default h_0 to zeros, the kit passed zeros",)
    with pytest.raises(ContractViolation) as caught:  # without the declaration: the fix is named
        verify_rnn(module, RNNSpec.from_module(module))
    shapes = next(r for r in caught.value.report.results if r.name == "shapes")
    assert shapes.detail == (
        "the module raised TypeError on the main probe input (input (6, 5, 4) float32 on cpu): "
        "NeedsHx.forward() missing 1 required positional argument: 'hx'\n"
        f"  hint: {REQUIRES_HX_HINT}")


class NeedsLengths(nn.GRU):
    def forward(self, x, lengths, hx=None):  # its own second argument: zeros would be wrong there
        return super().forward(x, hx)


class HelperMissesItsArgument(nn.GRU):
    def _step(self, x, hx):
        return super().forward(x, hx)

    def forward(self, x, hx=None):
        return self._step(x)  # a bug in the module, not a forward without a default for hx


class ForwardsWithoutHx(NeedsHx):
    def forward(self, x, hx):
        return NeedsHx.forward(self, x)  # the parent's forward(x, hx) gets no hx: its TypeError


@pytest.mark.parametrize(("make", "declared", "hinted"), [
    (lambda: NeedsHx(4, 3), False, True),
    (lambda: NeedsLengths(4, 3), False, False),
    (lambda: HelperMissesItsArgument(4, 3), False, False),
    (lambda: ForwardsWithoutHx(4, 3), True, False),  # declared already: the hint would repeat it
], ids=["forward(x, hx)", "forward(x, lengths, hx=None)", "a helper's argument", "declared"])
def test_the_requires_hx_hint_is_for_a_forward_without_a_default_for_hx(make, declared: bool, hinted: bool) -> None:
    torch.manual_seed(5)
    module = make()
    with pytest.raises(ContractViolation) as caught:
        verify_rnn(module, RNNSpec.from_module(module, requires_hx=declared))
    shapes = next(r for r in caught.value.report.results if r.name == "shapes")
    assert "the module raised TypeError" in shapes.detail
    assert shapes.detail.endswith(f"\n  hint: {REQUIRES_HX_HINT}") is hinted


@pytest.mark.parametrize(("make", "spec", "said", "hint"), [
    (Encoder, RNNSpec("GRU", 4, 3),
     "torch's recurrent layers return (output, h_n), got a Tensor (6, 5, 3)", OUTPUT_ONLY_HINT),
    (lambda: nn.GRU(4, 3), RNNSpec("GRU", 4, 3, returns_states=False),
     "a module declared output-only returns its output alone, got a tuple of length 2", RETURNS_STATES_HINT),
], ids=["output-only-undeclared", "declared-output-only-returns-states"])
def test_a_result_against_the_output_only_declaration_is_told_the_spec_field(make, spec, said, hint) -> None:
    """An encoder that returns one tensor, checked as a layer that returns states: shapes names
    the declaration that fits it (and no requires_hx hint: nothing raised on a missing hx). The
    opposite mistake, from a user-view review, got "output: expected a Tensor ..., got tuple" and
    no hint: it is told to drop the declaration."""
    torch.manual_seed(0)
    with pytest.raises(ContractViolation) as caught:
        verify_rnn(make(), spec)
    shapes = next(r for r in caught.value.report.results if r.name == "shapes")
    assert shapes.detail == (
        "on the main probe input: GRU(4, 3) broke its contract in its result on input (6, 5, 4) "
        f"float32 on cpu [checker: {get_checker()}]\n\n"
        f"result: {said}\n"
        f"  hint: {hint['hint']}")


def test_a_merged_layer_axis_is_named_and_nothing_cascades() -> None:
    class Merged(nn.LSTM):
        def forward(self, x, hx=None):
            out, (h, c) = super().forward(x, hx)
            return out, (h.transpose(0, 1).reshape(h.shape[1], -1), c)

    torch.manual_seed(6)
    with pytest.raises(ContractViolation) as caught:
        verify_rnn(Merged(4, 3, num_layers=2))
    report = caught.value.report
    assert [r.name for r in report.failures] == ["shapes"]
    assert {r.detail for r in report.results[1:]} == {"not run: shapes failed"}
    (shape,) = caught.value.violations[0].causes
    assert (shape.tensor, shape.mistake) == ("h_n", "merged_axes")
    assert shape.hint == ("h_n merged its layers*directions and hidden axes into one: got (batch, "
                          "layers*directions*hidden); torch keeps h_n as (layers*directions, batch, hidden)")


TARGETS = textwrap.dedent("""
    import torch
    from torch import nn


    def gru_cell():
        return nn.GRUCell(4, 3)


    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = nn.GRUCell(4, 3)

        def forward(self, x):  # output only, its own names
            h, outs = x.new_zeros(x.shape[1], 3), []
            for t in range(x.shape[0]):
                h = self.cell(x[t], h)
                outs.append(h)
            return torch.stack(outs)


    LAYER = Layer()
    CELL = LAYER.cell


    class OnlyX(nn.GRU):
        def forward(self, x):  # returns (output, h_n), takes no hx
            return super().forward(x)


    ONLY_X = OnlyX(4, 3)
""")


def test_the_command_line_takes_every_convention_as_spec_fields(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "conv_targets.py").write_text(TARGETS)
    monkeypatch.syspath_prepend(str(tmp_path))

    def statuses(*argv: str) -> dict[str, str]:
        assert main([*argv, "--device", "cpu", "--format", "json"]) == 0, capsys.readouterr().err
        return {c["name"]: c["status"] for c in json.loads(capsys.readouterr().out)["runs"][0]["contracts"]}

    assert statuses("conv_targets:gru_cell")["state_carry"] == "passed"  # a torch cell: no spec
    layer = statuses("conv_targets:LAYER", "--spec", "mode=GRU", "--spec", "input_size=4",
                     "--spec", "hidden_size=3", "--spec", "returns_states=false", "--cell", "conv_targets:CELL")
    assert layer["final_state"] == "not applicable" and layer["cell_equivalence"] == "passed"
    assert layer["reference"] == "passed"
    only_x = statuses("conv_targets:ONLY_X", "--spec", "takes_hx=false")
    assert only_x["initial_state"] == "not applicable" and only_x["unbatched"] == "passed"


def test_takes_hx_false_excludes_what_needs_an_hx() -> None:
    with pytest.raises(Exception, match=r"^requires_hx=True and takes_hx=False contradict each other: a module "
                                        r"that takes no hx cannot require one$"):
        RNNSpec("GRU", 4, 3, requires_hx=True, takes_hx=False)
    with pytest.raises(Exception, match=r"convention='cell' excludes takes_hx=False$"):
        RNNSpec("GRU", 4, 3, convention="cell", takes_hx=False)
    assert RNNSpec("GRU", 4, 3, takes_hx=False).describe() == "GRU(4, 3)"
    assert not RNNSpec("GRU", 4, 3, takes_hx=False).gives_hx
    assert not RNNSpec("GRU", 4, 3, returns_states=False).gives_hx


def test_render_of_a_cell_spec() -> None:
    assert RNNSpec.from_module(nn.LSTMCell(4, 3)).describe() == "LSTMCell(4, 3)"
    with pytest.raises(Exception, match=r"^a cell is one layer in one direction without packed input, and its "
                                        r"step returns its state: convention='cell' excludes num_layers=2, "
                                        r"returns_states=False$"):
        RNNSpec("GRU", 4, 3, convention="cell", num_layers=2, returns_states=False)
    with pytest.raises(TypeError, match=r"^checked\(\) checks whole-sequence calls, and GRUCell\(4, 3\) is "
                                        r"called one step at a time: check the layer that unrolls it, or verify_rnn\(cell\)$"):
        __import__("rnn_contracts").checked(nn.GRUCell(4, 3))


def test_checked_and_check_forward_agree_on_an_output_only_module_that_returns_a_tuple() -> None:
    from rnn_contracts import checked

    spec = RNNSpec("GRU", 4, 3, returns_states=False)
    torch.manual_seed(8)
    liar = nn.GRU(4, 3)  # declared output-only, returns (output, h_n)
    said = r"result: a module declared output-only returns its output alone, got a tuple of length 2"
    with pytest.raises(ContractViolation, match=said):
        check_forward(liar, torch.randn(5, 2, 4), spec=spec)
    with pytest.raises(ContractViolation, match=said):
        checked(liar, spec)(torch.randn(5, 2, 4))


def test_deployment_contracts_say_why_they_do_not_apply_to_other_conventions() -> None:
    report = verify_rnn(nn.GRUCell(4, 3), contracts=[], deploy=["export", "compile"])
    assert {(r.name, r.status) for r in report.results} == {("export", "not applicable"), ("compile", "not applicable")}
    assert report.results[0].detail == (
        "the deployment contracts call the deployed module as torch's layers are called, and this "
        "module is a cell: deploy and check the layer or model that calls it")


def test_cell_equivalence_can_be_named_wherever_contracts_are(capsys) -> None:
    class Layer(nn.Module):
        mode, input_size, hidden_size = "GRU", 4, 3

        def __init__(self) -> None:
            super().__init__()
            self.cell = nn.GRUCell(4, 3)

        def forward(self, x, hx=None):
            h, outs = (x.new_zeros(x.shape[1], 3) if hx is None else hx[0]), []
            for t in range(x.shape[0]):
                h = self.cell(x[t], h)
                outs.append(h)
            return torch.stack(outs), h[None]

    layer = Layer()
    report = verify_rnn(layer, contracts=["cell_equivalence"], cell=layer.cell)
    assert [(r.name, r.status) for r in report.results] == [("cell_equivalence", "passed")]
    assert main(["--contract", "cell_equivalence", "--device", "cpu"]) == 2
    assert capsys.readouterr().err.strip() == (
        "rnn-contracts: error: --contract cell_equivalence: needs --cell TARGET, the cell the layer unrolls")
    from pytest_rnn_contracts import RNNContractTests

    # a class that runs it (its rnn_cell fixture) may declare it a known failure
    type("TestX", (RNNContractTests,), {"known_failures": {"cell_equivalence": "its loop skips a step"},
                                        "rnn_cell": pytest.fixture(lambda self, rnn_module: rnn_module.cell)})
