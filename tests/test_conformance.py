"""The conformance suite (pytest_rnn_contracts.conformance.RNNContractTests), run the way a project runs it:
a subclass in a pytester project, collected and run in-process with the installed plugin.

Every inner run passes ``--device cpu`` so its counts are exact on a machine with a GPU too, and
leaves out plugins that only cost time in-process: unraisableexception and threadexception run
gc.collect() several times at session end, about 1 s per inner run with torch's heap (measured
here: 1.0 s -> 0.05 s for a collection); randomly and benchmark have nothing to do there.
"""
from __future__ import annotations

import textwrap

import pytest

from rnn_contracts import CONTRACT_NAMES
from pytest_rnn_contracts import RNNContractTests
from pytest_rnn_contracts.conformance import missing_module_message, plugin_disabled_message

pytest_plugins = ["pytester"]

#: The top of every inner test module: the suite, and a layer that breaks one contract.
HEADER = '''
import pytest
import torch
from rnn_contracts import RNNSpec
from pytest_rnn_contracts import RNNContractTests


class DetachedRNN(torch.nn.RNN):
    """torch's RNN, but h_n is detached: breaks differentiability only."""

    def forward(self, x, hx=None):
        output, h_n = super().forward(x, hx)
        return output, h_n.detach()
'''


INNER_ARGS = ("--rnn-device", "cpu", "-p", "no:randomly", "-p", "no:benchmark",
              "-p", "no:unraisableexception", "-p", "no:threadexception")


def _run(pytester: pytest.Pytester, body: str, *args: str) -> pytest.RunResult:
    """Write ``body`` (a test class) under HEADER as test_scenario.py and run pytest on it."""
    pytester.makepyfile(test_scenario=HEADER + "\n\n" + textwrap.dedent(body))
    return pytester.runpytest(*INNER_ARGS, *args)


N = len(CONTRACT_NAMES)
#: (id, class source, outcomes, lines that must appear in the output, in order)
SCENARIOS = [
    ("torch-rnn-passes", '''
        class TestRNN(RNNContractTests):
            @pytest.fixture
            def rnn_module(self):
                return torch.nn.RNN(4, 3)
     ''', {"passed": N}, []),
    ("not-applicable-skips-with-reason", '''
        class TestGRU(RNNContractTests):
            @pytest.fixture
            def rnn_module(self):
                return torch.nn.GRU(4, 3)

            @pytest.fixture
            def rnn_spec(self, rnn_module):
                return RNNSpec.from_module(rnn_module, packed=False, unbatched=False)
     ''', {"passed": N - 2, "skipped": 2}, [
        "SKIPPED [[]1[]] *conformance.py:*: packed does not apply: the spec declares no "
        "PackedSequence support (RNNSpec.packed=False)",
        "SKIPPED [[]1[]] *conformance.py:*: unbatched does not apply: the spec declares no "
        "unbatched support (RNNSpec.unbatched=False)",
    ]),
    ("known-failure-xfails", '''
        class TestDetached(RNNContractTests):
            known_failures = {"differentiability": "h_n is detached on purpose"}

            @pytest.fixture
            def rnn_module(self):
                return DetachedRNN(4, 3)
     ''', {"passed": N - 1, "xfailed": 1}, [
        "XFAIL test_scenario.py::TestDetached::test_contract[[]cpu-differentiability[]] - "
        "h_n is detached on purpose",
    ]),
    ("undeclared-failure-names-the-contract", '''
        class TestDetached(RNNContractTests):
            @pytest.fixture
            def rnn_module(self):
                return DetachedRNN(4, 3)
     ''', {"passed": N - 1, "failed": 1}, [
        # verify_rnn's title and evidence (their wording is pinned in verify_rnn's own tests)
        "E*ContractViolation: *DetachedRNN(4, 3)*differentiability",
        "E*[[]differentiability[]] *",
        "FAILED test_scenario.py::TestDetached::test_contract[[]cpu-differentiability[]]*",
    ]),
    ("stale-known-failure-is-strict", '''
        class TestRNN(RNNContractTests):
            known_failures = {"determinism": "was flaky once"}

            @pytest.fixture
            def rnn_module(self):
                return torch.nn.RNN(4, 3)
     ''', {"passed": N - 1, "failed": 1}, [
        "[[]XPASS(strict)[]] was flaky once",
        "FAILED test_scenario.py::TestRNN::test_contract[[]cpu-determinism[]]*",
    ]),
    ("known-failure-that-does-not-apply-is-stale", '''
        class TestGRU(RNNContractTests):
            known_failures = {"packed": "PackedSequence support is planned"}

            @pytest.fixture
            def rnn_module(self):
                return torch.nn.GRU(4, 3)

            @pytest.fixture
            def rnn_spec(self, rnn_module):
                return RNNSpec.from_module(rnn_module, packed=False)
     ''', {"passed": N - 1, "failed": 1}, [
        # a skip here would hide a declaration that promises nothing any more (a review)
        "packed is declared a known failure in TestGRU.known_failures ('PackedSequence support is "
        "planned') but does not apply: the spec declares no PackedSequence support "
        "(RNNSpec.packed=False); remove it from known_failures",
        "FAILED test_scenario.py::TestGRU::test_contract[[]cpu-packed[]] - Failed: packed *",
    ]),
    ("known-failure-never-hides-a-bad-spec", '''
        class TestLinear(RNNContractTests):
            known_failures = {"packed": "not a recurrent layer"}

            @pytest.fixture
            def rnn_module(self):
                return torch.nn.Linear(4, 3)
     ''', {"failed": N}, [
        "TestLinear: Linear carries no spec (it has no attribute mode, input_size, hidden_size).",
    ]),
]


