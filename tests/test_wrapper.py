"""rnn_contracts.checked: the always-on wrapper and decorator (verdicts cached per call signature)."""
from __future__ import annotations

import importlib
import warnings

import pytest
import torch
from import_helpers import the_library_imported_afresh
from torch.nn.utils.rnn import pack_padded_sequence

import rnn_contracts
from rnn_contracts import CheckedModule, ContractViolation, RNNSpec, check_forward, checked, unchecked
from rnn_contracts import wrapper as wrapper_module

SPEC = RNNSpec(mode="RNN", input_size=4, hidden_size=2)


class Flaky(torch.nn.Module):
    """Right on the first call, wrong from the second on (``state``: the state it returns)."""

    mode, input_size, hidden_size = "RNN", 4, 2

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x, hx=None):
        self.calls += 1
        seq, batch, _ = x.shape
        return x.new_zeros(seq, batch, self.hidden_size), self.state(x, batch, first=self.calls == 1)

    def state(self, x, batch, *, first):
        """h_n laid out batch-first from the second call on."""
        return x.new_zeros(1, batch, 2) if first else x.new_zeros(batch, 1, 2)


@pytest.fixture
def rnn(rnn_seeded) -> torch.nn.RNN:
    return torch.nn.RNN(4, 2)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts the checks the wrapper runs on signatures it has not judged (inputs, results)."""
    counts = {"inputs": 0, "calls": 0}
    real_inputs, real_result = wrapper_module.checked_inputs, wrapper_module._check_result

    def inputs(*a, **k):
        counts["inputs"] += 1
        return real_inputs(*a, **k)

    def result(*a, **k):
        counts["calls"] += 1
        return real_result(*a, **k)

    monkeypatch.setattr(wrapper_module, "checked_inputs", inputs)
    monkeypatch.setattr(wrapper_module, "_check_result", result)
    return counts


def test_wrapped_module_returns_the_modules_result(rnn: torch.nn.RNN) -> None:
    x = torch.randn(5, 3, 4)
    wrapped = checked(rnn)
    assert isinstance(wrapped, CheckedModule)
    out, h = wrapped(x)
    ref_out, ref_h = rnn(x)
    assert torch.equal(out, ref_out) and torch.equal(h, ref_h)


def test_a_known_signature_is_not_checked_again(rnn: torch.nn.RNN, counted: dict[str, int]) -> None:
    wrapped = checked(rnn)
    for _ in range(5):
        wrapped(torch.randn(5, 3, 4))
    assert counted == {"inputs": 1, "calls": 1}
    wrapped(torch.randn(6, 3, 4))  # a new seq length is a new signature: checked in full
    assert counted == {"inputs": 2, "calls": 2}
    wrapped(torch.randn(5, 3, 4).double().float())  # same signature again
    assert counted == {"inputs": 2, "calls": 2}


def test_a_new_result_signature_is_checked_even_for_a_known_input(counted: dict[str, int]) -> None:
    wrapped = checked(Flaky())
    x = torch.zeros(5, 3, 4)
    wrapped(x)
    with pytest.raises(ContractViolation, match=r"h_n is laid out batch-first"):
        wrapped(x)
    assert counted == {"inputs": 1, "calls": 2}


def test_a_wrong_input_is_diagnosed_before_the_module_runs(rnn: torch.nn.RNN) -> None:
    calls = []
    rnn.register_forward_pre_hook(lambda *a: calls.append(1))
    wrapped = checked(rnn)
    bad = torch.randn(5, 3, 7)
    with pytest.raises(ContractViolation) as caught:
        wrapped(bad)
    assert calls == []
    with pytest.raises(ContractViolation) as direct:
        check_forward(rnn, bad)
    assert str(caught.value) == str(direct.value)  # the full diagnosis of check_forward


def test_the_wrapper_reads_spec_attributes_through(rnn: torch.nn.RNN) -> None:
    wrapped = checked(rnn)
    assert wrapped.hidden_size == 2
    assert RNNSpec.from_module(wrapped) == RNNSpec.from_module(rnn)


@pytest.mark.parametrize("kind", ["lstm_hx", "packed", "unbatched"])
def test_the_general_path_checks_and_caches(kind: str, rnn_seeded, counted: dict[str, int]) -> None:
    if kind == "lstm_hx":
        module = torch.nn.LSTM(4, 3)
        args = (torch.randn(5, 2, 4), (torch.zeros(1, 2, 3), torch.zeros(1, 2, 3)))
        bad = (args[0], torch.zeros(1, 2, 3))  # one tensor where LSTM wants (h_0, c_0)
    elif kind == "packed":
        module = torch.nn.GRU(4, 3)
        args = (pack_padded_sequence(torch.randn(5, 2, 4), torch.tensor([5, 3])),)
        bad = (pack_padded_sequence(torch.randn(5, 2, 6), torch.tensor([5, 3])),)
    else:
        module = torch.nn.RNN(4, 3)
        args = (torch.randn(5, 4),)
        bad = (torch.randn(5, 4, 4, 4),)
    wrapped = checked(module)
    wrapped(*args)
    wrapped(*args)
    assert counted == {"inputs": 1, "calls": 1}
    with pytest.raises(ContractViolation):
        wrapped(*bad)


def test_decorated_forward_method_takes_the_spec_from_self() -> None:
    class Loop(torch.nn.Module):
        mode, input_size, hidden_size = "RNN", 4, 2

        @checked
        def forward(self, x, hx=None):
            seq, batch, _ = x.shape
            return x.new_zeros(seq, batch, 2), x.new_zeros(batch, 1, 2)  # h_n batch-first

    with pytest.raises(ContractViolation, match="h_n is laid out batch-first"):
        Loop()(torch.zeros(5, 3, 4))


class MaskedEncoder(torch.nn.Module):
    """A GRU encoder whose forward names its state h and takes a keyword-only mask."""

    mode, input_size, hidden_size = "GRU", 4, 3

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.core = torch.nn.GRU(4, 3)

    def forward(self, x, h=None, *, mask=None):
        output, h = self.core(x, h)
        return (output if mask is None else output * mask), h


class DecoratedMaskedEncoder(MaskedEncoder):
    @checked
    def forward(self, x, h=None, *, mask=None):
        return super().forward(x, h, mask=mask)


@pytest.mark.parametrize("make", [DecoratedMaskedEncoder, lambda: checked(MaskedEncoder())],
                         ids=["@checked", "checked(module)"])
def test_the_forwards_own_keywords_pass_and_its_hx_is_checked_by_name(make) -> None:
    """The decorator's wrapper took (self, x, hx=None): a keyword-only mask, or the state by the
    forward's own name, was a TypeError. And checked(module) read hx from kwargs only as "hx": a
    batch-first state given as h= went unchecked to torch's kernel."""
    module, x = make(), torch.randn(6, 2, 4)
    assert module(x, mask=torch.ones(3))[0].shape == (6, 2, 3)
    assert module(x, h=torch.zeros(1, 2, 3))[1].shape == (1, 2, 3)
    with pytest.raises(ContractViolation, match=r"h_0 is laid out batch-first"):
        module(x, h=torch.zeros(2, 1, 3))


