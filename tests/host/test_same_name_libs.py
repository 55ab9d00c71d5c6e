"""Two wheels each bundle their own, different libdup.so.1: the farm keeps both and
each extension links to its own (design.md: never dedupe libraries by file name)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pyfarm_docker.builder.assemble import AssembleOptions, assemble
from pyfarm_docker.builder.tracer import TraceOptions, run_trace
from tests.support import emptyroot, native
from tests.support.paths import HOST_PYTHON
from tests.support.wheels import make_wheel

pytestmark = pytest.mark.host

APP = """import subprocess, sys
import pkga
print("a", pkga.value())
child = subprocess.run([sys.executable, "-c", "import pkgb; print('b', pkgb.value())"],
                       capture_output=True, text=True, check=True)
print(child.stdout.strip())
"""


def _package_wheel(work: Path, name: str, value: int, suffix: str, include: str) -> Path:
    build = work / f"build-{name}"
    (build / f"{name}.libs").mkdir(parents=True)
    (build / name).mkdir()
    lib = native.shared_library(build / f"{name}.libs" / "libdup.so.1", "libdup.so.1", value)
    ext = native.extension(build / name / f"_ext{suffix}", lib.parent, lib.name,
                           f"$ORIGIN/../{name}.libs", include)
    files = {f"{name}/__init__.py": b"from ._ext import value\n",
             f"{name}/_ext{suffix}": ext.read_bytes(),
             f"{name}.libs/libdup.so.1": lib.read_bytes()}
    return make_wheel(work, name, files, "cp311-cp311-linux_x86_64")


@pytest.fixture(scope="module")
def dup_app(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("dup")
    info = subprocess.run([HOST_PYTHON, "-c", "import sysconfig as s; print(s.get_config_var("
                           "'EXT_SUFFIX')); print(s.get_paths()['include'])"],
                          capture_output=True, text=True, check=True).stdout.split()
    wheels = [_package_wheel(work, n, v, info[0], info[1]) for n, v in (("pkga", 1), ("pkgb", 2))]
    venv = work / "venv"
    subprocess.run([HOST_PYTHON, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin/pip"), "install", "-q", "--no-index", *map(str, wheels)],
                   check=True)
    app = work / "src"
    app.mkdir()
    (app / "app.py").write_text(APP)
    run_trace(TraceOptions((str(venv / "bin/python"), "app.py"), work / "trace.json", cwd=app))
    assemble(AssembleOptions(work / "trace.json", work / "root"))
    return app, work / "root"


def test_both_libraries_are_kept_and_linked_to_their_own_users(dup_app: tuple[Path, Path]
                                                               ) -> None:
    _, root = dup_app
    reals = [p for p in (root / "app/reals/r").iterdir() if p.name.endswith("libdup.so.1")]
    assert len(reals) == 2
    assert reals[0].read_bytes() != reals[1].read_bytes()
    targets = {os.path.realpath(p / "libdup.so.1")
               for p in (root / "app/symlinks").iterdir() if "_ext" in p.name}
    assert targets == {str(p) for p in reals}


def test_each_process_gets_its_own_library(dup_app: tuple[Path, Path]) -> None:
    _, root = dup_app
    done = emptyroot.run(root, ["/app/python/bin/python", "/app/app/app.py"], cwd="/app/app")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["a 1", "b 2"]


def test_the_soname_conflict_is_reported(dup_app: tuple[Path, Path]) -> None:
    from pyfarm_docker.documents.manifest import Manifest

    _, root = dup_app
    (conflict,) = Manifest.read(root / "app/.pyfarm/manifest.json").conflicts
    assert conflict.soname == "libdup.so.1"
    assert len(conflict.files) == 2


def test_strict_makes_the_conflict_an_error(dup_app: tuple[Path, Path], tmp_path: Path) -> None:
    from pyfarm_docker.errors import AssembleError

    trace = dup_app[1].parent / "trace.json"
    with pytest.raises(AssembleError, match=r"libdup\.so\.1"):
        assemble(AssembleOptions(trace, tmp_path / "strict", strict=True))
    assert not (tmp_path / "strict").exists()


def test_only_objects_that_need_a_search_path_are_patched(dup_app: tuple[Path, Path]) -> None:
    """The extensions keep finding their own libdup through DT_RPATH; each libdup needs only
    libc, which the image's ld.so.cache finds by name: patchelf does not touch them (it
    grows what it adds a search path to), and they get no symlinks directory."""
    from pyfarm_docker.builder import elf

    _, root = dup_app
    site = next((root.parent / "venv" / "lib").glob("python3*/site-packages"))
    reals = root / "app/reals/r"
    for ext in reals.glob("_ext*"):
        assert elf.read.__wrapped__(str(ext)).rpath == (f"/app/symlinks/{ext.name}",)
    libdups = sorted(p.read_bytes() for p in reals.iterdir() if p.name.endswith("libdup.so.1"))
    assert libdups == sorted((site / f"{n}.libs/libdup.so.1").read_bytes() for n in ("pkga",
                                                                                      "pkgb"))
    assert not any("libdup" in p.name for p in (root / "app/symlinks").iterdir())
