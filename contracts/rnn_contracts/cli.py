"""``rnn-contracts`` (and ``python -m rnn_contracts``): verify a recurrent module on every device.

    rnn-contracts [TARGET] [--device D]... [--spec KEY=VALUE]... [--json PATH]

TARGET is ``package.module:attr``: a module instance, a module class or a zero-argument factory.
Without TARGET the job is the seed's: nn.RNN(4, 2) under torch.manual_seed(0), checked on the
"hello" batch in both layouts, plus its layout verdict. Exit status: 0 when every contract holds,
1 on a violation, 2 on a usage error (one line on stderr, no traceback).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from rnn_contracts import engine
from rnn_contracts.errors import ContractViolation, SpecError
from rnn_contracts.render import render
from rnn_contracts.report import ContractReport
from rnn_contracts.spec import RNNSpec
from rnn_contracts.verify import verify_rnn


class UsageError(Exception):
    """Bad command line: exit status 2 with a one-line message."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnn-contracts",
        description="Check that a recurrent module honours the torch.nn.RNN / LSTM / GRU contracts.",
    )
    parser.add_argument("target", nargs="?", help="package.module:attr (default: the seed's nn.RNN(4, 2))")
    parser.add_argument("--device", action="append", default=[], metavar="D",
                        help="device to check on (repeatable; 'cuda' means every cuda:N; default: all)")
    parser.add_argument("--spec", action="append", default=[], metavar="KEY=VALUE",
                        help="override or give a spec field, e.g. --spec batch_first=true")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON")
    parser.add_argument("--checker", choices=engine.CHECKERS, help="runtime checker (default typeguard)")
    return parser


def _load_target(target: str) -> tuple[Any, str]:
    if ":" not in target:
        raise UsageError(f"target {target!r} must look like package.module:attr")
    module_name, _, attr = target.partition(":")
    try:
        owner: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(owner, part):
            raise UsageError(f"{module_name} has no attribute {attr!r}")
        owner = getattr(owner, part)
    if isinstance(owner, torch.nn.Module):
        return owner, target
    if callable(owner):
        try:
            inspect.signature(owner).bind()
        except TypeError as exc:
            raise UsageError(f"{target} must be callable with no arguments: {exc}") from None
        except ValueError:
            pass  # no introspectable signature (a builtin): just call it
        from rnn_contracts.devices import seeded_rng

        with seeded_rng(0):  # manual_seed seeds CUDA too: every generator is forked and restored
            try:
                made = owner()
            except Exception as exc:  # the target's own error: a usage error, not a violation
                raise UsageError(f"building {target} failed: {type(exc).__name__}: {exc}") from None
        if not callable(made):
            raise UsageError(f"{target}() returned {type(made).__name__}, not a module")
        return made, target
    raise UsageError(f"{target} is a {type(owner).__name__}, not a module, class or factory")


def _parse_value(field: dataclasses.Field, text: str) -> Any:
    kind = str(field.type)
    if "bool" in kind:
        if text.lower() in ("1", "true", "yes"):
            return True
        if text.lower() in ("0", "false", "no"):
            return False
        raise UsageError(f"--spec {field.name}={text}: expected true or false")
    if "int" in kind:
        try:
            return int(text)
        except ValueError:
            raise UsageError(f"--spec {field.name}={text}: expected an integer") from None
    return text


def _overrides(items: Sequence[str]) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(RNNSpec)}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--spec {item!r}: expected KEY=VALUE")
        if key not in fields:
            raise UsageError(f"--spec {key}: unknown key; known: {', '.join(fields)}")
        out[key] = _parse_value(fields[key], value)
    return out


def _spec(module: Any, overrides: dict[str, Any]) -> RNNSpec:
    try:
        return RNNSpec.from_module(module, **overrides)
    except SpecError as first:
        try:
            return RNNSpec(**overrides)
        except (SpecError, TypeError):
            raise UsageError(f"{first} (or give every field with --spec KEY=VALUE)") from None


def _devices(requested: Sequence[str]) -> list[str]:
    from rnn_contracts.devices import DeviceSelectionError, discover_devices, select_devices

    try:
        return select_devices(requested, None, discover_devices())
    except DeviceSelectionError as exc:
        raise UsageError(str(exc)) from None


def run(argv: Sequence[str] | None = None) -> int:
    """The command line's body; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        checker = args.checker or engine.checker_from_env()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if checker:
        engine.set_checker(checker)
    devices = _devices(args.device)
    if args.target:
        module, label = _load_target(args.target)
    else:
        from rnn_contracts.seed import build_seed_rnn

        module, label = build_seed_rnn(), "the seed's nn.RNN(4, 2) under torch.manual_seed(0)"
    spec = _spec(module, _overrides(args.spec))
    reports: dict[str, ContractReport] = {}
    for device in devices:
        try:
            reports[device] = verify_rnn(module, spec, device=device)
        except ContractViolation as exc:
            reports[device] = exc.report
    seed = None
    if not args.target:
        from rnn_contracts.seed import layout_verdict, seed_checks

        seed = {device: seed_checks(device) for device in devices}
        seed_verdict = layout_verdict()
    else:
        seed_verdict = None
    ok = all(r.ok for r in reports.values()) and all(
        c.status == "passed" for checks, _ in (seed or {}).values() for c in checks
    )
    print(render(label, spec, devices, reports, seed, seed_verdict, ok))
    if args.json:
        payload = {
            "target": label,
            "spec": dataclasses.asdict(spec),
            "torch": torch.__version__,
            "checker": engine.get_checker(),
            "ok": ok,
            "devices": {d: r.to_dict() for d, r in reports.items()},
        }
        if seed is not None:
            payload["seed"] = {
                d: {"checks": [dataclasses.asdict(c) for c in checks], "output": out.tolist()}
                for d, (checks, out) in seed.items()
            }
            payload["layout_verdict"] = seed_verdict
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rnn-contracts`` console script."""
    try:
        return run(argv)
    except (UsageError, SpecError) as exc:
        print(f"rnn-contracts: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
