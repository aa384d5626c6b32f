"""The command line's report formats: text, JSON, Markdown (a GitHub job summary), JUnit XML.

Each renders one :class:`~rnn_contracts.outcome.JobResult` to a string. A failure reads the same
in every format: its heading (``[cpu] differentiability``) and its evidence, rendered once by
:func:`rnn_contracts.errors.render_violation` (contract, tensor, position, tolerance, in that
order); the JSON adds the evidence's fields.
"""
from __future__ import annotations

import dataclasses
import json
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from typing import Any

import torch

from rnn_contracts import about
from rnn_contracts.outcome import NOTED, JobResult, Row, heading, mark, milliseconds
from rnn_contracts.render import printable, render as render_text

#: The JSON report's schema version: raised when a field changes meaning or disappears.
SCHEMA_VERSION = 1


# ------------------------------------------------------------------------------------- JSON
def _check(row: Row) -> dict[str, Any]:
    return {"name": row.name, "status": row.status, "seconds": row.seconds, "detail": row.detail,
            "evidence": row.evidence.to_dict() if row.evidence is not None else None}


def to_json_dict(job: JobResult) -> dict[str, Any]:
    """The JSON report as a dict (README, "The JSON report")."""
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kit": about.kit_version(),
        "torch": torch.__version__,
        "checker": {"name": job.checker, "version": about.package_version(job.checker)},
        "timestamp": job.started.isoformat(timespec="seconds"),
        "target": job.target,
        "module": job.module,
        "spec": job.spec_dict(),
        "devices": [dataclasses.asdict(info) for info in job.devices],
        "ok": job.ok,
        "verdict": job.verdict(),
        "runs": [
            {"device": c.device, "dtype": job.reports[c].dtype, "ok": job.reports[c].ok,
             "notes": list(job.reports[c].notes),
             "contracts": [_check(Row(c.label, r.name, r.status, r.seconds, r.detail, r.evidence))
                           for r in job.reports[c].results]}
            for c in job.columns
        ],
    }
    if job.seed is not None:
        data["seed"] = {
            "checks": {d: [_check(Row(d, c.name, c.status, c.seconds, c.detail)) for c in checks]
                       for d, checks in job.seed.checks.items()},
            "output": job.seed.output.tolist(),
            "layout_verdict": job.seed.verdict,
        }
    return data


def render_json(job: JobResult) -> str:
    """The JSON report, indented."""
    return json.dumps(to_json_dict(job), indent=2)


# --------------------------------------------------------------------------------- Markdown
_ICON = {"passed": "✅", "failed": "❌", "not applicable": "➖", "known limitation": "⚠️", "not run": "⏭️"}


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_table(title: str, rows: Sequence[Row], columns: Sequence[str]) -> list[str]:
    names = list(dict.fromkeys(r.name for r in rows))
    by_key = {(r.where, r.name): r for r in rows}
    lines = ["| " + " | ".join(_md_cell(t) for t in [title, *columns]) + " |",
             "|" + " --- |" * (len(columns) + 1)]
    for name in names:
        cells = []
        for column in columns:
            row = by_key.get((column, name))
            cells.append("-" if row is None else
                         f"{_ICON.get(row.status, '')} {mark(row.status)} {milliseconds(row.seconds)}".strip())
        lines.append("| " + " | ".join(_md_cell(t) for t in [name, *cells]) + " |")
    return lines


def _fenced(text: str, indent: str = "") -> list[str]:
    fence = "```" if "```" not in text else "~~~~"
    return [f"{indent}{fence}text", *(indent + line for line in text.splitlines()), f"{indent}{fence}"]


