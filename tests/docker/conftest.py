"""Docker tier: a daemon must answer (scripts/docker-up); a missing one fails, never skips."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

import docker
import pytest

from pyfarm_docker.driver import engine
from tests.support import leftovers, nobody
from tests.support.baseimages import IMAGES, MAKE_BASE_IMAGE, SCRIPTS


@pytest.fixture(scope="session")
def client() -> Any:
    try:
        c = docker.from_env()
        c.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"no Docker daemon ({exc}); run scripts/docker-up")
    return c


@pytest.fixture(scope="session")
def base_images(client: Any) -> list[str]:
    names = list(IMAGES)
    proc = subprocess.run([str(MAKE_BASE_IMAGE), *names], capture_output=True, text=True,
                          timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return names


@pytest.fixture(scope="session")
def podman(base_images: list[str]) -> Iterator[engine.Engine]:
    """podman, with the base images copied into its storage; missing podman fails."""
    proc = subprocess.run([str(SCRIPTS / "podman-up"), *base_images], capture_output=True,
                          text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with engine.session("podman") as eng:
        yield eng


def _own(engine_: Any, work: Path, monkeypatch: pytest.MonkeyPatch
         ) -> Iterator[leftovers.Own]:
    own = leftovers.Own(engine_, work)
    leftovers.private_tmp(monkeypatch, own)
    try:
        yield own
    finally:
        own.clean()  # whatever a failed test made goes, so later runs start clean


@pytest.fixture
def own(client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> Iterator[leftovers.Own]:
    """What this test makes on the Docker daemon, told apart from other builds there."""
    yield from _own(client, tmp_path / "own", monkeypatch)


@pytest.fixture
def own_podman(podman: engine.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
               ) -> Iterator[leftovers.Own]:
    """What this test makes in podman's storage, told apart from other builds there."""
    yield from _own("podman", tmp_path / "own", monkeypatch)


@pytest.fixture(scope="session")
def as_nobody() -> Iterator[nobody.Nobody]:
    """The CLI as uid 65534, from a copy of the tool in a world-readable directory."""
    root = Path(tempfile.mkdtemp(prefix="pyfarm-nobody-", dir="/tmp"))
    try:
        yield nobody.install(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
