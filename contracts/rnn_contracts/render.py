"""Text rendering of the command line's report: contracts x devices."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from rnn_contracts import engine
from rnn_contracts.report import ContractReport
from rnn_contracts.spec import RNNSpec

_MARK = {"passed": "ok", "failed": "FAIL", "not applicable": "n/a", "known limitation": "known"}


def _cell(status: str, seconds: float) -> str:
    return f"{_MARK.get(status, status)} {seconds * 1e3:6.1f} ms"


def _table(title: str, rows: list[tuple[str, list[str]]], devices: Sequence[str]) -> list[str]:
    width = max([len(name) for name, _ in rows] + [len(title)])
    cols = [max(len(d), 12) for d in devices]
    lines = [f"{title:<{width}}  " + "  ".join(f"{d:<{w}}" for d, w in zip(devices, cols))]
    lines.append("-" * len(lines[0]))
    for name, cells in rows:
        lines.append(f"{name:<{width}}  " + "  ".join(f"{c:<{w}}" for c, w in zip(cells, cols)))
    return lines


def _rows(title: str, results: Mapping[str, Sequence[Any]], devices: Sequence[str],
          failures: list[str]) -> list[str]:
    """A contracts x devices table of results (each with name, status, detail, seconds), in the
    first device's order; failed cells are appended to ``failures`` with their evidence."""
    names = [r.name for r in next(iter(results.values()), [])]
    rows = []
    for name in names:
        cells = []
        for d in devices:
            result = next((r for r in results.get(d, ()) if r.name == name), None)
            cells.append(_cell(result.status, result.seconds) if result else "-")
            if result is not None and result.status == "failed":
                failures.append(f"[{d}] {name}: {result.detail}")
        rows.append((name, cells))
    return _table(title, rows, devices)


def render(
    label: str,
    spec: RNNSpec,
    devices: Sequence[str],
    reports: Mapping[str, ContractReport],
    seed: Mapping[str, tuple[list[Any], torch.Tensor]] | None,
    verdict: str | None,
    ok: bool,
) -> str:
    """The whole report: header, seed checks (when the target is the seed), verify_rnn table,
    evidence of every failure, the seed's output and layout verdict, and the summary line."""
    lines = [
        f"rnn-contracts · torch {torch.__version__} · checker {engine.get_checker()}",
        f"target: {label}",
        f"spec:   {spec.describe()}",
        "",
    ]
    failures: list[str] = []
    if seed:
        lines += _rows("seed checks", {d: seed[d][0] for d in devices}, devices, failures) + [""]
    lines += _rows("verify_rnn contract", {d: reports[d].results for d in reports}, devices, failures)
    for status, mark in (("not applicable", "n/a"), ("known limitation", "known")):
        notes = {r.name: r.detail for rep in reports.values() for r in rep.results if r.status == status}
        lines += [f"  {mark} {name}: {why}" for name, why in notes.items()]
    if seed:
        first = next(iter(seed.values()))[1]  # discovery order: the CPU's, when it is selected
        lines += ["", "seed output (the note's print, seq-first reading):", str(first)]
    if verdict:
        lines += ["", "layout verdict: " + verdict]
    if failures:
        lines += ["", "failures:"] + [f"  {f}" for f in failures]
    lines += ["", "all contracts hold" if ok else f"{len(failures)} contract failure(s)"]
    return "\n".join(lines)
