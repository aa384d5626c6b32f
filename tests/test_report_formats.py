"""Each --format parsed as what it claims to be (JSON, JUnit XML, a Markdown table), on a module
that passes (the seed) and one that fails (a GRU whose output is shifted by 1e-3)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from cli_helpers import targets  # noqa: F401 - a fixture

from rnn_contracts.cli import main
from rnn_contracts.formats import SCHEMA_VERSION
from rnn_contracts.probes import CONTRACT_NAMES

SEED_CHECKS = 5


def run_format(capsys, fmt: str, *argv: str, status: int) -> str:
    """stdout of ``rnn-contracts --format fmt``: the document alone."""
    assert main([*argv, "--device", "cpu", "--format", fmt]) == status
    captured = capsys.readouterr()
    return captured.out


@pytest.fixture
def failing(targets: str) -> list[str]:
    return [f"{targets}:nudged"]


def _order(text: str, *parts: str) -> None:
    """``parts`` occur in ``text`` in this order."""
    where = [text.index(p) for p in parts]
    assert where == sorted(where), (parts, where)


# ------------------------------------------------------------------------------------- JSON
def test_json_on_the_seed(capsys) -> None:
    data = json.loads(run_format(capsys, "json", status=0))
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["torch"] == torch.__version__ and data["kit"]
    assert data["checker"]["name"] == "typeguard" and data["checker"]["version"]
    assert data["timestamp"].endswith("+00:00")
    assert data["target"] == "the seed's nn.RNN(4, 2) under torch.manual_seed(0)"
    assert data["spec"]["mode"] == "RNN" and data["spec"]["hidden_size"] == 2
    assert data["devices"][0]["device"] == "cpu" and "name" in data["devices"][0]
    assert data["ok"] is True and data["verdict"] == "all contracts hold"
    (run,) = data["runs"]
    assert (run["device"], run["dtype"], run["ok"]) == ("cpu", "float32", True)
    assert [c["name"] for c in run["contracts"]] == list(CONTRACT_NAMES)
    assert all(c["status"] == "passed" and c["seconds"] >= 0 and c["evidence"] is None for c in run["contracts"])
    assert len(data["seed"]["checks"]["cpu"]) == SEED_CHECKS
    assert data["seed"]["output"][0][0] == pytest.approx([-0.7497, -0.6135], abs=1e-4)
    assert "batch_first=False" in data["seed"]["layout_verdict"]


def test_json_on_a_failing_module_carries_structured_evidence(failing, capsys) -> None:
    data = json.loads(run_format(capsys, "json", *failing, status=1))
    assert "seed" not in data and data["ok"] is False
    contracts = {c["name"]: c for c in data["runs"][0]["contracts"]}
    reference = contracts["reference"]
    assert reference["status"] == "failed"
    evidence = reference["evidence"]
    assert evidence["kind"] == "value" and evidence["contract"] == "reference"
    assert evidence["tensor"] == "output" and len(evidence["position"]) == 3
    assert evidence["tolerance"]["atol"] > 0 and evidence["difference"] == pytest.approx(1e-3, rel=0.01)
    # the one order everywhere: contract, tensor, position, tolerance
    keys = list(evidence)
    assert [keys.index(k) for k in ("contract", "tensor", "position", "tolerance")] == sorted(
        keys.index(k) for k in ("contract", "tensor", "position", "tolerance"))
    where = ", ".join(map(str, evidence["position"]))
    _order(evidence["text"], "[reference]", f"output[{where}]", "atol")
    assert reference["detail"] in evidence["text"]
    assert data["verdict"] == f"{sum(c['status'] == 'failed' for c in contracts.values())} contract failure(s)"


def test_json_dtype_columns(capsys) -> None:
    data = json.loads(run_format(capsys, "json", "--dtype", "float64", "--dtype", "bfloat16",
                                 "--contract", "shapes", status=0))
    assert [(r["device"], r["dtype"]) for r in data["runs"]] == [("cpu", "float64"), ("cpu", "bfloat16")]


# --------------------------------------------------------------------------------- Markdown
def table_rows(markdown: str, header: str) -> dict[str, list[str]]:
    """The rows of the Markdown table whose first header cell is ``header``: name -> cells."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    assert set(lines[start + 1].replace(" ", "")) <= set("|-")
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows[cells[0]] = cells[1:]
    return rows


def test_markdown_on_the_seed(capsys) -> None:
    md = run_format(capsys, "markdown", status=0)
    assert md.startswith("### rnn-contracts: the seed's nn.RNN(4, 2)")
    assert "all contracts hold" in md.splitlines()[2]
    contracts = table_rows(md, "contract")
    assert list(contracts) == list(CONTRACT_NAMES)
    assert all(len(cells) == 1 and cells[0].startswith("✅ ok ") and cells[0].endswith(" ms")
               for cells in contracts.values())
    assert len(table_rows(md, "seed check")) == SEED_CHECKS
    assert "**Layout verdict:** The note calls its (3, 5, 4) batch" in md
    assert "#### Failures" not in md


