"""Packaging, outside this repo: the built wheel, installed into a fresh virtualenv, serves the
downstream projects in examples/: downstream (its own pyproject, package and tests) and crowded
(a project that already has the generic names: its own `contracts` and `fixtures` packages, its
own --device option and device fixture, and the index's `fixtures` distribution installed).

How the virtualenv gets torch without copying it (~800 MB) and without seeing this checkout:

* ``python -m venv --without-pip``, NOT ``--system-site-packages``: the system site-packages
  hold this repo's editable install (a ``__editable__`` finder or a path .pth pointing here),
  and its ``rnn_contracts`` dist-info, which would compete with the wheel.
* The wheel's own ``Requires-Dist``, plus what the example projects ask for themselves
  (:data:`PROJECT_REQUIREMENTS`), is resolved against this interpreter's installed
  distributions, recursively (markers evaluated, extras left out); each distribution of that
  closure is symlinked, by its top-level names from its RECORD, into one "deps" folder, and a
  .pth file in the venv runs ``site.addsitedir`` on it (so .pth files of those distributions
  work). rnn-contracts itself is never linked. The venv therefore sees exactly what
  ``pip install rnn_contracts-*.whl`` would have installed, no pytest-randomly, no xdist: a
  dependency missing from pyproject.toml fails here.
* The wheel goes in with this interpreter's pip (``pip --python VENV_PYTHON``, pip >= 22.3),
  ``--no-deps --no-index``; the projects run with the venv's python from a copy in a tmp dir,
  with PYTHONPATH and PYTEST_* variables removed. test_installed_from_the_wheel_only checks the
  result: the kit is imported from the venv, no sys.path entry is inside this repo.

The wheel is built from a copy of the repo (setuptools writes build/ and *.egg-info into the
source tree, and other people work in this checkout). Under pytest-xdist the wheel and the venv
are built once per run, under a file lock, and shared by the workers.
"""
from __future__ import annotations

import configparser
import fcntl
import importlib.metadata as metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest

from pytest_rnn_contracts.session import ENV_DEVICES
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from rnn_contracts import CONTRACT_NAMES
from rnn_contracts import devices

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
DOWNSTREAM = REPO / "examples" / "downstream"
CROWDED = REPO / "examples" / "crowded"
#: What the example projects install besides the kit: pytest (no longer a dependency of the
#: kit: the library needs none, and a project that uses the plugin has its own), and the
#: index's `fixtures` (testing-cabal), which shares a generic name with the kit's old layout.
PROJECT_REQUIREMENTS = ("pytest>=7.4", "fixtures>=4")
#: Left out of the copy the wheel is built from: VCS, build output, caches, local venvs.
BUILD_IGNORE = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__",
                                      ".pytest_cache", ".hypothesis", ".benchmarks", ".venv",
                                      ".whl", "*.pyc")
#: Environment variables that would let the checkout or the outer run leak into the venv.
LEAKY_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTEST_ADDOPTS", "PYTEST_PLUGINS",
             "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "VIRTUAL_ENV")
TIMEOUT = 600

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Installed:
    """The built wheel and the venv it is installed in."""

    wheel: Path
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def _run(*cmd: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_ENV}
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT, check=False)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {proc.returncode}\n{proc.stdout}\n"
                    f"{proc.stderr}", pytrace=False)
    return proc


def _closure(requirements: list[str]) -> list[metadata.Distribution]:
    """The installed distributions that ``requirements`` pull in, recursively."""
    found: dict[str, metadata.Distribution] = {}
    todo = list(requirements)
    while todo:
        req = Requirement(todo.pop())
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name in found:
            continue
        try:
            found[name] = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{req.name} (required through the wheel's Requires-Dist) is not installed "
                        f"in {sys.prefix}", pytrace=False)
        todo.extend(found[name].requires or [])
    return list(found.values())