@pytest.mark.parametrize(("source", "outcomes", "lines"),
                         [pytest.param(*rest, id=sid) for sid, *rest in SCENARIOS])
def test_outcomes(pytester: pytest.Pytester, source: str, outcomes: dict[str, int],
                  lines: list[str]) -> None:
    """Each contract is its own item; not applicable skips, known failures xfail strictly."""
    result = _run(pytester, source, "-ra")
    result.assert_outcomes(**outcomes)
    result.stdout.fnmatch_lines(lines)


BROKEN_SHAPES = '''
    class TestBroken(RNNContractTests):
        @pytest.fixture
        def rnn_module(self):
            return torch.nn.GRU(4, 3)

        @pytest.fixture
        def rnn_spec(self):
            return RNNSpec("LSTM", 4, 3)  # the module returns one tensor as its state: shapes fails
'''


def test_a_contract_whose_prerequisite_failed_skips_only_where_that_item_runs(pytester: pytest.Pytester) -> None:
    """The other items of a module that breaks shapes skip, pointing at shapes' item, which
    fails. Where shapes' item is deselected, they fail with its evidence: skipped, the run was
    green (from a fuzzing helper: -k "not shapes" turned a broken module's run green)."""
    result = _run(pytester, BROKEN_SHAPES, "-ra")
    result.assert_outcomes(failed=1, skipped=N - 1)
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] *: finite not run: shapes failed (its own item fails with "
                                 "the evidence)"])
    result = _run(pytester, BROKEN_SHAPES, "-k", "not shapes")
    result.assert_outcomes(failed=N - 1)
    result.stdout.fnmatch_lines(["*finite not run: shapes failed, and its item is not in this session:",
                                 "*[[]shapes[]] *"])