class LengthsThenHx(torch.nn.GRU):
    def forward(self, x, lengths=None, hx=None):  # its second parameter is no state
        return super().forward(x, hx)


class KeywordOnlyHx(torch.nn.GRU):
    def forward(self, x, *, hx=None):
        return super().forward(x, hx)


class NotCalledSelf(torch.nn.GRU):
    @checked(spec=RNNSpec("GRU", 4, 3))
    def forward(this, x, hx=None):  # noqa: N805 - a user's name for the instance
        return super().forward(x, hx)


def test_a_keyword_only_hx_is_read_by_its_name() -> None:
    """From a user-view review: a forward(x, *, hx=None) had its hx read from nowhere."""
    module = checked(KeywordOnlyHx(4, 3))
    assert module(torch.randn(6, 2, 4), hx=torch.zeros(1, 2, 3))[1].shape == (1, 2, 3)
    with pytest.raises(ContractViolation, match=r"h_0 is laid out batch-first"):
        module(torch.randn(6, 2, 4), hx=torch.zeros(2, 1, 3))


def test_a_decorated_method_is_a_method_whatever_it_calls_its_instance() -> None:
    """From a user-view review: a forward(this, x, hx=None) was taken for a plain function, and
    every call failed with "input: expected a Tensor or PackedSequence, got NotCalledSelf"."""
    module = NotCalledSelf(4, 3)
    assert module(torch.randn(6, 2, 4))[0].shape == (6, 2, 3)
    with pytest.raises(ContractViolation, match=r"h_0 is laid out batch-first"):
        module(torch.randn(6, 2, 4), torch.zeros(2, 1, 3))


