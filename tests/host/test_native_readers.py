"""Host tier of issue 15: files that native code opens (glibc's locale, ncurses' terminfo,
iconv's gconv modules, OpenSSL's config, a C extension's data file) ship in the farm at
the paths they were opened. The app of tests/support/nativereaders.py is traced and
assembled on the host, its files placed at the same absolute paths as in the Docker
tier's builder, and the farm runs in an empty root: each reader's line must be the one
the app prints outside the farm."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from pyfarm_docker.builder.assemble import AssembleOptions, assemble
from pyfarm_docker.builder.tracer import TraceOptions, run_trace
from pyfarm_docker.documents.manifest import Manifest
from pyfarm_docker.runtime import Runtime
from tests.support import emptyroot, nativereaders
from tests.support.nativereaders import EXPECTED, LOCALE_DIR, NATIVE_DIR, READERS
from tests.support.paths import HOST_PYTHON

pytestmark = pytest.mark.host
RUNTIME = Runtime()


def _make_parents(path: Path, made: list[Path]) -> None:
    """Create ``path``'s missing parents; the topmost one created is remembered."""
    missing = [p for p in path.parents if not p.exists()]
    if missing:
        path.parent.mkdir(parents=True)
        made.append(missing[-1])


def _place_tree(source: Path, dest: Path, made: list[Path]) -> None:
    """``source`` copied to ``dest`` unless something is there already (then it is used
    as it is: a de_DE.utf8 of the host's own reads the same)."""
    if dest.exists():
        return
    _make_parents(dest, made)
    shutil.copytree(source, dest)
    made.append(dest)


def _place_file(source: Path, dest: Path, made: list[Path]) -> None:
    """``source`` copied to ``dest``; a different file already there is never replaced."""
    if dest.exists():
        if dest.read_bytes() != source.read_bytes():
            pytest.fail(f"{dest} exists with other contents than the test's; it is not "
                        "the test's to replace", pytrace=False)
        return
    _make_parents(dest, made)
    shutil.copyfile(source, dest)
    made.append(dest)


@pytest.fixture(scope="module")
def placed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The compiled locale and NATIVE_DIR's files at their absolute paths on the host,
    for as long as the module runs; only what this fixture created is removed."""
    work = tmp_path_factory.mktemp("native-files")
    made: list[Path] = []
    try:
        _place_tree(nativereaders.compile_locale(work / "locale"), Path(LOCALE_DIR), made)
        files = nativereaders.write_native_files(work / "native")
        for source in sorted(files.iterdir()):
            _place_file(source, Path(NATIVE_DIR) / source.name, made)
        yield
    finally:
        for path in reversed(made):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


@dataclass(frozen=True)
class Farmed:
    """The app run plainly in its venv, and its farm run in an empty root."""

    plain: subprocess.CompletedProcess[str]
    farm: subprocess.CompletedProcess[str]
    root: Path
    manifest: Manifest


@pytest.fixture(scope="module")
def farmed(placed: None, tmp_path_factory: pytest.TempPathFactory) -> Farmed:
    work = tmp_path_factory.mktemp("native-readers")
    wheel = nativereaders.greeting_wheel(work, HOST_PYTHON)
    venv = work / "venv"
    subprocess.run([HOST_PYTHON, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin/pip"), "install", "-q", "--no-index", str(wheel)],
                   check=True)
    python = str(venv / "bin/python")
    app = work / "src"
    app.mkdir()
    (app / "app.py").write_text(nativereaders.APP)
    run_trace(TraceOptions((python, "app.py"), work / "trace.json", cwd=app))
    manifest = assemble(AssembleOptions(work / "trace.json", work / "root"))
    plain = subprocess.run([python, "app.py"], cwd=app, capture_output=True, text=True,
                           timeout=120, check=False)
    farm = emptyroot.run(work / "root", [*RUNTIME.entrypoint(("app.py",))],
                         str(RUNTIME.workdir), dict(RUNTIME.env()))
    return Farmed(plain, farm, work / "root", manifest)


@pytest.mark.parametrize("reader", READERS)
def test_the_app_reads_it_outside_the_farm(farmed: Farmed, reader: str) -> None:
    """The host gives each reader what it reads: else the farm's check means nothing."""
    plain = farmed.plain
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert nativereaders.lines(plain.stdout).get(reader) == EXPECTED[reader], plain.stdout


@pytest.mark.parametrize("reader", READERS)
def test_the_farm_ships_what_native_code_read(farmed: Farmed, reader: str) -> None:
    farm = farmed.farm
    assert farm.returncode == 0, farm.stderr[-3000:]
    got = nativereaders.lines(farm.stdout).get(reader)
    assert got == EXPECTED[reader], f"{farm.stdout}\n{farm.stderr[-3000:]}"


def test_the_locale_ships_whole(farmed: Farmed) -> None:
    """glibc read some of the locale's LC_* files; the farm has all of them, at their
    paths (another program's setlocale may need the others)."""
    wanted = sorted(str(p) for p in Path(LOCALE_DIR).rglob("*") if p.is_file())
    assert wanted, f"{LOCALE_DIR} holds no file"
    shipped = {f.path.lstrip("/") for f in farmed.manifest.files}
    missing = [p for p in wanted if p.lstrip("/") not in shipped]
    assert missing == [], f"not in the farm: {missing}"
    for path in wanted:
        farm_copy = farmed.root / path.lstrip("/")
        assert farm_copy.is_file() and not os.path.islink(farm_copy), path
        assert farm_copy.read_bytes() == Path(path).read_bytes(), path
