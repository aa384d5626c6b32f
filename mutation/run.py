"""Mutation testing for rnn-contracts: mutate the kit, run the tests that cover each mutant.

    .venv/bin/python mutation/run.py                  # every mutant, 2 workers (~20 min here)
    .venv/bin/python mutation/run.py --list           # the mutants, without running anything
    .venv/bin/python mutation/run.py --module probes/ --limit 20
    .venv/bin/python mutation/run.py --only <id>      # one mutant (ids come from --list)

The repository is never touched: its files (tracked and untracked-but-not-ignored, as in the
working tree, or ``--rev REV`` for a committed tree) are copied to one temporary directory per
worker, and each mutant is written into a copy. A copy's ``contracts/`` and ``fixtures/`` come
first on PYTHONPATH, so its ``rnn_contracts`` / ``pytest_rnn_contracts`` win over the editable
install (a setuptools finder appended to sys.meta_path); every test run goes through
``mutation/launch.py``, which asserts that the imported modules lie in the copy before it
starts pytest.

Mutants come from two sources (mutation/mutants.py): operators applied to the AST of every
module of both packages (comparison negated, and/or swapped, ``not`` dropped, a guard
``if ...: raise`` or a check call deleted, an except clause widened to ``Exception``, a float
constant made 10x larger, a returned bool flipped), and a curated list of single-line
regressions (the ones the issue found surviving). Each mutant runs the test files of its
module's group (TEST_GROUPS, below) with ``-x -p no:randomly``; a failure kills it, a run past
``--timeout`` counts as killed (reported as such), a pass is a survivor. Equivalent mutants are
listed, with the reason, in mutation/equivalent.toml; they are not run and not counted.

The report (text on stdout and ``--report``; JSON with ``--json``) gives killed / survived /
equivalent counts, the score (killed / non-equivalent), the wall time and every survivor's
unified diff.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from mutants import Mutant, generate  # noqa: E402

#: The packages under mutation (both source roots).
SOURCES = ("contracts/rnn_contracts", "fixtures/pytest_rnn_contracts")

# -- which tests run for which module: data --------------------------------------------------
#: Test files per group, fastest and most specific first (-x stops at the first failure).
#: A file that does not exist at the tree under test is dropped with a note.
_CORE = [
    "tests/test_kills_core.py", "tests/test_kills_hints.py", "tests/test_kills_cell.py", "tests/test_kills_hygiene.py",
    "tests/test_kills_reference.py", "tests/test_reference_mapping.py", "tests/test_kills_temporal.py",
    "tests/test_kills_shared.py",
    "tests/test_kills_report_spec.py", "tests/test_kills_runtime.py",
    "tests/test_kills_probes.py", "tests/test_kills_diagnose.py", "tests/test_fastpath.py", "tests/test_rounding.py", "tests/test_false_positives.py", "tests/test_kills_selftest.py", "tests/test_subchecks.py", "tests/test_zoo.py", "tests/test_verify.py",
    "tests/test_verify_precision.py", "tests/test_reliability.py", "tests/test_checks.py",
    "tests/test_shapes.py", "tests/test_layout.py", "tests/test_spec.py", "tests/test_aliases.py",
]
_CLI = [
    "tests/test_kills_cli.py", "tests/test_cli.py", "tests/test_cli_errors.py", "tests/test_report_formats.py",
    "tests/test_cli_progress.py", "tests/test_seed_values.py",
]
_PLUGIN = [
    "tests/test_kills_conformance.py", "tests/test_conformance.py", "tests/test_plugin.py",
    "tests/test_plugin_errors.py", "tests/test_plugin_gpu.py", "tests/test_goldens_store.py",
    "tests/test_seed_values.py", "tests/test_gpu_parity.py", "tests/test_install_safety.py",
]
TEST_GROUPS: dict[str, list[str]] = {
    "probes": _CORE + ["tests/test_kills_diagnose.py"],
    "core": _CORE + ["tests/test_wrapper.py", "tests/test_kills_wrapper.py"] + _CLI[:2],
    "wrapper": ["tests/test_kills_wrapper.py", "tests/test_wrapper.py", "tests/test_fastpath.py", "tests/test_checks.py"],
    "precision": ["tests/test_kills_precision.py", "tests/test_kills_goldens.py", "tests/test_precision.py", "tests/test_verify_precision.py",
                  "tests/test_reference_values.py", "tests/test_seed_values.py", "tests/test_gpu_parity.py",
                  "tests/test_devices.py", "tests/test_plugin_gpu.py"],
    "cli": ["tests/test_kills_core.py", "tests/test_kills_report_spec.py", "tests/test_kills_runtime.py"] + _CLI + ["tests/test_kills_diagnose.py", "tests/test_verify.py", "tests/test_install_safety.py"],
    "goldens": ["tests/test_kills_goldens.py", "tests/test_goldens_store.py", "tests/test_seed_values.py",
                "tests/test_reference_values.py", "tests/test_plugin.py"],
    "devices": ["tests/test_kills_core.py", "tests/test_devices.py", "tests/test_plugin_gpu.py", "tests/test_gpu_parity.py", "tests/test_cli.py"],
    "deploy": ["tests/test_kills_deploy.py", "tests/test_deploy.py", "tests/test_deploy_integration.py"],
    "plugin": ["tests/test_kills_runtime.py"] + _PLUGIN,
}
#: Module (path relative to the repository) -> group; a module not named here uses "core".
MODULE_GROUP: dict[str, str] = {
    **{f"contracts/rnn_contracts/probes/{m}.py": "probes"
       for m in ("base", "shared", "finite", "cell", "state", "temporal", "structure", "reference",
                 "hygiene", "packed", "__init__")},
    "contracts/rnn_contracts/probes/deploy.py": "deploy",
    "contracts/rnn_contracts/dynamic.py": "deploy",
    "contracts/rnn_contracts/wrapper.py": "wrapper",
    "contracts/rnn_contracts/precision.py": "precision",
    "contracts/rnn_contracts/support.py": "precision",
    "contracts/rnn_contracts/devices.py": "devices",
    "contracts/rnn_contracts/goldens.py": "goldens",
    "contracts/rnn_contracts/hello.py": "goldens",
    **{f"contracts/rnn_contracts/{m}.py": "cli"
       for m in ("cli", "__main__", "job", "formats", "render", "progress", "usage", "targets", "seed",
                 "about", "report")},
    **{f"fixtures/pytest_rnn_contracts/{m}.py": "plugin" for m in ("__init__", "plugin", "session", "conformance")},
}

PYTEST_ARGS = ["-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "--tb=line", "-rfE",
               "--no-header", "-W", "ignore::pytest.PytestUnraisableExceptionWarning"]


@dataclass
class Outcome:
    id: str
    path: str
    line: int
    operator: str
    group: str
    status: str  # killed | survived | timeout | equivalent | error
    seconds: float = 0.0
    killer: str = ""
    diff: str = ""
    reason: str = ""
    tail: str = field(default="", repr=False)


# -- the copies --------------------------------------------------------------------------------
def repo_files(rev: str | None) -> list[str]:
    if rev:
        out = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
    else:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
    return [p for p in out.splitlines() if p and not p.startswith("mutation/")]


def make_copy(dest: Path, files: list[str], rev: str | None) -> None:
    dest.mkdir(parents=True)
    if rev:
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    else:
        for rel in files:
            src = ROOT / rel
            if not src.is_file():  # deleted in the working tree but still tracked
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    shutil.copytree(HERE, dest / "mutation", ignore=shutil.ignore_patterns("__pycache__", "*.json", "*.txt"),
                    dirs_exist_ok=True)


def env_for(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copy / "contracts"), str(copy / "fixtures")]
                                        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a same-size mutant in the same second must never hit a stale .pyc
    env["MUTATION_COPY"] = str(copy)
    env.setdefault("COLUMNS", "120")
    # Two workers on two cores: one thread each, or torch's pools oversubscribe the machine.
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "1"
    return env


LIVE: set[subprocess.Popen] = set()


def run_tests(copy: Path, tests: list[str], timeout: float) -> tuple[str, float, str, str]:
    """(status, seconds, killer, output tail): status passed | failed | timeout | guard."""
    cmd = [sys.executable, str(copy / "mutation" / "launch.py"), *PYTEST_ARGS, *tests]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=copy, env=env_for(copy), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    LIVE.add(proc)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return "timeout", time.monotonic() - start, "", out[-2000:]
    finally:
        LIVE.discard(proc)
    seconds = time.monotonic() - start
    if proc.returncode == 97:
        return "guard", seconds, "", out[-3000:]
    if proc.returncode == 0:
        return "passed", seconds, "", out[-2000:]
    killer = next((line.split(" ", 1)[1].split(" - ")[0] for line in out.splitlines()
                   if line.startswith(("FAILED ", "ERROR "))), f"exit {proc.returncode}")
    return "failed", seconds, killer, out[-2000:]


# -- equivalents -------------------------------------------------------------------------------
def load_equivalents(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text())
    entries = data.get("equivalent", [])
    for e in entries:
        missing = {"path", "before", "after", "reason"} - set(e)
        if missing:
            raise SystemExit(f"{path}: an [[equivalent]] entry lacks {sorted(missing)}: {e}")
    return entries


def equivalent_reason(m: Mutant, entries: list[dict[str, str]]) -> str | None:
    for e in entries:
        if e["path"] == m.path and _norm(e["before"]) == _norm(m.before) and _norm(e["after"]) == _norm(m.after):
            return e["reason"]
    return None


def _sides(diff: str) -> tuple[str, str]:
    """(before, after) of a unified diff, normalised as _norm does."""
    lines = diff.splitlines()
    before = "\n".join(l[1:] for l in lines if l.startswith("-") and not l.startswith("---"))
    after = "\n".join(l[1:] for l in lines if l.startswith("+") and not l.startswith("+++"))
    return _norm(before), _norm(after)


def _norm(text: str) -> str:
    return " ".join(text.split())


# -- main --------------------------------------------------------------------------------------
def tests_for(group: str, tree: Path) -> tuple[list[str], list[str]]:
    wanted = TEST_GROUPS[group]
    present = list(dict.fromkeys(t for t in wanted if (tree / t).exists()))
    return present, [t for t in wanted if t not in present]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", action="append", default=[],
                        help="only modules whose path contains this text (repeatable)")
    parser.add_argument("--operator", action="append", default=[], help="only these operators (repeatable)")
    parser.add_argument("--only", action="append", default=[], help="only the mutant with this id (repeatable)")
    parser.add_argument("--rerun", type=Path, help="only the survivors of an earlier --json report "
                        "(matched by module and replaced text, so line moves do not matter)")
    parser.add_argument("--limit", type=int, default=0, help="at most N mutants (after the filters)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--jobs", type=int, default=2, help="workers, each with its own copy (default 2)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per mutant's test run")
    parser.add_argument("--rev", help="mutate this commit's tree instead of the working tree")
    parser.add_argument("--equivalent", type=Path, default=HERE / "equivalent.toml")
    parser.add_argument("--run-equivalent", action="store_true", help="run the recorded equivalents too")
    parser.add_argument("--json", type=Path, help="write the report as JSON here")
    parser.add_argument("--report", type=Path, help="write the text report here too")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` ends the test runs

    started = time.monotonic()
    files = repo_files(args.rev)
    tmp = Path(tempfile.mkdtemp(prefix="rnn-mutation-"))
    copies = [tmp / f"w{i}" for i in range(max(1, args.jobs))]
    for c in copies:
        make_copy(c, files, args.rev)
    tree = copies[0]
    try:
        return _run(args, tree, copies, started)
    finally:
        for proc in list(LIVE):  # interrupted: end the test runs this tool started
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        if args.keep:
            print(f"copies kept under {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _run(args: argparse.Namespace, tree: Path, copies: list[Path], started: float) -> int:
    modules = sorted(p.relative_to(tree).as_posix() for s in SOURCES for p in (tree / s).rglob("*.py"))
    every: list[Mutant] = [m for rel in modules for m in generate(rel, (tree / rel).read_text())]
    # stale equivalents are judged against every mutant, not only those the filters keep
    equivalents = load_equivalents(args.equivalent)
    unmatched = [e for e in equivalents if not any(
        e["path"] == m.path and _norm(e["before"]) == _norm(m.before) and _norm(e["after"]) == _norm(m.after)
        for m in every)]
    mutants = [m for m in every if not args.module or any(text in m.path for text in args.module)]
    if args.operator:
        mutants = [m for m in mutants if m.operator in args.operator]
    if args.only:
        mutants = [m for m in mutants if m.id in args.only]
    if args.rerun:
        wanted = {(o["path"], *_sides(o["diff"])) for o in json.loads(args.rerun.read_text())["mutants"]
                  if o["status"] == "survived"}
        mutants = [m for m in mutants if (m.path, _norm(m.before), _norm(m.after)) in wanted]
    if args.limit:
        mutants = mutants[: args.limit]

    if args.list:
        for m in mutants:
            tag = " [equivalent]" if equivalent_reason(m, equivalents) else ""
            print(f"{m.id}  {m.operator}{tag}\n    - {m.before.strip()}\n    + {m.after.strip()}")
        print(f"{len(mutants)} mutants", file=sys.stderr)
        return 0

    groups = sorted({MODULE_GROUP.get(m.path, "core") for m in mutants})
    notes: list[str] = []
    # Baseline: every group's tests must pass on the unmutated copy, or its mutants prove nothing.
    broken: dict[str, str] = {}
    for g in groups:
        tests, missing = tests_for(g, tree)
        if missing:
            notes.append(f"group {g}: no such test file(s) here: {', '.join(missing)}")
        status, secs, killer, tail = run_tests(tree, tests, args.timeout * 3)
        print(f"baseline {g}: {status} in {secs:.1f} s {killer}", file=sys.stderr, flush=True)
        if status == "guard":
            print(tail, file=sys.stderr)
            raise SystemExit("mutation/launch.py: the copy's packages were not the ones imported")
        if status != "passed":
            broken[g] = f"baseline {status}: {killer}\n{tail}"
    outcomes: list[Outcome] = []
    todo: list[tuple[Mutant, str]] = []
    for m in mutants:
        g = MODULE_GROUP.get(m.path, "core")
        reason = equivalent_reason(m, equivalents)
        if reason and not args.run_equivalent:
            outcomes.append(Outcome(m.id, m.path, m.line, m.operator, g, "equivalent", diff=m.diff, reason=reason))
        elif g in broken:
            outcomes.append(Outcome(m.id, m.path, m.line, m.operator, g, "error", diff=m.diff,
                                    reason=f"group {g}'s baseline failed"))
        else:
            todo.append((m, g))

    free: queue.Queue[Path] = queue.Queue()
    for c in copies:
        free.put(c)
    lock = threading.Lock()
    done = [0]

    def work(item: tuple[Mutant, str]) -> Outcome:
        m, g = item
        copy = free.get()
        target = copy / m.path
        original = target.read_text()
        try:
            target.write_text(m.mutated)
            tests, _ = tests_for(g, copy)
            status, secs, killer, tail = run_tests(copy, tests, args.timeout)
        finally:
            target.write_text(original)
            free.put(copy)
        if status == "guard":
            raise RuntimeError(f"import guard failed for {m.id}:\n{tail}")
        final = {"failed": "killed", "passed": "survived", "timeout": "timeout"}[status]
        reason = equivalent_reason(m, equivalents) or ""
        out = Outcome(m.id, m.path, m.line, m.operator, g, final, secs, killer, m.diff, reason, tail)
        with lock:
            done[0] += 1
            print(f"[{done[0]}/{len(todo)}] {final:9} {secs:6.1f} s  {m.id}  {killer}", file=sys.stderr, flush=True)
        return out

    with concurrent.futures.ThreadPoolExecutor(len(copies)) as pool:
        outcomes.extend(pool.map(work, todo))

    wall = time.monotonic() - started
    text, data = render(outcomes, wall, notes, broken, unmatched)
    print(text)
    if args.report:
        args.report.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2))
    return 0


def render(outcomes: list[Outcome], wall: float, notes: list[str], broken: dict[str, str],
           unmatched: list[dict[str, str]]) -> tuple[str, dict]:
    count = {s: sum(o.status == s for o in outcomes) for s in ("killed", "timeout", "survived", "equivalent", "error")}
    killed = count["killed"] + count["timeout"]
    real = killed + count["survived"]
    score = killed / real if real else 1.0
    lines = [f"mutation score: {killed}/{real} non-equivalent mutants killed ({score:.1%}); "
             f"{count['survived']} survived, {count['equivalent']} equivalent (not run), "
             f"{count['timeout']} of the killed timed out, {count['error']} not run (broken baseline); "
             f"wall time {wall / 60:.1f} min"]
    per_group: dict[str, list[int]] = {}
    for o in outcomes:
        k, s = per_group.setdefault(o.group, [0, 0])
        per_group[o.group] = [k + (o.status in ("killed", "timeout")), s + (o.status == "survived")]
    lines.append("by group: " + ", ".join(f"{g} {k}/{k + s}" for g, (k, s) in sorted(per_group.items())))
    lines += [f"note: {n}" for n in notes]
    lines += [f"broken baseline, group {g}: {why.splitlines()[0]}" for g, why in broken.items()]
    lines += [f"equivalent entry matches no mutant (stale?): {e['path']}: {e['before'].strip()!r}" for e in unmatched]
    for o in outcomes:
        if o.status == "timeout":
            lines.append(f"timed out (counted as killed): {o.id}")
    survivors = [o for o in outcomes if o.status == "survived"]
    if survivors:
        lines.append(f"\nsurvivors ({len(survivors)}):")
    for o in survivors:
        lines.append(f"\n--- {o.id} ({o.operator}, group {o.group}, {o.seconds:.1f} s)\n{o.diff.rstrip()}")
    data = {"score": score, "killed": killed, "non_equivalent": real, "counts": count, "wall_seconds": wall,
            "notes": notes, "broken_groups": broken,
            "mutants": [{k: v for k, v in asdict(o).items() if k != "tail" or o.status == "survived"}
                        for o in outcomes]}
    return "\n".join(lines), data


if __name__ == "__main__":
    sys.exit(main())