def _link_deps(wheel: Path, deps: Path) -> None:
    """Symlink the wheel's dependency closure, top-level name by name, into ``deps``."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        requires = Parser().parsestr(zf.read(meta).decode()).get_all("Requires-Dist") or []
    requires = [*requires, *PROJECT_REQUIREMENTS]
    deps.mkdir()
    for dist in _closure(requires):
        if canonicalize_name(dist.metadata["Name"]) == "rnn-contracts":
            continue
        if dist.files is None:
            pytest.fail(f"{dist.metadata['Name']} has no RECORD: cannot tell its files", pytrace=False)
        for top in {f.parts[0] for f in dist.files if f.parts[0] not in ("..", "__pycache__")}:
            source = Path(dist.locate_file(top))
            if source.exists() and not (deps / top).exists():
                (deps / top).symlink_to(source)


def _build_and_install(root: Path) -> Installed:
    source, dist, venv = root / "src", root / "dist", root / "venv"
    shutil.copytree(REPO, source, ignore=BUILD_IGNORE, symlinks=True)
    _run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, source,
         cwd=root)
    (wheel,) = dist.glob("rnn_contracts-*.whl")
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=root)
    _link_deps(wheel, root / "deps")
    purelib = Path(_run(venv / "bin" / "python", "-c",
                        "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=root).stdout.strip())
    (purelib / "_rnn_contracts_test_deps.pth").write_text(
        f"import site; site.addsitedir({str(root / 'deps')!r})\n")
    _run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-deps",
         "--no-index", "--disable-pip-version-check", wheel, cwd=root)
    return Installed(wheel, venv)


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """The wheel, built once per run, installed into a fresh venv (shared by xdist workers)."""
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    base = tmp_path_factory.getbasetemp()
    root = (base.parent / f"downstream-{run_id}") if run_id else base / "downstream"
    root.mkdir(exist_ok=True)
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # POSIX only, as the venv layout (bin/python) is
        done = root / "installed.json"
        if not done.exists():
            result = _build_and_install(root)
            done.write_text(json.dumps({"wheel": str(result.wheel), "venv": str(result.venv)}))
        paths = json.loads(done.read_text())
    yield Installed(Path(paths["wheel"]), Path(paths["venv"]))


def _repo_files(root: str, pattern: str) -> set[str]:
    """Files under a source root, named as in the wheel (relative to the root)."""
    return {p.relative_to(REPO / root).as_posix() for p in (REPO / root).rglob(pattern)
            if "__pycache__" not in p.parts}


def test_wheel_carries_packages_data_and_entry_points(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        parser = configparser.ConfigParser()
        parser.read_string(zf.read(entry_points).decode())
    wanted = _repo_files("contracts", "*.py") | _repo_files("fixtures", "*.py") | {
        "rnn_contracts/data/goldens.json"}
    missing = sorted(wanted - names)
    assert missing == [], f"the wheel lacks {', '.join(missing)} (pyproject.toml [tool.setuptools])"
    # Our own import names only: nothing named `contracts` or `fixtures` lands in site-packages.
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {
        "rnn_contracts", "pytest_rnn_contracts"}
    assert dict(parser["pytest11"]) == {"rnn_contracts": "pytest_rnn_contracts.plugin"}
    assert dict(parser["console_scripts"]) == {"rnn-contracts": "rnn_contracts.cli:main"}


PROBE = """
import importlib.metadata as m, importlib.util as u, json, sys
import rnn_contracts, pytest_rnn_contracts.plugin
print(json.dumps({
    "contracts": rnn_contracts.__file__, "plugin": pytest_rnn_contracts.plugin.__file__, "path": sys.path,
    "dists": [str(d.locate_file("")) for d in m.distributions() if d.metadata["Name"] == "rnn-contracts"],
    "randomly": u.find_spec("pytest_randomly") is not None,
}))
"""


def test_installed_from_the_wheel_only(installed: Installed, tmp_path: Path) -> None:
    """The venv imports the kit from its own site-packages; the checkout is nowhere on sys.path;
    only the wheel's dependency closure is visible (no pytest-randomly)."""
    found = json.loads(_run(installed.python, "-c", PROBE, cwd=tmp_path).stdout)
    venv = installed.venv.resolve()
    assert Path(found["contracts"]).resolve().is_relative_to(venv)
    assert Path(found["plugin"]).resolve().is_relative_to(venv)
    assert [p for p in found["path"] if p and Path(p).resolve().is_relative_to(REPO)] == []
    assert [Path(d).resolve().is_relative_to(venv) for d in found["dists"]] == [True]
    assert found["randomly"] is False


