"""podman builds the same generated Dockerfile: the image passes verify and holds the
same files as Docker's; errors and interrupts leave nothing behind in podman either."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pyfarm_docker import cli, engine
from pyfarm_docker.engine import Engine
from pyfarm_docker.errors import BuildError
from tests.docker.test_corpus_images import DEBIAN, build_case
from tests.support.images import image_files
from tests.support.paths import corpus_cases

pytestmark = pytest.mark.docker
TAG = "pyfarm-test/podman-should-not-exist:1"


@pytest.mark.parametrize("name", ["stdlib_tour", "numpy_linalg"])
def test_podman_image_matches_dockers(name: str, client: Any, podman: Engine) -> None:
    (case,) = [c for c in corpus_cases() if c.name == name]
    built = build_case(case, DEBIAN, engine="podman")
    assert built.engine == "podman"
    assert built.verdict is not None and built.verdict.ok
    by_docker = build_case(case, DEBIAN, engine="docker")
    podman_files = image_files(podman.client, built.tag)
    docker_files = image_files(client, by_docker.tag)
    assert len(docker_files) > 1000
    assert sorted(set(podman_files) ^ set(docker_files)) == []
    differ = [p for p in docker_files if docker_files[p] != podman_files[p]]
    assert differ == []


def test_auto_takes_podman_when_docker_does_not_answer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, podman: Engine) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    with engine.session("auto") as eng:
        assert eng.name == "podman"
        assert eng.client.version()["Components"][0]["Name"] == "Podman Engine"


def _containers() -> set[str]:
    """Every container podman knows, buildah's build containers included."""
    out = subprocess.run(["podman", "ps", "-a", "--external", "--format", "{{.ID}}"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def _tagged(reference: str) -> bool:
    return subprocess.run(["podman", "image", "exists", reference], check=False).returncode == 0


def _services() -> str:
    return subprocess.run(["pgrep", "-f", "podman system service --time=0 unix:///tmp/pyfarm"],
                          capture_output=True, text=True, check=False).stdout


def test_podman_build_failure_leaves_nothing(tmp_path: Path, podman: Engine,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    before, services = _containers(), _services()
    (tmp_path / "app.py").write_text("raise SystemExit('no config found')\n")
    code = cli.main(["build", str(tmp_path), "--engine", "podman", "--base", DEBIAN,
                     "--network", "none", "-t", TAG])
    err = capsys.readouterr().err
    assert code == BuildError.exit_code
    assert "build failed in stage builder" in err and "no config found" in err
    assert _containers() == before
    assert not _tagged(TAG)
    assert _services() == services


def test_interrupted_podman_build_leaves_nothing(tmp_path: Path, podman: Engine) -> None:
    before, services = _containers(), _services()
    (tmp_path / "app.py").write_text("import time\ntime.sleep(30)\nprint(1)\n")
    proc = subprocess.Popen([sys.executable, "-m", "pyfarm_docker", "build", str(tmp_path),
                             "--engine", "podman", "--base", DEBIAN, "--network", "none",
                             "-t", TAG], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "pyfarm-docker trace" in line:
            break
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    assert "interrupted" in proc.stderr.read()
    assert _containers() == before
    assert not _tagged(TAG)
    assert _services() == services
