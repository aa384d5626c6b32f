"""The library imported afresh in this process, for tests of what it reads when it is imported.

The library reads two environment variables once, at import: RNN_CONTRACTS_OFF
(rnn_contracts.wrapper.DISABLED) and RNN_CONTRACTS_CHECKER (rnn_contracts.engine). Such a test
needs the library's first import to happen with the variable set, which a fresh interpreter gives
at the cost of importing torch again (~1.4 s of CPU). Nothing of that import depends on the
library (torch, jaxtyping, typeguard read neither variable, and no library module registers
anything outside itself when imported), so importing the library's modules again, here, reads the
variable as a fresh process would. What still needs a fresh process is a test of the whole
process's modules (tests/test_install_safety.py: importing the library loads no pytest).
"""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

LIBRARY = "rnn_contracts"


def _library_modules() -> dict[str, object]:
    return {name: module for name, module in sys.modules.items() if name.split(".")[0] == LIBRARY}


@contextlib.contextmanager
def the_library_imported_afresh() -> Iterator[None]:
    """Within the block, ``import rnn_contracts`` (or any of its modules, by whatever imports it:
    the test, the plugin of an in-process pytester session) runs the library's modules again,
    under the environment of that moment. Afterwards this process's own modules are back and the
    fresh ones are gone, so nothing outside the block sees them (the test's module-level names
    keep the copy they were bound to)."""
    kept = _library_modules()
    for name in kept:
        del sys.modules[name]
    try:
        yield
    finally:
        for name in _library_modules():
            del sys.modules[name]
        sys.modules.update(kept)