class OnlyXWithMask(torch.nn.GRU):
    def forward(self, x, mask=None):
        output, h = super().forward(x)
        return (output if mask is None else output * mask), h


def test_hx_is_the_parameter_named_so_and_never_a_mask() -> None:
    """From a review: reading the second parameter as hx whatever its name made lengths= a
    violation and left hx= (third) unchecked; a takes_hx=False module's mask= was called an hx."""
    torch.manual_seed(0)
    x = torch.randn(6, 2, 4)
    module = checked(LengthsThenHx(4, 3))
    assert module(x, lengths=torch.tensor([6, 6]))[0].shape == (6, 2, 3)
    with pytest.raises(ContractViolation, match=r"h_0 is laid out batch-first"):
        module(x, hx=torch.zeros(2, 1, 3))
    masked = checked(OnlyXWithMask(4, 3), RNNSpec("GRU", 4, 3, takes_hx=False))
    assert masked(x, mask=torch.ones(3))[0].shape == (6, 2, 3)
    assert masked(x, torch.ones(3))[0].shape == (6, 2, 3)


def test_a_nested_tensor_is_named_on_every_call_path() -> None:
    """Off the one-tensor hot path (x by keyword, with an hx, a decorated function) the
    signature read x's sizes first: torch's RuntimeError escaped."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "nested tensors are in prototype stage"
        nested = torch.nested.nested_tensor([torch.randn(3, 4), torch.randn(5, 4)])
    module = checked(torch.nn.GRU(4, 2))
    fn = checked(spec=SPEC)(lambda x, hx=None: (x, x))
    for call in (lambda: module(input=nested), lambda: module(nested, torch.zeros(1, 2, 2)), lambda: fn(nested)):
        with pytest.raises(ContractViolation, match=r"input: a nested tensor was passed"):
            call()


def test_decorated_function_needs_a_spec() -> None:
    def forward(x, hx=None):
        return x, x

    with pytest.raises(TypeError) as caught:
        checked(forward)
    assert str(caught.value) == (
        "checked(forward): a plain function needs a spec, e.g. "
        "@checked(spec=RNNSpec(mode='GRU', input_size=4, hidden_size=2))"
    )
    good = checked(spec=SPEC)(lambda x, hx=None: (x.new_zeros(5, 3, 2), x.new_zeros(1, 3, 2)))
    good(torch.zeros(5, 3, 4))
    with pytest.raises(ContractViolation, match="dim = input_size = 4"):
        good(torch.zeros(5, 3, 5))


def test_the_cache_is_bounded(rnn: torch.nn.RNN, monkeypatch: pytest.MonkeyPatch, counted) -> None:
    monkeypatch.setattr(wrapper_module, "CACHE_SIZE", 2)
    wrapped = checked(rnn)
    for seq in (2, 3, 4, 2):  # the third signature starts the cache over; 2 is checked again
        wrapped(torch.randn(seq, 3, 4))
    assert len(wrapped.__dict__[wrapper_module.GUARD].verdicts.inputs) <= 2
    assert counted["inputs"] == 4


def test_the_off_switch_returns_targets_unwrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """RNN_CONTRACTS_OFF=1 in the environment when the library is first imported makes checked()
    hand back its target, module or function, unwrapped. The variable is read at import: the
    library is imported afresh here, with it set (tests/import_helpers.py), as a fresh process
    would import it."""
    monkeypatch.setenv("RNN_CONTRACTS_OFF", "1")
    with the_library_imported_afresh():
        fresh = importlib.import_module("rnn_contracts")
        assert fresh is not rnn_contracts  # the import ran again, under the variable
        with torch.random.fork_rng(devices=[]):
            m = torch.nn.RNN(4, 2)
        f = lambda x, hx=None: (x, x)  # noqa: E731 - a function target, as a user writes one
        assert fresh.checked(m) is m
        assert fresh.checked(f, fresh.RNNSpec("RNN", 4, 2)) is f
    # and without the variable (this process), checked() does wrap: the switch is what differs
    assert not wrapper_module.DISABLED


# --- checked() is invisible to the model ---------------------------------------------------------
def test_a_checked_module_is_the_same_module_to_its_users(rnn: torch.nn.RNN) -> None:
    keys, tensors = list(rnn.state_dict()), [p for p in rnn.parameters()]
    plain_repr = repr(rnn)
    seen: list[str] = []
    rnn.register_forward_pre_hook(lambda *a: seen.append("pre, before checked()"))
    wrapped = checked(rnn)
    wrapped.register_forward_hook(lambda *a: seen.append("post, after checked()"))
    assert wrapped is rnn and isinstance(wrapped, torch.nn.RNN) and isinstance(wrapped, CheckedModule)
    assert type(wrapped).__name__ == "RNN" and repr(wrapped) == plain_repr
    assert list(wrapped.state_dict()) == keys and list(wrapped.parameters()) == tensors
    wrapped(torch.randn(5, 3, 4))
    assert seen == ["pre, before checked()", "post, after checked()"]
    assert unchecked(wrapped) is rnn and type(rnn) is torch.nn.RNN and wrapper_module.GUARD not in vars(rnn)


def test_checkpoints_do_not_depend_on_the_checks(tmp_path) -> None:
    """A state_dict saved with checks on loads into the plain module and the other way round; a
    pickled checked module unpickles as the plain module, without a reference to the kit."""
    torch.manual_seed(1)
    plain = torch.nn.LSTM(4, 3, num_layers=2)
    torch.manual_seed(2)
    other = checked(torch.nn.LSTM(4, 3, num_layers=2))
    torch.save(other.state_dict(), tmp_path / "on.pt")
    plain.load_state_dict(torch.load(tmp_path / "on.pt"))  # strict
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), other.state_dict().values()))
    torch.save(other, tmp_path / "whole.pt")
    assert b"rnn_contracts" not in (tmp_path / "whole.pt").read_bytes()
    back = torch.load(tmp_path / "whole.pt", weights_only=False)
    assert type(back) is torch.nn.LSTM and wrapper_module.GUARD not in vars(back)
    x = torch.randn(5, 2, 4)
    torch.testing.assert_close(back(x)[0], other(x)[0], rtol=0, atol=0)


def test_a_deep_copy_stays_checked_with_its_own_cache() -> None:
    import copy

    original = checked(Flaky())
    clone = copy.deepcopy(original)
    assert isinstance(clone, CheckedModule) and clone is not original
    x = torch.zeros(5, 3, 4)
    clone(x)
    with pytest.raises(ContractViolation, match="h_n is laid out batch-first"):
        clone(x)


def test_verify_rnn_gives_the_same_verdicts_checked_or_not() -> None:
    from zoo import FAULTY

    entry = next(e for e in FAULTY if e.id == "lstm_gates_i_f_swapped")
    verdicts = []
    for wrap in (lambda m: m, checked):
        with pytest.raises(ContractViolation) as caught:
            rnn_contracts.verify_rnn(wrap(entry.build()))
        verdicts.append({r.name: r.status for r in caught.value.report.results})
    assert verdicts[0] == verdicts[1] and verdicts[0]["reference"] == "failed"


class Scriptable(torch.nn.Module):
    """A tiny recurrent module TorchScript can compile (torch 2.13 cannot script nn.RNN itself)."""

    mode, input_size, hidden_size = "RNN", 4, 2

    def __init__(self) -> None:
        super().__init__()
        self.cell = torch.nn.RNNCell(4, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.zeros(x.shape[1], 2, dtype=x.dtype, device=x.device)
        outs = []
        for t in range(x.shape[0]):
            h = self.cell(x[t], h)
            outs.append(h)
        return torch.stack(outs), h.unsqueeze(0)


def test_scripting_and_tracing_see_the_plain_module() -> None:
    import warnings

    torch.manual_seed(0)
    module = checked(Scriptable())
    x = torch.randn(5, 3, 4)
    scripted = torch.jit.script(module)  # compiles the plain module: TorchScript runs no Python checks
    torch.testing.assert_close(scripted(x)[0], module(x)[0])
    assert isinstance(module, CheckedModule)  # scripting took nothing off the module itself
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced = torch.jit.trace(module, x, check_trace=False)
    # the checks add no TracerWarning to the trace (torch's own deprecation notice is not ours)
    assert [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)] == []
    torch.testing.assert_close(traced(x)[0], module(x)[0])


def test_a_torchscript_module_is_refused_in_one_line() -> None:
    scripted = torch.jit.script(Scriptable())
    with pytest.raises(TypeError, match=r"^checked\(\) cannot check a TorchScript module \(RecursiveScriptModule\): "
                                        r"check the eager module, then script it$"):
        checked(scripted)


def test_a_spec_of_the_wrong_type_names_the_argument(rnn: torch.nn.RNN) -> None:
    with pytest.raises(TypeError, match=r"^checked\(spec=\.\.\.\) takes an RNNSpec, got str$"):
        checked(rnn, "RNN")


# --- the verdict cache covers every shape the full check reads -----------------------------------
class FlakyCell(Flaky):
    """An LSTM-shaped module: right on the first call, c_n with the wrong feature size after."""

    mode, input_size, hidden_size = "LSTM", 4, 3

    def state(self, x, batch, *, first):
        return x.new_zeros(1, batch, 3), x.new_zeros(1, batch, 3 if first else 2)


def test_the_cache_key_holds_lstms_cell_state() -> None:
    wrapped = checked(FlakyCell())
    x = torch.zeros(5, 2, 4)
    wrapped(x)
    with pytest.raises(ContractViolation, match=r"c_n: expected \(layers\*directions=1, batch=2, cell=3\), got \(1, 2, 2\)"):
        wrapped(x)


class Drifting(torch.nn.Module):
    """Right on the first two calls; from the third on, with the same input, one field of one
    result tensor differs: ``where`` ("output", "h", "c") and ``how`` ("shape", "dtype",
    "device"), or the result's structure ("3-tuple", "bare output", "h alone" for an LSTM)."""

    def __init__(self, mode: str, where: str, how: str) -> None:
        super().__init__()
        self.mode, self.input_size, self.hidden_size = mode, 4, 3
        self.where, self.how, self.calls = where, how, 0

    def forward(self, x, hx=None):
        self.calls += 1
        seq, batch, _ = x.shape
        made = {"output": x.new_zeros(seq, batch, 3), "h": x.new_zeros(1, batch, 3),
                "c": x.new_zeros(1, batch, 3)}
        if self.calls > 2 and self.where in made:
            t = made[self.where]
            made[self.where] = {"shape": lambda: t.new_zeros(*t.shape[:-1], 2),
                                "dtype": lambda: t.double(),
                                "device": lambda: torch.empty(t.shape, device="cpu" if t.is_meta else "meta"),
                                }[self.how]()
        state = (made["h"], made["c"]) if self.mode == "LSTM" else made["h"]
        if self.calls > 2 and self.where == "structure":
            return {"3-tuple": lambda: (made["output"], state, state), "bare output": lambda: made["output"],
                    "h alone": lambda: (made["output"], made["h"])}[self.how]()
        return made["output"], state


