"""A corpus of community recurrent-module patterns, each correct and realistically broken, as data.

Every module is our own code written from the published math (not a copy), with the parameter
and attribute names people give it, and a module-level zero-argument factory that seeds its own
construction. ``ENTRIES`` says how each is declared (RNNSpec fields, as data: no wrapper, no
adapter) and what verify_rnn must conclude, contract by contract; tests/test_corpus.py runs every
entry through verify_rnn, check_forward, the command line (``--format json``) and a
RNNContractTests subclass, and asserts each verdict.

Importable as ``corpus`` (pytest's "prepend" import mode puts tests/ on sys.path) and as
``tests.corpus`` from the repository root (the command line's ``tests.corpus.min_gru:min_gru``).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

#: Statuses of a ContractReport, as verify_rnn, the JSON report and the conformance items give them.
PASSED, FAILED, NA, NOT_RUN = "passed", "failed", "not applicable", "not run"
#: The reason every contract about states gives for a module that returns only its output.
NO_STATES = "the module returns no states"
#: What ``reference`` says of a module with torch's parameter names (its state_dict loads as it is).
TORCH_NAMES = "torch's parameter names: loaded as they are"
#: The contracts about states (not applicable when the module returns none).
STATE_CONTRACTS = ("final_state", "initial_state", "state_carry")
#: The contracts that compare values, not run when ``finite`` fails.
VALUE_CONTRACTS = ("final_state", "initial_state", "state_carry", "causality", "batch_independence",
                   "determinism", "differentiability", "reference", "packed", "unbatched")


@dataclass(frozen=True)
class Verdict:
    """What one contract must conclude: its status and a phrase its detail (evidence or reason)
    must contain ("" for none)."""

    status: str
    phrase: str = ""


@dataclass(frozen=True)
class CorpusEntry:
    """One module of the corpus and what the kit must say about it.

    ``fields``: the RNNSpec fields the user gives, as data (``RNNSpec.from_module(module,
    **fields)``, ``--spec KEY=VALUE``, a conformance class's ``rnn_spec``); empty when the module
    carries its spec. ``verdicts``: contract -> Verdict; a contract not named must pass (with no
    phrase required).
    """

    module: str
    factory: str
    variant: str
    about: str
    fields: dict[str, Any] = field(default_factory=dict)
    verdicts: dict[str, Verdict] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.factory}"

    @property
    def target(self) -> str:
        """The command line's TARGET, run from the repository root."""
        return f"tests.corpus.{self.module}:{self.factory}"

    def build(self) -> Any:
        return getattr(importlib.import_module(f"{__name__}.{self.module}"), self.factory)()

    def spec(self, module: Any) -> Any:
        """The spec verify_rnn gets: None when the module carries it, else from_module + fields."""
        from rnn_contracts import RNNSpec

        return RNNSpec.from_module(module, **self.fields) if self.fields else None

    def spec_args(self) -> list[str]:
        """``--spec KEY=VALUE`` for every field."""
        out = []
        for key, value in self.fields.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            out += ["--spec", f"{key}={text}"]
        return out

    def verdict(self, contract: str) -> Verdict:
        return self.verdicts.get(contract, Verdict(PASSED))

    @property
    def expected_failures(self) -> list[str]:
        return [name for name, v in self.verdicts.items() if v.status == FAILED]


def _na(*names: str, why: str = "") -> dict[str, Verdict]:
    return {name: Verdict(NA, why) for name in names}


#: packed / unbatched not declared (the RNNSpec defaults): not applicable.
LAYOUT_NA = {"packed": Verdict(NA, "RNNSpec.packed=False"), "unbatched": Verdict(NA, "RNNSpec.unbatched=False")}


def placed(*slots: str) -> dict[str, Verdict]:
    """reference holds with the module's parameters placed on torch's layer by order and shape:
    ``slots`` as the report gives them (``weight_ih_l0 <- x2h.weight``), in torch's slot order."""
    return {"reference": Verdict(PASSED, "placed by order and shape: " + ", ".join(slots))}


def misplaced(layer: str, *slots: str) -> dict[str, Verdict]:
    """reference fails: no placement on ``torch.nn.<layer>`` computes what the module computes;
    ``slots``: the closest placement's, as the report gives them."""
    return {"reference": Verdict(FAILED, f"no placement of the module's parameters on torch.nn.{layer} "
                                         "computes what the module computes; the closest, placed by "
                                         "order and shape: " + ", ".join(slots))}


def unplaced(*params: str) -> dict[str, Verdict]:
    """reference does not apply: ``params`` (``name (shape,)``) have no place on torch's layer."""
    return {"reference": Verdict(NA, "parameters that could not be placed: " + ", ".join(params)
                                 + "; torch's slots left without one: ")}


#: The weight-drop LSTM's parameters on torch.nn.LSTM.
WD_SLOTS = ("weight_ih_l0 <- weight_ih", "weight_hh_l0 <- weight_hh_raw", "bias_ih_l0 <- bias_ih",
            "bias_hh_l0 <- bias_hh")
#: A wrapped nn.GRU's parameters (``gru.weight_ih_l0``, ...) on torch.nn.GRU.
GRU_SLOTS = tuple(f"{name} <- gru.{name}" for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"))
#: The tutorial cell's x2h / h2h Linear layers on torch.nn.GRU.
CELL_SLOTS = ("weight_ih_l0 <- x2h.weight", "weight_hh_l0 <- h2h.weight", "bias_ih_l0 <- x2h.bias",
              "bias_hh_l0 <- h2h.bias")
#: IndRNN's elementwise recurrent weight: torch.nn.RNN's weight_hh_l0 is (hidden, hidden).
IND_UNPLACED = unplaced("recurrent_weight (6,)")
#: minGRU's gates read no h: no Linear of it is torch.nn.GRU's (18, 4) weight_ih_l0.
MIN_UNPLACED = unplaced("linear_z.weight (6, 4)", "linear_z.bias (6,)", "linear_h.weight (6, 4)",
                        "linear_h.bias (6,)")
#: The LayerNorm parameters (ln_ih.bias, bias-named, takes bias_hh_l0 by order and shape).
LN_UNPLACED = unplaced("ln_ih.weight (24,)", "ln_hh.weight (24,)", "ln_hh.bias (24,)", "ln_c.weight (6,)",
                       "ln_c.bias (6,)")

WD_FIELDS = {"mode": "LSTM"}
IND_FIELDS = {"mode": "RNN", "nonlinearity": "relu"}
MIN_FIELDS = {"mode": "GRU"}
# LayerNormLSTM carries mode, input_size and hidden_size, but its gate bias is a Parameter named
# ``bias``, which from_module reads as RNNSpec.bias (a SpecError: not a bool): the field is given.
LN_FIELDS = {"bias": True}
OBS_FIELDS = {"mode": "GRU", "packed": True, "unbatched": True}
CELL_FIELDS = {"mode": "GRU", "convention": "cell", "unbatched": True}

ENTRIES: tuple[CorpusEntry, ...] = (
    # 1. weight-drop LSTM
    CorpusEntry("weight_drop", "weight_drop_lstm", "correct",
                "DropConnect on weight_hh_raw in training mode only", WD_FIELDS,
                {**LAYOUT_NA, **placed(*WD_SLOTS)}),
    CorpusEntry("weight_drop", "variational_weight_drop_lstm", "broken",
                "variational mask drawn with training=True: a new mask on every call, in eval too",
                WD_FIELDS, {
                    **LAYOUT_NA, **misplaced("LSTM", *WD_SLOTS),
                    "determinism": Verdict(FAILED, "two eval-mode calls on the same input disagree"),
                    # every contract that compares two calls sees two different masks
                    "initial_state": Verdict(FAILED, "an explicit zero h_0 must equal no h_0"),
                    "state_carry": Verdict(FAILED, "must equal one run"),
                    "causality": Verdict(FAILED, "must not change earlier outputs"),
                    "batch_independence": Verdict(FAILED, "must not change the other sequences"),
                }),
    # 2. IndRNN
    CorpusEntry("indrnn", "indrnn", "correct", "h_t = relu(W x_t + u * h_{t-1} + b), batch-first",
                IND_FIELDS, {**LAYOUT_NA, **IND_UNPLACED}),
    CorpusEntry("indrnn", "indrnn_ignores_h0", "broken", "accepts hx but always starts from zeros",
                IND_FIELDS, {
                    **LAYOUT_NA, **IND_UNPLACED,
                    "initial_state": Verdict(FAILED, "must change the result"),
                    "state_carry": Verdict(FAILED, "must equal one run"),
                }),
    # 3. min-GRU, log-space parallel scan
    CorpusEntry("min_gru", "min_gru", "correct", "log-space scan, h_0's share added linearly",
                MIN_FIELDS, {**LAYOUT_NA, **MIN_UNPLACED}),
    CorpusEntry("min_gru", "min_gru_log_h0", "broken",
                "h_0.log() in the scan: NaN wherever h_0 < 0", MIN_FIELDS, {
                    "finite": Verdict(FAILED, "nan"),
                    # NaN-vs-NaN is finite's failure, never the other contracts' own
                    **{name: Verdict(NOT_RUN, "finite failed") for name in VALUE_CONTRACTS},
                }),
    # 4. layer-norm LSTM
    CorpusEntry("ln_lstm", "ln_lstm", "correct", "LayerNorm on gate pre-activations and the cell",
                LN_FIELDS, {**LAYOUT_NA, **LN_UNPLACED}),
    CorpusEntry("ln_lstm", "ln_lstm_batch_axis", "broken", "normalizes over the batch axis",
                LN_FIELDS, {
                    **LAYOUT_NA, **LN_UNPLACED,
                    "batch_independence": Verdict(FAILED, "must not change the other sequences"),
                }),
    # 5. observer-style module (calibration buffers)
    CorpusEntry("observer", "observed_gru", "declared",
                "min/max observer buffers updated in forward, RNNSpec(updates_buffers=True)",
                {**OBS_FIELDS, "updates_buffers": True}, {
                    **placed(*GRU_SLOTS),
                    "inputs_untouched": Verdict(PASSED, "restored: input_observer.min_val, input_observer.max_val"),
                }),
    CorpusEntry("observer", "observed_gru", "undeclared", "the same module, updates_buffers not declared",
                OBS_FIELDS, {
                    **placed(*GRU_SLOTS),
                    "inputs_untouched": Verdict(FAILED, "buffer input_observer.min_val"),
                }),
    # 6. tutorial-style GRU cell
    CorpusEntry("tutorial_cell", "gru_cell", "correct", "x2h / h2h cell, h' = (1 - z) n + z h",
                CELL_FIELDS, {"packed": Verdict(NA, "RNNSpec.packed=False"), **placed(*CELL_SLOTS)}),
    CorpusEntry("tutorial_cell", "gru_cell_swapped_gate", "broken", "h' = (1 - z) h + z n",
                CELL_FIELDS, {"packed": Verdict(NA, "RNNSpec.packed=False"), **misplaced("GRU", *CELL_SLOTS)}),
    # calling conventions
    CorpusEntry("calling", "gru_encoder", "output only", "returns only the output",
                {"mode": "GRU", "input_size": 4, "hidden_size": 6, "batch_first": True,
                 "returns_states": False},
                {**LAYOUT_NA, **placed(*GRU_SLOTS), **_na(*STATE_CONTRACTS, why=NO_STATES)}),
    CorpusEntry("calling", "output_only_gru", "output only, torch names",
                "a subclass of nn.GRU that returns only the output", {"returns_states": False},
                {**_na(*STATE_CONTRACTS, why=NO_STATES), "reference": Verdict(PASSED, TORCH_NAMES)}),
    CorpusEntry("calling", "elman_rnn", "requires hx", "forward(self, x, hx) without a default",
                {"requires_hx": True}, {**LAYOUT_NA, "reference": Verdict(PASSED, TORCH_NAMES)}),
)

__all__ = ["CorpusEntry", "ENTRIES", "Verdict", "PASSED", "FAILED", "NA", "NOT_RUN", "NO_STATES",
           "TORCH_NAMES", "STATE_CONTRACTS", "VALUE_CONTRACTS"]