def test_markdown_on_a_failing_module(failing, capsys) -> None:
    md = run_format(capsys, "markdown", *failing, "--dtype", "float32", "--dtype", "float64", status=1)
    lines = md.splitlines()
    assert lines[lines.index("| contract | cpu float32 | cpu float64 |") + 1] == "| --- | --- | --- |"
    rows = table_rows(md, "contract")
    assert len(rows["reference"]) == 2 and all(c.startswith("❌ FAIL ") for c in rows["reference"])
    assert rows["shapes"][0].startswith("✅ ok")
    assert "seed check" not in md
    failures = md.split("#### Failures", 1)[1]
    assert "- **[cpu float32] reference**" in failures and "- **[cpu float64] reference**" in failures
    block = failures.split("- **[cpu float32] reference**", 1)[1].split("- **", 1)[0]
    _order(block, "```text", "output[", "atol", "  ```\n")


def test_multi_line_evidence_stays_whole_and_indented(targets, capsys) -> None:
    """The shapes probe's evidence spans lines (title, violation, bound): every line is kept,
    indented under the line that names its contract, in text and in Markdown."""
    assert main([f"{targets}:narrow", "--device", "cpu"]) == 1
    text = capsys.readouterr().out
    after = text.split("  [cpu] shapes: ", 1)[1].split("\n  [cpu] ", 1)[0]
    after = after.split("\n\n1 contract failure", 1)[0].splitlines()  # the failure is the last one
    assert len(after) > 2 and all(line.startswith("    ") or not line for line in after[1:])
    _order("\n".join(after), "output: expected", "bound: batch=5")
    md = run_format(capsys, "markdown", f"{targets}:narrow", status=1)
    block = md.split("- **[cpu] shapes**", 1)[1].split("\n- **", 1)[0].strip().splitlines()
    block = block[:block.index("  ```") + 1]  # up to the fence that closes its evidence
    assert block[0] == "```text" and block[-1] == "  ```"
    assert all(line.startswith("  ") or not line for line in block[1:])
    _order("\n".join(block), "output: expected", "bound: batch=5")


# ------------------------------------------------------------------------------------ JUnit
def test_junit_on_the_seed(capsys) -> None:
    root = ET.fromstring(run_format(capsys, "junit", status=0))
    assert root.tag == "testsuites" and root.get("failures") == "0"
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"seed cpu", "verify_rnn cpu float32"}
    cases = suites["verify_rnn cpu float32"].findall("testcase")
    assert [c.get("name") for c in cases] == list(CONTRACT_NAMES)
    assert all(c.find("failure") is None and float(c.get("time")) >= 0 for c in cases)
    assert len(suites["seed cpu"].findall("testcase")) == SEED_CHECKS
    props = {p.get("name"): p.get("value") for p in suites["seed cpu"].iter("property")}
    assert props["torch"] == torch.__version__


def test_junit_on_a_failing_module_one_case_per_contract_device_and_dtype(failing, capsys) -> None:
    root = ET.fromstring(run_format(capsys, "junit", *failing, "--dtype", "float32", "--dtype", "float64", status=1))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["verify_rnn cpu float32", "verify_rnn cpu float64"]
    assert int(root.get("tests")) == 2 * len(CONTRACT_NAMES)
    case = next(c for c in suites[0].iter("testcase") if c.get("name") == "reference")
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "ContractViolation"
    _order(failure.get("message"), "[cpu float32] reference", "output[", "atol")
    _order(failure.text, "[cpu float32] reference", "output[", "atol")
    assert int(root.get("failures")) == sum(1 for _ in root.iter("failure"))


# ------------------------------------------------------------------------------------- text
def test_text_evidence_is_indented_under_its_contract_and_in_order(targets, capsys) -> None:
    assert main([f"{targets}:nudged", "--device", "cpu"]) == 1
    out = capsys.readouterr().out
    failures = out.split("\nfailures:\n", 1)[1].rstrip().splitlines()
    assert failures[-1].endswith("contract failure(s)")
    reference = next(line for line in failures if line.startswith("  [cpu] reference: "))
    _order(reference, "[cpu] reference", "output[", "atol")
    body = failures[:-2]  # the blank line and the verdict end it
    assert all(line.startswith("  [cpu] ") or line.startswith("    ") for line in body)


def test_output_writes_the_document_and_stdout_keeps_the_text(tmp_path: Path, capsys) -> None:
    path = tmp_path / "summary.md"
    assert main(["--device", "cpu", "--format", "markdown", "--output", str(path)]) == 0
    assert table_rows(path.read_text(), "contract")
    assert capsys.readouterr().out.rstrip().endswith("all contracts hold")


def test_a_document_on_stdout_comes_alone(capsys) -> None:
    assert main(["--device", "cpu", "--format", "json"]) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)  # nothing else on stdout
    assert "[cpu] shapes: ok" in captured.err  # progress went to stderr


def test_a_modules_control_characters_are_shown_not_obeyed(tmp_path: Path, monkeypatch, capsys) -> None:
    """A module's exception message goes into the evidence; an escape sequence or NUL in it
    reached the terminal (text) and the job summary (Markdown) raw. Both show it escaped."""
    (tmp_path / "hostile_targets.py").write_text(
        "import torch\n\n\nclass Hostile(torch.nn.GRU):\n"
        "    def forward(self, x, hx=None):\n"
        "        raise RuntimeError('clear the screen \\x1b[2J and a NUL \\x00 here')\n\n\n"
        "HOSTILE = Hostile(4, 3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for fmt in ("text", "markdown"):
        out = run_format(capsys, fmt, "hostile_targets:HOSTILE", status=1)
        assert "\x1b" not in out and "\x00" not in out
        assert "clear the screen \\x1b[2J and a NUL \\x00 here" in out