DRIFTS = [(mode, where, how) for mode in ("RNN", "LSTM") for where in ("output", "h", "c")
          for how in ("shape", "dtype", "device") if where != "c" or mode == "LSTM"] + [
    ("RNN", "structure", "3-tuple"), ("RNN", "structure", "bare output"),
    ("LSTM", "structure", "3-tuple"), ("LSTM", "structure", "h alone")]


@pytest.mark.parametrize("device", ["cpu", "meta"])  # meta: the path for every device but the CPU
@pytest.mark.parametrize(("mode", "where", "how"), DRIFTS, ids=["-".join(d) for d in DRIFTS])
def test_the_hot_path_judges_every_field_of_the_result(mode: str, where: str, how: str, device: str) -> None:
    """The last good call's signature covers every shape, dtype and device of the result, and its
    structure: any change of one with the same input is checked in full (and here, fails)."""
    wrapped = checked(Drifting(mode, where, how))
    x = torch.zeros(5, 2, 4, device=device)
    wrapped(x)
    wrapped(x.clone())  # cached: the hot path
    with pytest.raises(ContractViolation):
        wrapped(x)


@pytest.mark.parametrize("change", ["shape", "dtype"])
def test_the_hot_path_checks_a_new_input_in_full(change: str, rnn: torch.nn.RNN, counted) -> None:
    """An input that differs from the last good call's in shape or dtype is not the last call:
    it goes to the signature sets (and, new, to the full check before the module runs)."""
    wrapped = checked(rnn)
    wrapped(torch.randn(5, 3, 4))
    bad = torch.randn(5, 3, 7) if change == "shape" else torch.randn(5, 3, 4, dtype=torch.float64)
    with pytest.raises(ContractViolation):
        wrapped(bad)
    assert counted["inputs"] == 2


