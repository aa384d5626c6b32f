"""Versions of what a run depends on: the kit, torch and the runtime checkers (``--version``,
the JSON report)."""
from __future__ import annotations

from importlib import metadata

import torch

from rnn_contracts import engine

#: The installed distribution's name (pyproject.toml).
DISTRIBUTION = "rnn-contracts"


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name``; None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def kit_version() -> str:
    """This kit's version ("unknown" when run from a source tree that was never installed)."""
    return package_version(DISTRIBUTION) or "unknown"


def checker_versions() -> dict[str, str | None]:
    """Each runtime checker the kit supports and its installed version (None: not installed)."""
    return {name: package_version(name) for name in engine.CHECKERS}


def version_line() -> str:
    """``rnn-contracts 0.1.0 · torch 2.13.0+cpu · typeguard 4.6.1 · beartype not installed``."""
    checkers = [f"{name} {version or 'not installed'}" for name, version in checker_versions().items()]
    return " · ".join([f"{DISTRIBUTION} {kit_version()}", f"torch {torch.__version__}", *checkers])
