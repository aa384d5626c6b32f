"""What the corpus modules share: seeded construction that leaves the caller's RNG alone."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


def seeded(seed: int, make: Callable[[], T]) -> T:
    """``make()`` under ``torch.manual_seed(seed)``, the global RNG (CPU and CUDA) restored after:
    every factory of the corpus builds the same weights whoever calls it (verify_rnn, the command
    line, a conformance class) and whatever ran before."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return make()