class FixedBatchSizes(torch.nn.Module):
    """A packed-capable module that always returns the batch_sizes of its first input."""

    mode, input_size, hidden_size, packed = "GRU", 4, 3, True

    def __init__(self) -> None:
        super().__init__()
        self.first = None

    def forward(self, x, hx=None):
        self.first = x.batch_sizes if self.first is None else self.first
        out = torch.nn.utils.rnn.PackedSequence(x.data.new_zeros(x.data.shape[0], 3), self.first,
                                                x.sorted_indices, x.unsorted_indices)
        return out, x.data.new_zeros(1, int(x.batch_sizes[0]), 3)


def test_the_cache_key_holds_a_packed_sequences_batch_sizes() -> None:
    wrapped = checked(FixedBatchSizes())
    data = torch.randn(4, 2, 4)
    wrapped(pack_padded_sequence(data, torch.tensor([3, 2])))  # batch_sizes [2, 2, 1], 5 rows
    other = pack_padded_sequence(data, torch.tensor([4, 1]))  # batch_sizes [2, 1, 1, 1], 5 rows too
    with pytest.raises(ContractViolation, match=r"output: batch_sizes \[2, 2, 1\] differ from the input's \[2, 1, 1, 1\]"):
        wrapped(other)


# --- RNN_CONTRACTS_OFF -----------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "off"), [
    ("1", True), ("TRUE", True), (" yes ", True), ("On", True),
    ("0", False), ("false", False), ("No", False), (" off", False), ("", False), (None, False),
])
def test_the_off_switch_values(value: str | None, off: bool) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert wrapper_module.read_off_switch(value) is off


