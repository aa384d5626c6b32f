"""The command line's TARGET, ``package.module:attr``, loaded as ``python -m`` would find it.

Every way a target can be wrong is a :class:`UsageError` with one line: a malformed name
(``:rnn``, ``.rel:x``, ``pkg:``), a module that cannot be imported, raises, has a syntax error
or calls ``sys.exit`` while it is imported, a missing attribute, a factory that needs arguments
or fails, and an object that is no module at all.
"""
from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import torch

from rnn_contracts.usage import UsageError


@contextlib.contextmanager
def cwd_importable() -> Iterator[None]:
    """The current directory first on ``sys.path`` for the block, as ``python -m`` puts it (the
    console script's own ``sys.path[0]`` is its bin/ directory); removed afterwards, so that an
    in-process caller's import path is as it was."""
    cwd = os.getcwd()
    if cwd in sys.path:
        yield
        return
    sys.path.insert(0, cwd)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(cwd)


def _dotted(name: str) -> bool:
    return all(part.isidentifier() for part in name.split("."))


def _import(name: str) -> ModuleType:
    """Import module ``name``; whatever its import raises becomes a UsageError."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise UsageError(f"cannot import {name!r}: {exc}") from None
    except SystemExit as exc:
        raise UsageError(f"importing {name!r} called sys.exit({exc.code!r})") from None
    except Exception as exc:  # SyntaxError included: the target's own error, not the kit's
        raise UsageError(f"importing {name!r} raised {type(exc).__name__}: {exc}") from None


def _attribute(module: ModuleType, module_name: str, attr: str) -> Any:
    owner: Any = module
    for part in attr.split("."):
        try:
            owner = getattr(owner, part)
        except AttributeError:
            raise UsageError(f"{module_name} has no attribute {attr!r}") from None
        except Exception as exc:  # a module-level __getattr__ or a property that raises
            raise UsageError(f"reading {module_name}:{attr} raised {type(exc).__name__}: {exc}") from None
    return owner


def _build(factory: Any, target: str) -> Any:
    """Call a zero-argument factory (or class) under seed 0, every generator restored after."""
    try:
        inspect.signature(factory).bind()
    except TypeError as exc:
        raise UsageError(f"{target} must be callable with no arguments: {exc}") from None
    except ValueError:
        pass  # no introspectable signature (a builtin): just call it
    from rnn_contracts.devices import seeded_rng

    with seeded_rng(0):  # CUDA and MPS seeded too: every generator is forked and restored
        try:
            made = factory()
        except SystemExit as exc:
            raise UsageError(f"building {target} called sys.exit({exc.code!r})") from None
        except Exception as exc:  # the target's own error: a usage error, not a violation
            raise UsageError(f"building {target} failed: {type(exc).__name__}: {exc}") from None
    if not callable(made):
        raise UsageError(f"{target}() returned {type(made).__name__}, not a module")
    return made


def load_target(target: str) -> Any:
    """The module that ``package.module:attr`` names: an ``nn.Module`` instance as it is, a
    class or a zero-argument factory called once. Call it inside :func:`cwd_importable`."""
    module_name, sep, attr = target.partition(":")
    if not (sep and _dotted(module_name) and _dotted(attr)):
        raise UsageError(f"target {target!r} must look like package.module:attr")
    owner = _attribute(_import(module_name), module_name, attr)
    if isinstance(owner, torch.nn.Module):
        return owner
    if callable(owner):
        return _build(owner, target)
    what = "a Python module" if isinstance(owner, ModuleType) else f"an object of type {type(owner).__name__}"
    raise UsageError(f"{target} is {what}, not an nn.Module instance, an nn.Module class or a factory")