def test_console_script_runs_the_seed_job(installed: Installed, tmp_path: Path) -> None:
    proc = _run(installed.venv / "bin" / "rnn-contracts", "--device", "cpu", cwd=tmp_path)
    assert "final_state" in proc.stdout


def _devices_under_test() -> int:
    """How many devices the plugin in the downstream run will parametrize over (same env)."""
    return len(devices.select_devices([], os.environ.get(ENV_DEVICES),
                                      devices.discover_devices()))


N_CONTRACTS = len(CONTRACT_NAMES)


@pytest.mark.parametrize(("args", "per_device", "extra", "lines"), [
    pytest.param((), {"passed": N_CONTRACTS - 2 + 1, "skipped": 2}, {"passed": 1}, [
        "*packed does not apply: the spec declares no PackedSequence support*",
        "*unbatched does not apply: the spec declares no unbatched support*",
    ], id="plain-pytest-passes"),
    pytest.param(("broken",), {"passed": N_CONTRACTS - 3, "skipped": 2, "failed": 1}, {}, [
        "E*[[]differentiability[]] *",
        "FAILED broken/test_truncated_bptt.py::TestTruncatedBPTT::test_contract[[]cpu-differentiability[]]*",
    ], id="broken-variant-fails-naming-the-contract"),
])
def test_downstream_project(installed: Installed, pytester: pytest.Pytester,
                            monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...],
                            per_device: dict[str, int], extra: dict[str, int],
                            lines: list[str]) -> None:
    """examples/downstream, copied out of the repo, runs `pytest [args]` with the venv's python."""
    shutil.copytree(DOWNSTREAM, pytester.path, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    for name in LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)
    result = pytester.run(installed.python, "-m", "pytest", *args, timeout=TIMEOUT)
    n = _devices_under_test()
    outcomes = {k: n * v + extra.get(k, 0) for k, v in per_device.items()}
    result.assert_outcomes(**outcomes)
    assert result.ret == (1 if "failed" in outcomes else 0)
    result.stdout.fnmatch_lines(lines)


def test_a_project_with_the_generic_names_keeps_working(installed: Installed, pytester: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/crowded: its own `contracts` and `tests/fixtures` packages, --device option and
    device fixture, and the index's `fixtures` installed beside the kit. Its own tests pass as
    they did before the kit was installed, and its RNNContractTests subclass runs every contract
    (GRU: packed and unbatched apply too)."""
    shutil.copytree(CROWDED, pytester.path, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    for name in LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)
    result = pytester.run(installed.python, "-m", "pytest", "-v", timeout=TIMEOUT)
    n = _devices_under_test()
    result.assert_outcomes(passed=3 + n * N_CONTRACTS)
    result.stdout.fnmatch_lines(["tests/test_own.py::test_own_device_fixture_and_option PASSED*",
                                 "tests/test_rnn.py::TestTorchGRU::test_contract[[]cpu-reference[]] PASSED*"])
    # the index's `fixtures` (testing-cabal) is the one a plain import finds outside the project
    found = _run(installed.python, "-c", "import fixtures; print(fixtures.__file__, fixtures.Fixture.__name__)",
                 cwd=pytester.path.parent).stdout.split()
    assert found[1] == "Fixture" and not Path(found[0]).is_relative_to(pytester.path)