@pytest.mark.parametrize("value", ["flase", "n", "2", "disable"])
def test_an_unknown_off_switch_value_keeps_the_checks_and_warns(value: str) -> None:
    with pytest.warns(RuntimeWarning, match=rf"RNN_CONTRACTS_OFF={value!r} is not one of .*the checks stay on"):
        assert wrapper_module.read_off_switch(value) is False


def test_export_and_fullgraph_compile_capture_the_plain_module() -> None:
    from torch.export import Dim

    torch.manual_seed(0)
    module = checked(Scriptable())
    x, wider = torch.randn(5, 3, 4), torch.randn(5, 6, 4)
    program = torch.export.export(module, (x,), dynamic_shapes=({1: Dim("batch")},))
    torch.testing.assert_close(program.module()(wider)[0], module(wider)[0])
    compiled = torch.compile(module, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(wider)[0], module(wider)[0])
    with pytest.raises(ContractViolation):  # the module itself is still checked
        module(torch.randn(5, 3, 7))


# --- the hot path is taken, and never for what it cannot judge -------------------------------------
@pytest.mark.parametrize("make", [lambda: torch.nn.GRU(4, 3), lambda: torch.nn.LSTM(4, 3)], ids=["gru", "lstm"])
def test_a_repeated_signature_takes_the_hot_path(make, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second call with the first call's signature is compared with the last good call field
    by field: it never reaches the signature sets (_judge_result)."""
    torch.manual_seed(0)
    wrapped = checked(make())
    x = torch.randn(5, 2, 4)
    wrapped(x)
    judged = []
    real = wrapper_module._judge_result
    monkeypatch.setattr(wrapper_module, "_judge_result", lambda *a, **k: judged.append(1) or real(*a, **k))
    wrapped(x.clone())
    assert judged == []


class Scripted(torch.nn.Module):
    """A module with torch's attributes (``mode``, input_size 4, hidden_size 3) whose result is
    ``result(x)``: the odd results the wrapper must judge rather than crash on."""

    input_size, hidden_size = 4, 3

    def __init__(self, mode: str, result) -> None:
        super().__init__()
        self.mode, self.result = mode, result

    def forward(self, x, hx=None):
        return self.result(x)


def _odd_lstm_state(state: str):
    """An LSTM-shaped result whose state is not (h_n, c_n) of two tensors: ``state`` says what."""
    def result(x):
        seq, batch, _ = x.shape
        h, c = x.new_zeros(1, batch, 3), x.new_zeros(1, batch, 3)
        return x.new_zeros(seq, batch, 3), {"triple": (h, c, c), "no h": (None, c), "no c": (h, None)}[state]
    return result


@pytest.mark.parametrize(("state", "message"), [
    ("triple", r"LSTM states must be a pair \(h_n, c_n\), got tuple of length 3"),
    ("no h", r"h_n: expected a Tensor of shape .*, got NoneType"),
    ("no c", r"c_n: expected a Tensor of shape .*, got NoneType"),
])
def test_a_state_of_another_structure_is_a_violation_not_a_crash(state: str, message: str) -> None:
    with pytest.raises(ContractViolation, match=message):
        checked(Scripted("LSTM", _odd_lstm_state(state)))(torch.zeros(5, 2, 4))


def test_an_input_on_another_device_than_the_last_call_is_checked_before_the_module_runs() -> None:
    """After a call on the meta device, a CPU input is a new signature: checked against the
    module's parameters (on meta) before the module runs, not handed to torch's kernels."""
    wrapped = checked(torch.nn.GRU(4, 3, device="meta"))
    wrapped(torch.empty(5, 2, 4, device="meta"))
    with pytest.raises(ContractViolation, match=r"input: device cpu, expected meta \(the module's parameters\)"):
        wrapped(torch.zeros(5, 2, 4))


def test_a_cell_is_refused_in_one_line() -> None:
    with pytest.raises(TypeError, match=r"^checked\(\) checks whole-sequence calls, and GRUCell\(4, 3\) is called "
                                        r"one step at a time: check the layer that unrolls it, or verify_rnn\(cell\)$"):
        checked(torch.nn.GRUCell(4, 3))


def test_a_result_of_none_is_a_violation_not_a_crash() -> None:
    with pytest.raises(ContractViolation, match=r"torch's recurrent layers return \(output, h_n\), got NoneType"):
        checked(Scripted("GRU", lambda x: None))(torch.zeros(5, 2, 4))


def test_an_output_only_module_returning_output_and_none_is_judged_and_cached(counted) -> None:
    spec = RNNSpec(mode="GRU", input_size=4, hidden_size=3, returns_states=False)
    wrapped = checked(Scripted("GRU", lambda x: (x.new_zeros(x.shape[0], x.shape[1], 3), None)), spec)
    for _ in range(3):
        out, state = wrapped(torch.zeros(5, 2, 4))
        assert state is None and out.shape == (5, 2, 3)
    assert counted == {"inputs": 1, "calls": 1}