def test_a_prerequisite_item_is_found_among_items_parametrized_with_tensors(pytester: pytest.Pytester) -> None:
    """The user's own fixture parametrized with tensors: comparing the items' parameters with ==
    raised torch's "Boolean value of Tensor is ambiguous" (found by a review); they are compared
    by identity."""
    result = _run(pytester, '''
        @pytest.fixture(params=[torch.zeros(2), torch.ones(2)], ids=["zeros", "ones"])
        def init(request):
            return request.param

        class TestBroken(RNNContractTests):
            @pytest.fixture
            def rnn_module(self, init):
                return torch.nn.GRU(4, 3)

            @pytest.fixture
            def rnn_spec(self):
                return RNNSpec("LSTM", 4, 3)
     ''', "-k", "shapes or finite")
    result.assert_outcomes(failed=2, skipped=2)


def test_a_suite_whose_name_keeps_it_from_being_collected_is_warned_about(pytester: pytest.Pytester) -> None:
    """A class that defines rnn_module is a suite: not collected for its name, it says so (a
    review: such a suite vanished silently); a shared base without rnn_module stays quiet."""
    result = _run(pytester, '''
        class GRUContract(RNNContractTests):
            @pytest.fixture
            def rnn_module(self):
                return torch.nn.GRU(4, 3)

        class CommonChecks(RNNContractTests):
            pass

        def test_other():
            pass
     ''', "-k", "shapes or other")
    assert result.parseoutcomes()["passed"] == 1  # test_other alone
    result.stdout.fnmatch_lines(["*PytestCollectionWarning: GRUContract defines rnn_module but its name does "
                                 "not match python_classes, so it is not collected: name it TestGRUContract, "
                                 "or set __test__ = True on it"])
    assert not [line for line in result.outlines if "CommonChecks" in line]


def test_a_suite_whose_methods_python_functions_misses_is_warned_about(pytester: pytest.Pytester) -> None:
    """A project's ``python_functions = check_*`` left a collected suite with no item, silently;
    with test_* among the patterns it runs and stays quiet."""
    suite = '''
        class TestGRU(RNNContractTests):
            @pytest.fixture
            def rnn_module(self):
                return torch.nn.GRU(4, 3)

            @pytest.fixture
            def rnn_cell(self, rnn_module):
                return torch.nn.GRUCell(4, 3)

        def check_other():
            pass
     '''
    result = _run(pytester, suite, "-o", "python_functions=check_*", "-k", "shapes or other")
    result.assert_outcomes(passed=1)  # check_other alone
    result.stdout.fnmatch_lines(["*PytestCollectionWarning: TestGRU is collected but python_functions does "
                                 "not match test_contract or test_cell_equivalence, so its contracts are "
                                 "not: add test_* to python_functions"])
    result = _run(pytester, suite, "-o", "python_functions=check_* test_*", "-k", "shapes or other")
    result.assert_outcomes(passed=2)
    assert "PytestCollectionWarning" not in result.stdout.str()


def test_a_shared_base_of_the_users_own_is_not_a_test_class(pytester: pytest.Pytester) -> None:
    """Subclasses are collected by name (python_classes), as any test class: a base without the
    Test prefix was collected too (the kit sets __test__ = True to undo RNNContractTests' False,
    which pytest reads as "whatever the name"), and each of its items errored for lack of
    rnn_module (found by a fuzzing helper)."""
    result = _run(pytester, '''
        class CommonChecks(RNNContractTests):
            contract_timeout = 60.0

        class TestGRU(CommonChecks):
            @pytest.fixture
            def rnn_module(self):
                return torch.nn.GRU(4, 3)
     ''', "-k", "shapes or finite")
    result.assert_outcomes(passed=2)
    result = _run(pytester, '''
        class CommonChecks(RNNContractTests):
            pass
     ''', "-o", "python_classes=Test* Common*", "-k", "shapes")
    result.assert_outcomes(errors=1)  # named as a test class: collected, and told what to write


