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
#: What the ``reference`` contract says while the state_dict cannot be placed on the torch layer
#: as it is (before parameters are mapped onto it by order and shape).
STRICT_LOAD = "does not load strictly into torch.nn."
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
    carries its spec. ``verdicts``: contract -> Verdict; a contract not named must pass.
    ``mapped``: the verdict of ``reference`` once parameters are placed on the torch layer by order
    and shape (the module's own names differ from torch's); until then it is not applicable.
    ``kit_bugs``: contract -> a phrase of the wrong verdict the kit gives today (a bug reported,
    not a verdict accepted): that contract is xfailed, not strictly, while the phrase shows.
    """

    module: str
    factory: str
    variant: str
    about: str
    fields: dict[str, Any] = field(default_factory=dict)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    mapped: Verdict | None = None
    kit_bugs: dict[str, str] = field(default_factory=dict)

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
        named = [name for name, v in self.verdicts.items() if v.status == FAILED]
        if self.mapped is not None and self.mapped.status == FAILED:
            named.append("reference")
        return named


def _na(*names: str, why: str = "") -> dict[str, Verdict]:
    return {name: Verdict(NA, why) for name in names}


#: packed / unbatched not declared (the RNNSpec defaults): not applicable.
LAYOUT_NA = {"packed": Verdict(NA, "RNNSpec.packed=False"), "unbatched": Verdict(NA, "RNNSpec.unbatched=False")}
#: reference while the state_dict keys are the module's own.
UNMAPPED = {"reference": Verdict(NA, STRICT_LOAD)}

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
                {**LAYOUT_NA, **UNMAPPED}, mapped=Verdict(PASSED)),
    CorpusEntry("weight_drop", "variational_weight_drop_lstm", "broken",
                "variational mask drawn with training=True: a new mask on every call, in eval too",
                WD_FIELDS, {
                    **LAYOUT_NA, **UNMAPPED,
                    "determinism": Verdict(FAILED, "two eval-mode calls on the same input disagree"),
                    # every contract that compares two calls sees two different masks
                    "initial_state": Verdict(FAILED, "an explicit zero h_0 must equal no h_0"),
                    "state_carry": Verdict(FAILED, "must equal one run"),
                    "causality": Verdict(FAILED, "must not change earlier outputs"),
                    "batch_independence": Verdict(FAILED, "must not change the other sequences"),
                }, mapped=Verdict(FAILED, "must compute what torch.nn.LSTM computes")),
    # 2. IndRNN
    CorpusEntry("indrnn", "indrnn", "correct", "h_t = relu(W x_t + u * h_{t-1} + b), batch-first",
                IND_FIELDS, {**LAYOUT_NA, "reference": Verdict(NA, "recurrent_weight")}),
    CorpusEntry("indrnn", "indrnn_ignores_h0", "broken", "accepts hx but always starts from zeros",
                IND_FIELDS, {
                    **LAYOUT_NA, "reference": Verdict(NA, "recurrent_weight"),
                    "initial_state": Verdict(FAILED, "must change the result"),
                    "state_carry": Verdict(FAILED, "must equal one run"),
                }),
    # 3. min-GRU, log-space parallel scan
    CorpusEntry("min_gru", "min_gru", "correct", "log-space scan, h_0's share added linearly",
                MIN_FIELDS, {**LAYOUT_NA, "reference": Verdict(NA, "linear_z.weight")}),
    CorpusEntry("min_gru", "min_gru_log_h0", "broken",
                "h_0.log() in the scan: NaN wherever h_0 < 0", MIN_FIELDS, {
                    "finite": Verdict(FAILED, "nan"),
                    # NaN-vs-NaN is finite's failure, never the other contracts' own
                    **{name: Verdict(NOT_RUN, "finite failed") for name in VALUE_CONTRACTS},
                }),
    # 4. layer-norm LSTM
    CorpusEntry("ln_lstm", "ln_lstm", "correct", "LayerNorm on gate pre-activations and the cell",
                LN_FIELDS, {**LAYOUT_NA, "reference": Verdict(NA, "ln_c")}),
    CorpusEntry("ln_lstm", "ln_lstm_batch_axis", "broken", "normalizes over the batch axis",
                LN_FIELDS, {
                    **LAYOUT_NA, "reference": Verdict(NA, "ln_c"),
                    "batch_independence": Verdict(FAILED, "must not change the other sequences"),
                }),
    # 5. observer-style module (calibration buffers)
    CorpusEntry("observer", "observed_gru", "declared",
                "min/max observer buffers updated in forward, RNNSpec(updates_buffers=True)",
                {**OBS_FIELDS, "updates_buffers": True}, {
                    **UNMAPPED,
                    "inputs_untouched": Verdict(PASSED, "restored: input_observer.min_val, input_observer.max_val"),
                }, mapped=Verdict(PASSED)),
    CorpusEntry("observer", "observed_gru", "undeclared", "the same module, updates_buffers not declared",
                OBS_FIELDS, {
                    **UNMAPPED,
                    "inputs_untouched": Verdict(FAILED, "buffer input_observer.min_val"),
                }, mapped=Verdict(PASSED)),
    # 6. tutorial-style GRU cell
    CorpusEntry("tutorial_cell", "gru_cell", "correct", "x2h / h2h cell, h' = (1 - z) n + z h",
                CELL_FIELDS, {"packed": Verdict(NA, "RNNSpec.packed=False"), **UNMAPPED},
                mapped=Verdict(PASSED)),
    CorpusEntry("tutorial_cell", "gru_cell_swapped_gate", "broken", "h' = (1 - z) h + z n",
                CELL_FIELDS, {"packed": Verdict(NA, "RNNSpec.packed=False"), **UNMAPPED},
                mapped=Verdict(FAILED, "must compute what torch.nn.GRU computes")),
    # calling conventions
    CorpusEntry("calling", "gru_encoder", "output only", "returns only the output",
                {"mode": "GRU", "input_size": 4, "hidden_size": 6, "batch_first": True,
                 "returns_states": False},
                {**LAYOUT_NA, **UNMAPPED, **_na(*STATE_CONTRACTS, why=NO_STATES)}, mapped=Verdict(PASSED)),
    CorpusEntry("calling", "output_only_gru", "output only, torch names",
                "a subclass of nn.GRU that returns only the output", {"returns_states": False},
                {**_na(*STATE_CONTRACTS, why=NO_STATES)},
                kit_bugs={"reference": "AttributeError: 'NoneType' object has no attribute 'shape'"}),
    CorpusEntry("calling", "elman_rnn", "requires hx", "forward(self, x, hx) without a default",
                {"requires_hx": True}, dict(LAYOUT_NA)),
)

__all__ = ["CorpusEntry", "ENTRIES", "Verdict", "PASSED", "FAILED", "NA", "NOT_RUN", "NO_STATES",
           "STRICT_LOAD", "STATE_CONTRACTS", "VALUE_CONTRACTS"]
