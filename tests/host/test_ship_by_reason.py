"""Host tier: what a default farm ships beyond the traced run, and why. An untraced stdlib
module with a native dependency imports; a distribution reached only through a .pth
hook ships only what ran; distributions' tests ship only when imported; tracebacks keep
their source lines; the manifest says why every file is there."""

from __future__ import annotations

import os
import re
import subprocess
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from pyfarm_docker.builder.assemble import AssembleOptions, assemble
from pyfarm_docker.builder.plan import REASONS
from pyfarm_docker.builder.tracer import TraceOptions, run_trace, spec_command
from pyfarm_docker.documents.manifest import Manifest
from pyfarm_docker.driver import report
from pyfarm_docker.runtime import Runtime
from tests.support import corpusrun, emptyroot
from tests.support.cases import case_settings
from tests.support.paths import HOST_PYTHON, corpus_cases
from tests.support.venvs import case_venv

pytestmark = pytest.mark.host
RUNTIME = Runtime()
UNTRACED_ZIP = RUNTIME.prefix / "python/lib/python311-untraced.zip"

APP = """import json, sys
import messy, tidy, tidy.tests.helpers
print(json.dumps({"tidy": tidy.VALUE, "helper": tidy.tests.helpers.HELP}))
try:
    json.loads("{")
except ValueError:
    import traceback
    traceback.print_exc(file=sys.stdout)
"""