def test_what_a_fixture_returned_wrong_is_named_with_the_fix(pytester: pytest.Pytester) -> None:
    """From a fuzzing helper: rnn_spec returning a dict gave verify_rnn's TypeError about spec=,
    rnn_module returning None told the user to add rnn_spec, rnn_cell returning None gave
    'unknown contract(s) cell_equivalence'."""
    result = _run(pytester, '''
        class TestNone(RNNContractTests):
            @pytest.fixture
            def rnn_module(self):
                return None

        class TestSpecDict(RNNContractTests):
            @pytest.fixture
            def rnn_module(self):
                return torch.nn.GRU(4, 3)

            @pytest.fixture
            def rnn_spec(self):
                return {"mode": "GRU"}

        class TestNoCell(RNNContractTests):
            @pytest.fixture
            def rnn_module(self):
                return torch.nn.GRU(4, 3)

            @pytest.fixture
            def rnn_cell(self):
                return None
     ''', "-k", "shapes or cell_equivalence")
    result.assert_outcomes(failed=3, passed=1)
    result.stdout.fnmatch_lines_random([
        "*TestNone.rnn_module returned None: it must return the recurrent module itself, an instance "
        "(e.g. torch.nn.GRU(4, 3))",
        "*TestSpecDict.rnn_spec returned a dict: it must return an rnn_contracts.RNNSpec, or None to read "
        "the spec off the module",
        "*TestNoCell.rnn_cell returned None: it must return the cell instance the layer unrolls (e.g. "
        "rnn_module.cell)"])


def test_one_item_per_contract_and_device_with_readable_ids(pytester: pytest.Pytester) -> None:
    """Ids are ``test_contract[<device>-<contract>]``; the imported base class is never collected,
    even when ``python_classes`` would match its name."""
    result = _run(pytester, '''
        class TestRNN(RNNContractTests):
            @pytest.fixture
            def rnn_module(self):
                return torch.nn.RNN(4, 3)
    ''', "--collect-only", "-q", "-o", "python_classes=Test *Tests")
    collected = [line for line in result.outlines if "::" in line]
    assert collected == [f"test_scenario.py::TestRNN::test_contract[cpu-{name}]"
                         for name in CONTRACT_NAMES]


def test_missing_rnn_module_names_the_fixture_and_shows_the_code(pytester: pytest.Pytester) -> None:
    result = _run(pytester, '''
        class TestForgot(RNNContractTests):
            pass
    ''')
    result.assert_outcomes(errors=len(CONTRACT_NAMES))
    assert missing_module_message("TestForgot") in result.stdout.str()


def test_a_session_without_the_plugin_is_told_what_to_do(pytester: pytest.Pytester) -> None:
    """-p no:rnn_contracts leaves the suite without its devices: each item says so in one line,
    not pytest's "fixture 'rnn_device' not found"; with the plugin back, the same file passes."""
    pytester.makepyfile(test_scenario=HEADER + "\n\n" + textwrap.dedent('''
        class TestGRU(RNNContractTests):
            @pytest.fixture
            def rnn_module(self):
                return torch.nn.GRU(4, 3)
    '''))
    result = pytester.runpytest("-p", "no:rnn_contracts", *INNER_ARGS[2:], "-k", "shapes or finite")
    result.assert_outcomes(errors=2)
    # the message on a line of its own in each item's error (the summary lines quote it too, cut
    # to the terminal's width except where CI is set)
    assert [line for line in result.outlines if line == plugin_disabled_message("TestGRU")] == [
        plugin_disabled_message("TestGRU")] * 2
    assert "not found" not in result.stdout.str()
    pytester.runpytest(*INNER_ARGS, "-k", "shapes or finite").assert_outcomes(passed=2)


