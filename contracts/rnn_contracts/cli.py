"""``rnn-contracts`` (and ``python -m rnn_contracts``): verify a recurrent module on every device.

    rnn-contracts [TARGET] [--device D]... [--dtype T]... [--contract NAME]... [--deploy TARGETS]
                  [--cell TARGET] [--spec KEY=VALUE]...
                  [--format text|json|markdown|junit] [--output PATH] [--json PATH]
                  [--checker NAME] [--timeout SECONDS] [--quiet] [--version]

TARGET is ``package.module:attr`` (the current directory importable, as with ``python -m``): a
module instance, a module class or a zero-argument factory. Without TARGET the job is the seed's:
nn.RNN(4, 2) under torch.manual_seed(0), checked on the "hello" batch in both layouts, plus its
layout verdict.

Streams: stdout carries the report in ``--format`` (only that document), or, when ``--output``
sends the document to a file, the text report (its verdict line alone with ``--quiet``). Progress
goes to stderr: live on a terminal, plain lines elsewhere, nothing with ``--quiet``. What the
target prints while it is imported, built and run (Python's ``sys.stdout``) goes to stderr too,
so that ``--format json > report.json`` holds the report alone; output written to the file
descriptor itself by native code is not redirected.

Exit status: 0 when every contract holds, 1 on a violation, 2 on a usage or environment error
(one line on stderr, no traceback). A reader that closes the pipe early ends the output quietly.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from rnn_contracts import engine
from rnn_contracts.about import version_line
from rnn_contracts.errors import SpecError
from rnn_contracts.formats import FORMATS
from rnn_contracts.job import DTYPES, run_job
from rnn_contracts.probes import CELL_CONTRACT
from rnn_contracts.probes.deploy import DEPLOY_NAMES
from rnn_contracts.outcome import Column, JobResult
from rnn_contracts.probes import CONTRACT_NAMES
from rnn_contracts.progress import make_reporter
from rnn_contracts.render import render
from rnn_contracts.spec import RNNSpec
from rnn_contracts.targets import cwd_importable, load_target
from rnn_contracts.usage import UsageError, one_line

__all__ = ["UsageError", "main", "run"]

PROG = "rnn-contracts"
SEED_LABEL = "the seed's nn.RNN(4, 2) under torch.manual_seed(0)"


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are UsageErrors: one line, no usage block."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Check that a recurrent module honours the torch.nn.RNN / LSTM / GRU contracts.",
    )
    parser.add_argument("target", nargs="?", help="package.module:attr (default: the seed's nn.RNN(4, 2))")
    parser.add_argument("--device", action="append", default=[], metavar="D",
                        help="device to check on (repeatable; 'cuda' means every cuda:N; default: all)")
    parser.add_argument("--dtype", action="append", default=[], choices=DTYPES,
                        help="dtype to check in (repeatable: one column per device and dtype; "
                             "default: the module's own)")
    parser.add_argument("--contract", action="append", default=[], metavar="NAME",
                        help=f"run only this contract (repeatable): {', '.join(CONTRACT_NAMES)}")
    parser.add_argument("--deploy", action="append", default=[], metavar="TARGETS",
                        help=f"also run deployment contracts (comma-separated, repeatable): "
                        f"{', '.join(DEPLOY_NAMES)}; onnx needs pip install 'rnn-contracts[deploy]'")
    parser.add_argument("--cell", metavar="TARGET",
                        help="the cell the TARGET layer unrolls (package.module:attr): adds the "
                        "cell_equivalence contract")
    parser.add_argument("--spec", action="append", default=[], metavar="KEY=VALUE",
                        help="override or give a spec field, e.g. --spec batch_first=true")
    parser.add_argument("--format", choices=tuple(FORMATS), default="text",
                        help="report format (default text)")
    parser.add_argument("--output", type=Path, metavar="PATH",
                        help="write the report there instead of stdout (stdout then shows the text report)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the report as JSON (shorthand of --format json --output PATH)")
    parser.add_argument("--checker", choices=engine.CHECKERS, help="runtime checker (default typeguard)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="give up a contract that runs longer (passed to verify_rnn)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress; print only the verdict line (a --format document still in full)")
    parser.add_argument("--version", action="store_true", help="print the kit, torch and checker versions")
    return parser


# ------------------------------------------------------------------------ options, checked
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


def _known(option: str, what: str, names: Sequence[str], known: Sequence[str]) -> list[str]:
    """``names`` without duplicates; an unknown one is a usage error suggesting the closest."""
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            guess = f"; did you mean {close[0]}?" if close else ""
            raise UsageError(f"{option} {name}: unknown {what}{guess} (known: {', '.join(known)})")
    return list(dict.fromkeys(names))


def _contracts(names: Sequence[str], cell: str | None) -> list[str] | None:
    """The contracts --contract selects (None: all); cell_equivalence needs --cell."""
    if CELL_CONTRACT.name in names and not cell:
        raise UsageError(f"--contract {CELL_CONTRACT.name}: needs --cell TARGET, the cell the layer unrolls")
    known = CONTRACT_NAMES + ((CELL_CONTRACT.name,) if cell else ())
    return _known("--contract", "contract", names, known) or None


def _deploy(values: Sequence[str]) -> list[str]:
    """The deployment targets --deploy names (comma-separated, repeatable)."""
    names = [n.strip() for value in values for n in value.split(",") if n.strip()]
    return _known("--deploy", "deployment target", names, DEPLOY_NAMES)


def _devices(requested: Sequence[str]) -> list[str]:
    from rnn_contracts.devices import DeviceSelectionError, discover_devices, select_devices

    try:
        return select_devices(requested, None, discover_devices())
    except DeviceSelectionError as exc:
        raise UsageError(str(exc)) from None


def _timeout(seconds: float | None) -> float | None:
    if seconds is None:
        return None
    if not 0 < seconds < 1e6:
        raise UsageError(f"--timeout {seconds:g}: expected a positive number of seconds below 1e6")
    return seconds


def _use_checker(name: str | None) -> None:
    """Use --checker, else RNN_CONTRACTS_CHECKER, else the engine's default."""
    try:
        checker = name or engine.checker_from_env()
        if checker:
            engine.set_checker(checker)
    except ValueError as exc:  # unknown name, or beartype chosen but not installed
        raise UsageError(str(exc)) from None