def render_markdown(job: JobResult) -> str:
    """The contracts x columns table (and the seed's checks) for a GitHub job summary, then
    the evidence of each failure and the reason of each contract that did not apply."""
    icon = "✅" if job.ok else "❌"
    lines = [
        f"### rnn-contracts: {job.target}",
        "",
        f"**{icon} {job.verdict()}** · `{job.module}` · torch {torch.__version__} · "
        f"checker {job.checker} · {job.started.isoformat(timespec='seconds')}",
        "",
    ]
    if job.seed is not None:
        lines += _md_table("seed check", job.seed_rows(), [i.device for i in job.devices]) + [""]
    lines += _md_table("contract", job.contract_rows(), [c.label for c in job.columns]) + [""]
    if job.seed is not None:
        lines += [f"**Layout verdict:** {job.seed.verdict}", ""]
    failures = job.failures()
    if failures:
        lines += ["#### Failures", ""]
        for f in failures:
            lines += [f"- **{_md_cell(heading(f.where, f.name))}**", "", *_fenced(f.detail, "  "), ""]
    notes = job.notes()
    if notes:
        lines += ["#### Not checked", ""]
        for n in notes:
            lines.append(f"- {mark(n.status)} **{n.name}** ({', '.join(n.where)}): {' '.join(n.reason.split())}")
        lines.append("")
    lines += [f"Note: {note}" for note in job.report_notes()]
    lines.append(f"Devices: {'; '.join(_device_text(job, i.device) for i in job.devices)}")
    return printable("\n".join(lines))


def _device_text(job: JobResult, device: str) -> str:
    from rnn_contracts.devices import device_line

    return device_line(job.device_info(device))


# ------------------------------------------------------------------------------------ JUnit
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry."""
    return _NOT_XML.sub("\ufffd", text)


def _properties(suite: ET.Element, job: JobResult) -> None:
    props = ET.SubElement(suite, "properties")
    for key, value in (("target", job.target), ("module", job.module), ("spec", job.spec.describe()),
                       ("kit", about.kit_version()), ("torch", torch.__version__), ("checker", job.checker)):
        ET.SubElement(props, "property", {"name": key, "value": _xml_text(value)})


def _suite(parent: ET.Element, name: str, rows: Sequence[Row], job: JobResult, classname: str) -> None:
    failed = sum(r.status == "failed" for r in rows)
    skipped = sum(r.status in NOTED for r in rows)
    suite = ET.SubElement(parent, "testsuite", {
        "name": name, "tests": str(len(rows)), "failures": str(failed), "errors": "0",
        "skipped": str(skipped), "time": f"{sum(r.seconds for r in rows):.6f}",
        "timestamp": job.started.replace(tzinfo=None).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
    })
    _properties(suite, job)
    for row in rows:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": row.name,
                                                 "time": f"{row.seconds:.6f}"})
        if row.status == "failed":
            title = heading(row.where, row.name)
            failure = ET.SubElement(case, "failure", {
                "message": _xml_text(f"{title}: {row.detail.splitlines()[0] if row.detail else ''}"),
                "type": "ContractViolation"})
            failure.text = _xml_text(f"{title}: {row.detail}")
        elif row.status in NOTED:
            ET.SubElement(case, "skipped", {"message": _xml_text(f"{row.status}: {row.detail}")})


def render_junit(job: JobResult) -> str:
    """JUnit XML: one testsuite per column (and per device for the seed's checks), one
    testcase per contract; a violation is a <failure>, a contract that did not apply <skipped>."""
    root = ET.Element("testsuites", {"name": "rnn-contracts"})
    if job.seed is not None:
        for info in job.devices:
            rows = [r for r in job.seed_rows() if r.where == info.device]
            _suite(root, f"seed {info.device}", rows, job, f"rnn_contracts.seed.{info.device}")
    for column in job.columns:
        rows = [r for r in job.contract_rows() if r.where == column.label]
        dtype = job.reports[column].dtype
        _suite(root, f"verify_rnn {column.device} {dtype}", rows, job,
               f"rnn_contracts.verify_rnn.{column.device}.{dtype}")
    counts = {k: sum(int(s.get(k, "0")) for s in root.iter("testsuite")) for k in ("tests", "failures", "skipped")}
    root.attrib.update({k: str(v) for k, v in counts.items()})
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")


#: ``--format`` choices and their renderers.
FORMATS: dict[str, Callable[[JobResult], str]] = {
    "text": render_text,
    "json": render_json,
    "markdown": render_markdown,
    "junit": render_junit,
}
