"""What installing the kit costs a project that never uses it.

A one-test project (no kit fixture, no --rnn-* option) runs in a fresh ``python -m pytest``
process in three variants: as installed (the kit's plugin loads, and so do the pytest plugins of
its dependencies jaxtyping and typeguard, which register their own ``pytest11`` entry points);
with ``-p no:rnn_contracts`` (the kit's plugin alone left out); and with
``-p no:rnn_contracts -p no:jaxtyping -p no:typeguard`` (nothing the wheel brings: the session as
it was before the install). ``--runs`` of each, interleaved so drifts of a shared machine hit all
alike. Reported: the median wall time of each and the gap of each to the installed session. Exit
status 1 when the gap to the session before the install exceeds ``--gate`` seconds (0.3 s, the
install-safe issue's bound; before the plugin became inert the gap was about 9 s: it imported
torch and ran the self-test and CUDA discovery in every session).

    python benchmarks/bench_plugin_inert.py [--runs 5] [--gate 0.3] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEST = "def test_one():\n    assert 1 + 1 == 2\n"
#: Plugins of this environment that have nothing to do with the question (pytest-randomly
#: reseeds, the cache writes files): off in every variant alike.
COMMON = ("-q", "-p", "no:randomly", "-p", "no:cacheprovider")
INSTALLED = "as installed"
BEFORE = "before the install"
VARIANTS = {INSTALLED: (), "-p no:rnn_contracts": ("-p", "no:rnn_contracts"),
            BEFORE: ("-p", "no:rnn_contracts", "-p", "no:jaxtyping", "-p", "no:typeguard")}


def _one_run(project: Path, extra: tuple[str, ...]) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RNN_CONTRACTS_", "PYTEST_"))}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", *COMMON, *extra], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start
    if done.returncode != 0 or "1 passed" not in done.stdout:
        raise SystemExit(f"bench_plugin_inert: the one-test project failed ({' '.join(extra)}):\n"
                         f"{done.stdout}\n{done.stderr}")
    return seconds


def measure(runs: int) -> dict[str, list[float]]:
    """Wall seconds of ``runs`` sessions per variant, interleaved."""
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "test_one.py").write_text(TEST, encoding="utf-8")
        (project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        for _ in range(runs):
            for name, extra in VARIANTS.items():
                times[name].append(_one_run(project, extra))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="sessions per variant (default 5)")
    parser.add_argument("--gate", type=float, default=0.3, help="largest allowed gap of medians, s")
    parser.add_argument("--json", type=Path, help="also write the timings as JSON")
    args = parser.parse_args(argv)
    times = measure(args.runs)
    medians = {name: statistics.median(values) for name, values in times.items()}
    gaps = {name: medians[INSTALLED] - medians[name] for name in VARIANTS if name != INSTALLED}
    for name, values in times.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        gap = f"   installed minus this: {gaps[name]:+.3f} s" if name in gaps else ""
        print(f"{name:<22} median {medians[name]:.3f} s{gap}   runs: {runs}")
    gap = gaps[BEFORE]
    verdict = "ok" if gap <= args.gate else "FAIL"
    print(f"the install's cost (gap of medians to {BEFORE!r}): {gap:+.3f} s (gate {args.gate:g} s): {verdict}")
    if args.json:
        args.json.write_text(json.dumps({"runs": times, "medians": medians, "gaps": gaps, "gap": gap,
                                         "gate": args.gate, "ok": verdict == "ok"}, indent=2) + "\n")
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
