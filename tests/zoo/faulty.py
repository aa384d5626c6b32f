"""The faulty half of the zoo: every entry is a realistic mistake that verify_rnn must reject,
with the contract that must be among the failures (ZooEntry.expect)."""
from __future__ import annotations

from . import faulty_math, faulty_state, faulty_time
from .loops import ZooEntry

FAULTY: tuple[ZooEntry, ...] = faulty_state.ENTRIES + faulty_time.ENTRIES + faulty_math.ENTRIES
