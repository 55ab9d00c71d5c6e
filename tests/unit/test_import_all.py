"""verify --import-all without Docker: its script run by this interpreter on a made-up
sys.path (modules that import, raise, print, exit, crash), and the verdict it leads to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import pytest

from pyfarm_docker.driver import verify
from pyfarm_docker.errors import VerifyError

MODULES = {
    "good.py": "VALUE = 1\n",
    "broken.py": "raise ImportError('planted')\n",
    "needs_missing.py": "import no_such_module_anywhere\n",
    "noisy.py": "import os, sys\nprint('{\"modules\": {}}')\nos.write(1, b'{\"junk\": 1}\\n')\n"
                "sys.stderr.write('importing good\\n')\nos.write(2, b'from C\\n')\n",
    "exits.py": "import sys\nsys.exit(3)\n",
    "crasher.py": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
    "skipped.py": "open(__file__ + '.imported', 'w').close()\n",
    "pkg/__init__.py": "",
    "pkg/sub.py": "raise ImportError('not a top-level module')\n",
    "not_a_package/mod.py": "",
}


def _runner(site: Path, cwd: Path, calls: list[Sequence[str]]) -> verify.Runner:
    """Runs the script as the images do, with ``site`` on this interpreter's sys.path."""
    def run(args: Sequence[str]) -> verify.RunResult:
        calls.append(args)
        proc = subprocess.run([sys.executable, "-S", *args], capture_output=True, text=True,
                              cwd=cwd, env={**os.environ, "PYTHONPATH": str(site)},
                              timeout=120, check=False)
        return verify.RunResult(proc.returncode, proc.stdout, proc.stderr, 0)
    return run


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    for name, text in MODULES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_each_module_gets_its_result(site: Path, tmp_path: Path) -> None:
    calls: list[Sequence[str]] = []
    run = _runner(site, tmp_path, calls)
    results = verify.import_modules(run, paths=[str(site)], builtins=False,
                                    exclude=["skipped"])
    assert results == {
        "broken": "ImportError: planted",
        "crasher": "crashed the interpreter (exit status -9)",
        "exits": "SystemExit: 3",
        "good": "ok",
        "needs_missing": "ModuleNotFoundError: No module named 'no_such_module_anywhere'",
        "noisy": "ok",
        "pkg": "ok",
    }
    assert not (site / "skipped.py.imported").exists()
    assert len(calls) == 2  # the crash cost one more run, which skipped the crasher


def test_the_listing_leaves_out_the_working_directory(site: Path) -> None:
    """The app's own directory (the cwd, on sys.path as '') is neither listed nor imported;
    the standard library and the built-in modules are."""
    (site / "app_module.py").write_text("raise SystemExit('the app ran')\n")
    results = verify.import_modules(_runner(site.parent, site, []),
                                    exclude=list(verify.import_all_excluded()))
    assert "app_module" not in results and "good" not in results
    assert results["json"] == results["sys"] == results["sqlite3"] == "ok"
    assert not set(verify.IMPORT_ALL_SKIPPED) & set(results)
    assert sum(r == "ok" for r in results.values()) > 100


def test_the_builder_imports_the_image_list(site: Path, tmp_path: Path) -> None:
    results = verify.import_modules(_runner(site, tmp_path, []), ["good", "broken", "absent"])
    assert results == {"good": "ok", "broken": "ImportError: planted",
                       "absent": "ModuleNotFoundError: No module named 'absent'"}


def test_a_run_that_never_starts_is_an_error(tmp_path: Path) -> None:
    def run(args: Sequence[str]) -> verify.RunResult:
        return verify.RunResult(127, "", "exec: python: not found", 0)
    with pytest.raises(VerifyError, match=r"(?s)did not run.*not found"):
        verify.import_modules(run)


def test_the_verdict_names_what_only_the_image_cannot_import() -> None:
    final = {"json": "ok", "sqlite3": "ImportError: libsqlite3.so.0: cannot open",
             "msilib": "ModuleNotFoundError: No module named '_msi'", "extra": "ImportError: x"}
    builder = {"json": "ok", "sqlite3": "ok", "msilib": final["msilib"],
               "extra": "ModuleNotFoundError: No module named 'extra'"}
    check = verify.ImportAll(final, builder).check()
    assert not check.ok
    assert check.detail.startswith("1 of 4 modules import in the builder but not in the image: "
                                   "sqlite3\n")
    assert "sqlite3: ImportError: libsqlite3.so.0" in check.detail
    fine = verify.ImportAll({**final, "sqlite3": "ok"}, builder).check()
    assert fine.ok and fine.detail.startswith("2 of 4 modules import in both; 2 fail in the "
                                              "builder too: extra, msilib")


def test_the_exclusions_cover_the_documented_list() -> None:
    excluded = verify.import_all_excluded()
    for name in ("tkinter", "idlelib", "turtledemo", "ensurepip", "test", "lib2to3",
                 "antigravity", "this"):
        assert name in excluded
