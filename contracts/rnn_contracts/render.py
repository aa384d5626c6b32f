"""The text report of the command line: header, contracts x columns tables, evidence, verdict."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from rnn_contracts.devices import device_line
from rnn_contracts.outcome import JobResult, Row, heading, mark, milliseconds


def indent(text: str, prefix: str) -> str:
    """Every line of ``text`` after the first indented by ``prefix``: a multi-line detail stays
    under the line that names its check."""
    first, *rest = text.splitlines() or [""]
    return "\n".join([first] + [prefix + line if line else line for line in rest])


def printable(text: str) -> str:
    """``text`` with every control character but newline and tab written as its escape
    (``\\x1b``): a module's exception message may carry terminal escape sequences or NUL, which a
    report shows rather than obeys."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in "\n\t" else c.encode("unicode_escape").decode() for c in text)


def _cell(row: Row | None) -> str:
    return f"{mark(row.status):<4} {milliseconds(row.seconds):>9}" if row else "-"


def _table(title: str, rows: Sequence[Row], columns: Sequence[str]) -> list[str]:
    """Checks x columns, in the order the checks first appear."""
    names = list(dict.fromkeys(r.name for r in rows))
    by_key = {(r.where, r.name): r for r in rows}
    cells = [[_cell(by_key.get((c, n))) for c in columns] for n in names]
    width = max([len(n) for n in names] + [len(title)])
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    header = f"{title:<{width}}  " + "  ".join(f"{c:<{w}}" for c, w in zip(columns, widths))
    lines = [header.rstrip(), "-" * len(header.rstrip())]
    for name, row in zip(names, cells):
        lines.append((f"{name:<{width}}  " + "  ".join(f"{c:<{w}}" for c, w in zip(row, widths))).rstrip())
    return lines


def render(job: JobResult) -> str:
    """The whole text report: header, seed checks (the seed's job), the verify_rnn table, notes,
    the seed's output and layout verdict, the evidence of every failure, and the verdict."""
    lines = [
        f"rnn-contracts · torch {torch.__version__} · checker {job.checker}",
        f"target: {job.target}",
        f"spec:   {job.spec.describe()}",
        *(f"device: {device_line(info)}" for info in job.devices),
        "",
    ]
    if job.seed is not None:
        lines += _table("seed checks", job.seed_rows(), [i.device for i in job.devices]) + [""]
    lines += _table("verify_rnn contract", job.contract_rows(), [c.label for c in job.columns])
    for note in job.notes():
        where = "" if len(note.where) == len(job.columns) else f" (on {', '.join(note.where)})"
        lines.append(f"  {mark(note.status)} {note.name}{where}: {indent(note.reason, '    ')}")
    lines += [f"  note: {note}" for note in job.report_notes()]
    if job.seed is not None:
        lines += ["", "seed output (the note's print, seq-first reading):", str(job.seed.output)]
        lines += ["", "layout verdict: " + job.seed.verdict]
    failures = job.failures()
    if failures:
        lines += ["", "failures:"]
        lines += [f"  {heading(f.where, f.name)}: {indent(f.detail, '    ')}" for f in failures]
    lines += ["", job.verdict()]
    return printable("\n".join(lines))
