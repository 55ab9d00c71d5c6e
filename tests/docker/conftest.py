"""Docker tier: a daemon must answer (scripts/docker-up); a missing one fails, never skips."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Iterator

import docker
import pytest

from pyfarm_docker.driver import engine

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
SCRIPT = SCRIPTS / "make-base-image"

# image -> (sys.version_info[:2], sys.prefix)
IMAGES = {
    "local/python:3.11-bookworm": ((3, 11), "/usr"),
    "local/python:3.13-trixie": ((3, 13), "/usr"),
    "local/python:3.12-slim": ((3, 12), "/usr/local"),
}


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
    proc = subprocess.run([str(SCRIPT), *names], capture_output=True, text=True, timeout=1800,
                          check=False)
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