def test_fixtures_of_the_suite_defined_outside_the_class_are_used_or_named(pytester: pytest.Pytester) -> None:
    """rnn_module and rnn_spec in a conftest.py are the suite's (their defaults on the base class
    shadowed them: the spec declared there was ignored in silence, a user-view review); an
    rnn_cell there adds no cell_equivalence item, which a collection warning says. Kills: the
    defaults back on the class; the warning dropped."""
    pytester.makeconftest('''
        import pytest, torch
        from rnn_contracts import RNNSpec

        @pytest.fixture
        def rnn_module():
            return torch.nn.GRU(4, 3)

        @pytest.fixture
        def rnn_spec():
            return RNNSpec("GRU", 4, 3, packed=False)

        @pytest.fixture
        def rnn_cell():
            return torch.nn.GRUCell(4, 3)
    ''')
    pytester.makepyfile(test_scenario=HEADER + "\n\nclass TestGRU(RNNContractTests):\n    pass\n")
    result = pytester.runpytest(*INNER_ARGS, "-rs", "-k", "shapes or packed")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "*TestGRU: an rnn_cell fixture outside the class adds no cell_equivalence item to it: define "
        "rnn_cell on TestGRU (or on a base class of yours)",
        "*packed does not apply: the spec declares no PackedSequence support (RNNSpec.packed=False)"])


def test_a_skip_on_a_prerequisite_that_held_in_its_own_item_fails_the_session(pytester: pytest.Pytester) -> None:
    """finite skips when shapes fails in finite's own run, trusting shapes' item to fail with the
    evidence; a module whose shapes holds in that item and breaks later (a warn-once notice under
    filterwarnings = error did so, a review) left a green session. The claim is checked when the
    session ends. Kills: the check dropped."""
    result = _run(pytester, '''
        class ShapesBreakLater(torch.nn.GRU):
            """Right for its first 10 calls (shapes' own item), then one output feature short."""
            calls = 0

            def forward(self, x, hx=None):
                ShapesBreakLater.calls += 1
                output, h_n = super().forward(x, hx)
                return (output if ShapesBreakLater.calls <= 10 else output[..., :-1]), h_n

        class TestFlaky(RNNContractTests):
            @pytest.fixture
            def rnn_module(self):
                return ShapesBreakLater(4, 3)
    ''', "-k", "shapes or finite")
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*rnn-contracts: skipped on a failure that did not happen again*",
        "test_scenario.py::TestFlaky::test_contract[[]cpu-finite[]] skipped because "
        "test_scenario.py::TestFlaky::test_contract[[]cpu-shapes[]] failed in its run, but "
        "test_scenario.py::TestFlaky::test_contract[[]cpu-shapes[]] passed: the module's verdict changes from run to run"])


def test_plugin_disabled_message_is_pinned() -> None:
    assert plugin_disabled_message("TestGRU") == (
        "TestGRU subclasses RNNContractTests, whose devices come from the rnn-contracts pytest plugin, "
        "and this session does not load it (-p no:rnn_contracts, or plugin autoloading off): drop that "
        "option, or add -p rnn_contracts")


def test_missing_module_message_is_pinned() -> None:
    assert missing_module_message("TestForgot") == (
        "TestForgot subclasses RNNContractTests but does not define the fixture 'rnn_module'.\n"
        "Add it to the class, returning a fresh module for each test:\n"
        "\n"
        "    @pytest.fixture\n"
        "    def rnn_module(self):\n"
        "        return MyRNN(...)\n"
    )


_ALL = ", ".join(CONTRACT_NAMES)


@pytest.mark.parametrize(("known_failures", "message"), [
    pytest.param({"determinsm": "flaky"},
                 f"TestTypo.known_failures names no contract: 'determinsm' (did you mean "
                 f"'determinism'?); contracts: {_ALL}", id="typo-with-hint"),
    pytest.param({"speed": "slow"},
                 f"TestTypo.known_failures names no contract: 'speed'; contracts: {_ALL}",
                 id="unknown-name"),
    pytest.param({"packed": ""},
                 "TestTypo.known_failures['packed'] must be a non-empty reason (str), got ''",
                 id="empty-reason"),
    pytest.param(["packed"],
                 "TestTypo.known_failures must be a dict of contract name -> reason, got list",
                 id="not-a-mapping"),
])
def test_bad_known_failures_fail_at_class_creation(known_failures: object, message: str) -> None:
    with pytest.raises(TypeError) as excinfo:
        type("TestTypo", (RNNContractTests,), {"known_failures": known_failures})
    assert str(excinfo.value) == message