# ------------------------------------------------------------------------------- outputs
def _cannot_write(option: str, path: Path, reason: str) -> UsageError:
    return UsageError(f"{option} {path}: cannot write the report: {reason}")


def _check_writable(option: str, path: Path) -> None:
    """Fail before the run, not after it: the directory exists, the path is no directory, and
    the file can be opened for writing (a file this check creates is removed again)."""
    if path.is_dir():
        raise _cannot_write(option, path, "it is a directory")
    if not path.parent.is_dir():
        raise _cannot_write(option, path, f"no directory {str(path.parent)!r}")
    existed = path.exists()
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise _cannot_write(option, path, exc.strerror or str(exc)) from None
    if not existed:
        path.unlink(missing_ok=True)


def _write(option: str, path: Path, text: str) -> None:
    try:
        path.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:  # disk full, or the path changed since it was checked
        raise _cannot_write(option, path, exc.strerror or str(exc)) from None


def _print(stream: TextIO, text: str) -> None:
    """Write ``text`` to ``stream``; a reader that has gone away (``| head -1``) ends it quietly."""
    try:
        stream.write(text + "\n")
        stream.flush()
    except BrokenPipeError:
        _silence(stream)


def _silence(stream: TextIO) -> None:
    """Point ``stream``'s descriptor at /dev/null so that the interpreter's last flush does not
    complain about the closed pipe either."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _outputs(args: argparse.Namespace) -> list[tuple[str, str, Path]]:
    """(option, format, path) of each report written to a file."""
    files = []
    if args.output is not None:
        files.append(("--output", args.format, args.output))
    if args.json is not None:
        files.append(("--json", "json", args.json))
    return files


def _emit(args: argparse.Namespace, job: JobResult, files: Sequence[tuple[str, str, Path]]) -> None:
    for option, fmt, path in files:
        _write(option, path, FORMATS[fmt](job))
    if args.output is None:
        document = job.verdict() if args.quiet and args.format == "text" else FORMATS[args.format](job)
    else:
        document = job.verdict() if args.quiet else render(job)
    _print(sys.stdout, document)


# ---------------------------------------------------------------------------------- the run
def run(argv: Sequence[str] | None = None) -> int:
    """The command line's body; returns the exit status (raises UsageError for status 2)."""
    args = _parser().parse_args(argv)
    if args.version:
        _print(sys.stdout, version_line())
        return 0
    contracts = _contracts(args.contract, args.cell)
    deploy = _deploy(args.deploy)
    timeout = _timeout(args.timeout)
    files = _outputs(args)
    for option, _, path in files:
        _check_writable(option, path)
    overrides = _overrides(args.spec)
    devices = _devices(args.device)
    columns = [Column(d, t) for d in devices for t in (dict.fromkeys(args.dtype) or [None])]
    previous = engine.get_checker()
    try:
        _use_checker(args.checker)
        # the target's own prints go to stderr: stdout carries the report alone
        with cwd_importable(), contextlib.redirect_stdout(sys.stderr):
            if args.target:
                module, label = load_target(args.target), args.target
            else:
                from rnn_contracts.seed import build_seed_rnn

                module, label = build_seed_rnn(), SEED_LABEL
            spec = _spec(module, overrides)
            cell = load_target(args.cell) if args.cell else None
            reporter = make_reporter(sys.stderr, quiet=args.quiet)
            try:
                job = run_job(module, label, spec, columns, contracts=contracts, deploy=deploy,
                              cell=cell, reporter=reporter, timeout=timeout, seed=not args.target)
            finally:
                reporter.close()
    finally:
        engine.set_checker(previous)
    _emit(args, job, files)
    return 0 if job.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rnn-contracts`` console script: 0, 1 or 2 (see the module doc)."""
    try:
        return run(argv)
    except (UsageError, SpecError) as exc:
        try:
            print(f"{PROG}: error: {one_line(str(exc))}", file=sys.stderr)
        except BrokenPipeError:
            _silence(sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
