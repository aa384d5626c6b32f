"""Run pytest in a mutation copy, after checking that the copy's packages are the ones imported.

The kit is installed editable through a setuptools finder appended to sys.meta_path; the copy's
contracts/ and fixtures/ lead PYTHONPATH, so the path finder must find the copy's modules first.
If it does not, every mutant would "survive" against the unmutated install: exit 97 instead.
"""
import os
import sys
from pathlib import Path

copy = Path(os.environ["MUTATION_COPY"]).resolve()
import importlib.util  # noqa: E402

# find_spec resolves exactly as an import would, without importing (the plugin's inertness tests
# watch sys.modules).
for name in ("rnn_contracts", "pytest_rnn_contracts", "pytest_rnn_contracts.plugin"):
    spec = importlib.util.find_spec(name)
    where = Path(spec.origin).resolve() if spec and spec.origin else None
    if where is None or copy not in where.parents:
        print(f"mutation guard: {name} resolves to {where}, not into {copy}", file=sys.stderr)
        sys.exit(97)

import pytest  # noqa: E402

sys.exit(pytest.main(sys.argv[1:]))