@pytest.mark.parametrize(("timeout", "message"), [
    (0, "a positive number of seconds below 1e6 or None (no limit), got 0"),
    (-1, "a positive number of seconds below 1e6 or None (no limit), got -1"),
    (float("nan"), "a positive number of seconds below 1e6 or None (no limit), got nan"),
    ("5", "a number of seconds or None (no limit), got str '5'"),
    (True, "a number of seconds or None (no limit), got bool True"),
])
def test_a_bad_contract_timeout_fails_at_class_creation(timeout: object, message: str) -> None:
    """Checked once, with verify_rnn's rule, as known_failures are, not as a verify_rnn error in
    every item."""
    with pytest.raises(TypeError) as excinfo:
        type("TestSlow", (RNNContractTests,), {"contract_timeout": timeout})
    assert str(excinfo.value) == f"TestSlow.contract_timeout takes {message}"


def test_only_subclasses_are_test_classes() -> None:
    class TestMine(RNNContractTests):
        pass

    class Abstract(RNNContractTests):
        __test__ = False

    assert (RNNContractTests.__test__, TestMine.__test__, Abstract.__test__) == (False, True, False)


def test_a_module_without_spec_names_the_rnn_spec_fixture(pytester: pytest.Pytester) -> None:
    result = _run(pytester, '''
        class TestBare(RNNContractTests):
            @pytest.fixture
            def rnn_module(self):
                return torch.nn.Linear(4, 3)
    ''', "-k", "shapes")
    result.assert_outcomes(failed=1, deselected=N - 1)
    result.stdout.fnmatch_lines([
        "TestBare: Linear carries no spec (it has no attribute mode, input_size, hidden_size).",
        "Give it as data: add the fixture 'rnn_spec' to the class, e.g.",
        "    def rnn_spec(self, rnn_module):",
        "        return RNNSpec.from_module(rnn_module, mode=\"GRU\", input_size=..., hidden_size=...)",
    ])
    assert "check_forward(" not in result.stdout.str() and "Traceback" not in result.stdout.str()


def test_a_cell_and_the_layer_that_unrolls_it(pytester: pytest.Pytester) -> None:
    result = _run(pytester, '''
        class Layer(torch.nn.Module):
            mode, input_size, hidden_size = "GRU", 4, 3

            def __init__(self, skip_first=False):
                super().__init__()
                self.cell, self.skip_first = torch.nn.GRUCell(4, 3), skip_first

            def forward(self, x, hx=None):
                h = x.new_zeros(x.shape[1], 3) if hx is None else hx[0]
                outs = []
                for t in range(x.shape[0]):
                    if not (self.skip_first and t == 0):
                        h = self.cell(x[t], h)
                    outs.append(h)
                return torch.stack(outs), h[None]

        class TestCellOnly(RNNContractTests):
            @pytest.fixture
            def rnn_module(self):
                return torch.nn.GRUCell(4, 3)

        class TestLayer(RNNContractTests):
            @pytest.fixture
            def rnn_module(self):
                return Layer(skip_first=True)

            @pytest.fixture
            def rnn_cell(self, rnn_module):
                return rnn_module.cell
    ''', "-k", "cell_equivalence or TestCellOnly and shapes")
    result.assert_outcomes(passed=1, failed=1, deselected=2 * N - 1)
    result.stdout.fnmatch_lines([
        "*[[]cell_equivalence[]] with no h_0 the layer must equal its cell unrolled over time: output*",
        "FAILED test_scenario.py::TestLayer::test_cell_equivalence[[]cpu[]]*",
    ])
