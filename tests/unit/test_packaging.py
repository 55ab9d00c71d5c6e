"""The tool's own wheel for the builder installs and runs; the committed Dockerfile.example
is current. (The wheel built by the build backend is checked in the host tier: it compiles
the native tracer.)"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pyfarm_docker import cli
from pyfarm_docker.driver import selfwheel
from tests.support.paths import REPO


def test_top_level_templates_is_the_package_dir() -> None:
    assert (REPO / "templates").resolve() == (REPO / "pyfarm_docker" / "templates").resolve()


def test_builder_wheel_installs_and_runs(tmp_path: Path) -> None:
    wheel = selfwheel.write_tool_wheel(tmp_path / "wheels")
    names = zipfile.ZipFile(wheel).namelist()
    assert "pyfarm_docker/templates/Dockerfile.j2" in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin/pip"), "install", "-q", "--no-deps", str(wheel)], check=True)
    done = subprocess.run([str(venv / "bin/pyfarm-docker"), "--version"], capture_output=True,
                          text=True, check=True)
    assert done.stdout.startswith("pyfarm-docker ")


def test_builder_wheel_is_reproducible(tmp_path: Path) -> None:
    first = selfwheel.write_tool_wheel(tmp_path / "a").read_bytes()
    assert selfwheel.write_tool_wheel(tmp_path / "b").read_bytes() == first


def test_dockerfile_example_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["generate", str(REPO / "examples/hello/app.py"), "--dockerfile-only"]) == 0
    assert capsys.readouterr().out == (REPO / "Dockerfile.example").read_text(), (
        "Dockerfile.example is stale: run `make example`")
