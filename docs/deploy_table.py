"""The table "what torch's exporters do to RNN / LSTM / GRU" in README.md, from the kit's own run.

Each row is one module below, run through the command line exactly as a user would:

    cd docs && rnn-contracts deploy_table:gru_batch_first --device cpu --contract shapes \\
        --deploy export,onnx,compile --format json

and the table is printed as Markdown (``python docs/deploy_table.py``). Needs the deploy extra
(``pip install -e '.[deploy]'``). Modules are built under seed 0 by the command line.
"""
from __future__ import annotations

import io
import json
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def rnn() -> torch.nn.Module:
    return torch.nn.RNN(4, 6)


def gru_batch_first() -> torch.nn.Module:
    return torch.nn.GRU(4, 6, batch_first=True)


def lstm_bidirectional_2_layers() -> torch.nn.Module:
    return torch.nn.LSTM(4, 6, num_layers=2, bidirectional=True)


def lstm_proj() -> torch.nn.Module:
    return torch.nn.LSTM(4, 6, proj_size=2)


ROWS = {"nn.RNN(4, 6)": "rnn", "nn.GRU(4, 6, batch_first=True)": "gru_batch_first",
        "nn.LSTM(4, 6, num_layers=2, bidirectional=True)": "lstm_bidirectional_2_layers",
        "nn.LSTM(4, 6, proj_size=2)": "lstm_proj"}
TARGETS = ("export", "onnx", "compile")


def _cell(result: dict) -> str:
    text = result["detail"].replace("|", "/").replace("\n", " ")
    return f"**{result['status']}**: {text}" if text else f"**{result['status']}**"


def main() -> int:
    from rnn_contracts.cli import main as cli

    sys.path.insert(0, str(HERE))
    lines = ["| module | " + " | ".join(TARGETS) + " | wall time |", "|---|---|---|---|---|"]
    for label, factory in ROWS.items():
        out = io.StringIO()
        start = time.perf_counter()
        with redirect_stdout(out):
            cli([f"deploy_table:{factory}", "--device", "cpu", "--contract", "shapes", "--quiet",
                 "--deploy", ",".join(TARGETS), "--format", "json"])
        seconds = time.perf_counter() - start
        results = {c["name"]: c for c in json.loads(out.getvalue())["runs"][0]["contracts"]}
        lines.append(f"| `{label}` | " + " | ".join(_cell(results[t]) for t in TARGETS) + f" | {seconds:.1f} s |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