def _distribution(site: Path, name: str, files: dict[str, str]) -> None:
    """An installed distribution: its files and a dist-info whose RECORD lists them."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    rows = [*files, f"{info.name}/METADATA", f"{info.name}/RECORD"]
    (info / "RECORD").write_text("".join(f"{r},,\n" for r in rows))


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest, str]:
    work = tmp_path_factory.mktemp("reason")
    site, app = work / "site", work / "app"
    app.mkdir()
    (app / "app.py").write_text(APP)
    _distribution(site, "tidy", {"tidy/__init__.py": "VALUE = 1\n",
                                 "tidy/tests/__init__.py": "", "tidy/tests/helpers.py":
                                 "HELP = 'kept'\n", "tidy/py.typed": "",
                                 "tidy/__init__.pyi": "VALUE: int\n"})
    _distribution(site, "messy", {"messy/__init__.py": "import json\n",
                                  "messy/tests/test_messy.py": "assert True\n",
                                  "messy/core.h": "int x;\n"})
    _distribution(site, "hooked", {"hooked_hack/__init__.py": "ON = True\n",
                                   "hooked/__init__.py": "", "hooked/big.py": "X = 1\n",
                                   "hooked-init.pth": "import hooked_hack\n"})
    (site / "sitecustomize.py").write_text("import site, os\nsite.addsitedir(os.path.dirname("
                                           "__file__))\n")
    env = {"PYTHONPATH": str(site)}
    python = HOST_PYTHON
    trace = work / "trace.json"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        run_trace(TraceOptions((python, "app.py"), trace, cwd=app))
    manifest = assemble(AssembleOptions(trace, work / "root"))
    plain = subprocess.run([python, "app.py"], cwd=app, env={**os.environ, **env},
                           capture_output=True, text=True, check=True)
    return work / "root", manifest, plain.stdout


def _paths(manifest: Manifest) -> set[str]:
    return {f.path for f in manifest.files}


def test_the_farm_prints_what_the_app_printed(farm: tuple[Path, Manifest, str]) -> None:
    """Same output, tracebacks included, with their source lines (paths differ)."""
    root, _, expected = farm
    done = emptyroot.run(root, [*RUNTIME.entrypoint(("app.py",))], str(RUNTIME.workdir),
                         dict(RUNTIME.env()))
    assert done.returncode == 0, done.stderr
    assert _basenames(done.stdout) == _basenames(expected)
    assert "obj, end = self.scan_once(s, idx)" in done.stdout  # a stdlib source line
    assert 'json.loads("{")' in done.stdout  # the app's


def _basenames(text: str) -> str:
    return re.sub(r'File "[^"]*/([^/"]+)"', r'File "\1"', text)


def test_untraced_stdlib_modules_with_native_dependencies_import(
        farm: tuple[Path, Manifest, str]) -> None:
    root, manifest, _ = farm
    code = ("import sqlite3, ssl, bz2, lzma, ctypes, decimal, uuid, readline, curses; "
            "print(sqlite3.connect(':memory:').execute('select 41 + 1').fetchone()[0])")
    done = emptyroot.run(root, [str(RUNTIME.python), "-c", code], str(RUNTIME.workdir),
                         dict(RUNTIME.env()))
    assert (done.returncode, done.stdout) == (0, "42\n"), done.stderr
    reasons = {f.path.rsplit("/", 1)[-1]: f.reason for f in manifest.files}
    sqlite = [name for name in reasons if name.startswith("libsqlite3.so")]
    assert sqlite and reasons[sqlite[0]].startswith("closure of _sqlite3"), reasons.get(
        sqlite[0] if sqlite else "")


def test_a_distribution_reached_only_by_a_pth_hook_ships_what_ran(
        farm: tuple[Path, Manifest, str]) -> None:
    _, manifest, _ = farm
    paths = _paths(manifest)
    assert any(p.endswith("/hooked_hack/__init__.py") for p in paths)
    assert any(p.endswith("/hooked-init.pth") for p in paths)
    assert any(p.endswith("/hooked-1.0.dist-info/METADATA") for p in paths)
    assert not any("/hooked/" in p for p in paths)


def test_tests_and_headers_ship_only_when_imported(farm: tuple[Path, Manifest, str]) -> None:
    _, manifest, _ = farm
    paths = _paths(manifest)
    assert any(p.endswith("/tidy/tests/helpers.py") for p in paths)  # the app imported it
    assert any(p.endswith("/messy/__init__.py") for p in paths)
    assert not any("/messy/tests/" in p for p in paths)
    assert not any(p.endswith(("/messy/core.h", "/tidy/__init__.pyi")) for p in paths)
    assert any(p.endswith("/tidy/py.typed") for p in paths)


def test_bytecode_only_for_imported_modules(farm: tuple[Path, Manifest, str]) -> None:
    """Imported modules get a .pyc; untouched pure-Python packages live in a zip, as source,
    and still import with their source lines."""
    root, manifest, _ = farm
    paths = _paths(manifest)
    lib = str(RUNTIME.prefix / "python" / "lib" / "python3.11")
    assert f"{lib}/json/__pycache__/__init__.cpython-311.pyc" in paths
    assert f"{lib}/__pycache__/decimal.cpython-311.pyc" not in paths
    # The farm's own site hook runs at every start: compiled, not compiled again each time.
    assert f"{lib}/__pycache__/sitecustomize.cpython-311.pyc" in paths
    zipped = zipfile.ZipFile(root / str(UNTRACED_ZIP)[1:])
    names = set(zipped.namelist())
    assert {"decimal.py", "asyncio/runners.py"} <= names and "json/__init__.py" not in names
    assert "os.py" not in names and f"{lib}/os.py" in paths  # getpath's landmark
    code = "import asyncio; asyncio.run(None)"
    done = emptyroot.run(root, [str(RUNTIME.python), "-c", code], str(RUNTIME.workdir),
                         dict(RUNTIME.env()))
    assert f"{UNTRACED_ZIP}/asyncio/runners.py" in done.stderr
    assert "raise ValueError(" in done.stderr  # the source line, read from the zip


def test_the_untraced_stdlib_zip_is_read_only_when_used(farm: tuple[Path, Manifest, str]
                                                        ) -> None:
    """Not at start-up and not by importlib.metadata (which scans every sys.path zip): only
    when one of its modules is imported. CPython's own stdlib zip does not exist, as in the
    builder."""
    root, _, _ = farm
    code = ("import sys, zipimport\n"
            "print(sorted(zipimport._zip_directory_cache))\n"
            "import importlib.metadata as m\n"  # its own imports are untraced here
            "opened = []\n"
            "sys.addaudithook(lambda e, a: opened.append(str(a[0])) if e == 'open' else None)\n"
            "print(m.version('tidy'), sorted({p for p in opened if p.endswith('-untraced.zip')}))\n"
            "import decimal\n"
            "print(sorted({p for p in opened if p.endswith('-untraced.zip')}))\n")
    done = emptyroot.run(root, [str(RUNTIME.python), "-c", code], str(RUNTIME.workdir),
                         dict(RUNTIME.env()))
    assert done.stdout.splitlines() == ["[]", "1.0 []", f"['{UNTRACED_ZIP}']"], done.stderr
    assert not (root / str(RUNTIME.prefix / "python/lib/python311.zip")[1:]).exists()


def test_the_same_trace_gives_the_same_farm_wherever_it_is_assembled(
        farm: tuple[Path, Manifest, str], tmp_path: Path) -> None:
    """Generated files too (the site hook's .pyc once named its staging directory)."""
    root, manifest, _ = farm
    again = assemble(AssembleOptions(root.parent / "trace.json", tmp_path / "elsewhere"))
    assert {f.path: f.sha256 for f in again.files} == {f.path: f.sha256 for f in manifest.files}


def test_every_file_has_a_reason(farm: tuple[Path, Manifest, str]) -> None:
    _, manifest, _ = farm
    reasons = {f.reason.split(" of ")[0] for f in manifest.files}
    assert reasons <= set(REASONS)
    assert {"traced", "closure", "essential", "metadata", "complete", "app", "native"} <= reasons


def _module_file(path: str) -> str:
    """A module's .pyc named alike wherever it lies: beside its place (--prune's, sourceless)
    or in __pycache__ under the interpreter's tag."""
    p = PurePosixPath(path)
    if p.suffix != ".pyc":
        return path
    parent = p.parent.parent if p.parent.name == "__pycache__" else p.parent
    return f"{parent / p.name.split('.')[0]}.pyc"


def test_what_prune_would_save_is_what_a_pruned_farm_leaves_out(
        farm: tuple[Path, Manifest, str], tmp_path: Path) -> None:
    """report's "--prune would save": the default farm without the files its manifest names
    prunable is, file for file, the --prune farm of the same run."""
    root, manifest, _ = farm
    pruned = assemble(AssembleOptions(root.parent / "trace.json", tmp_path / "root",
                                      prune=True))
    prunable = set(manifest.prunable)
    kept = {_module_file(f.path) for f in manifest.files if f.path not in prunable}
    assert kept == {_module_file(f.path) for f in pruned.files}
    # The bytes too, but for the files both farms hold with other contents (the site hook,
    # the loader's cache, the SBOM): a few kB.
    saved = report.summarize(manifest)["prune_saves_bytes"]
    assert abs(manifest.total_bytes - saved - pruned.total_bytes) < 50_000
    assert saved > 5_000_000  # the untraced stdlib and its native closure at least


CASES = corpus_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_pruned_farm_behaves_like_the_app(case: Path, tmp_path: Path) -> None:
    """--prune ships only what the run used, as sourceless .pyc, and still runs the case."""
    app = corpusrun.copy_app(case, tmp_path / "src")
    spec = case_settings(app).spec
    python = case_venv(case / "requirements.txt") / "bin" / "python"
    trace = run_trace(TraceOptions(spec_command(spec, (str(python),)), tmp_path / "trace.json",
                                   cwd=app, port=spec.port, probes=spec.probes))
    manifest = assemble(AssembleOptions(tmp_path / "trace.json", tmp_path / "root", prune=True))
    assert not any(f.reason == "complete" for f in manifest.files)
    # find_library's ldconfig (1 MB) only where the run could call it.
    shipped = {f.path for f in manifest.files}
    assert ("/sbin/ldconfig" in shipped) == ("ctypes.util" in trace.imports)
    site_sources = [f.path for f in manifest.files
                    if "/site-packages/" in f.path and f.path.endswith(".py")]
    assert site_sources == []
    farm = emptyroot.command(tmp_path / "root", [*RUNTIME.entrypoint(spec.entry),
                                                 *spec.checked_args],
                             str(RUNTIME.workdir), dict(RUNTIME.env()))
    normal = [str(python), *spec.entry, *spec.checked_args]
    if spec.kind == "server":
        expected, got = corpusrun.run_server(normal, spec, app), corpusrun.run_server(farm, spec)
    else:
        expected, got = corpusrun.run_script(normal, app), corpusrun.run_script(farm, app)
    assert corpusrun.comparable(got) == corpusrun.comparable(expected), got.stderr[-3000:]


def test_prune_keeps_a_source_the_run_read_as_a_file(tmp_path: Path) -> None:
    """A package that exec's one of its .py files (as OpenCV does with its config.py) still
    finds it with --prune; modules it only imported lose their source."""
    site, app = tmp_path / "site", tmp_path / "app"
    app.mkdir()
    _distribution(site, "loader", {
        "loader/__init__.py": "import os\nfrom . import helper\n"
                              "path = os.path.join(os.path.dirname(__file__), 'config.py')\n"
                              "exec(open(path).read())\n",
        "loader/helper.py": "X = 1\n", "loader/config.py": "CONFIGURED = True\n"})
    (app / "app.py").write_text("import loader\nprint(loader.CONFIGURED, loader.helper.X)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(site)
    # Once without the tracer, so the modules load from their .pyc (as after pip install).
    subprocess.run([HOST_PYTHON, "app.py"], cwd=app, env=env, check=True, capture_output=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(site))
        run_trace(TraceOptions((HOST_PYTHON, "app.py"), tmp_path / "trace.json", cwd=app))
    manifest = assemble(AssembleOptions(tmp_path / "trace.json", tmp_path / "root",
                                        prune=True))
    paths = {f.path for f in manifest.files}
    assert any(p.endswith("/loader/config.py") for p in paths)
    assert not any(p.endswith("/loader/helper.py") for p in paths)
    assert any(p.endswith("/loader/helper.pyc") for p in paths)
    done = emptyroot.run(tmp_path / "root", [*RUNTIME.entrypoint(("app.py",))],
                         str(RUNTIME.workdir), dict(RUNTIME.env()))
    assert (done.returncode, done.stdout) == (0, "True 1\n"), done.stderr
