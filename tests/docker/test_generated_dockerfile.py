"""A generated Dockerfile builds without the tool: with Docker's legacy builder (the
portable variant), and with BuildKit and podman (both variants)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pyfarm_docker import cli
from pyfarm_docker.driver.engine import Engine
from tests.support.baseimages import DEBIAN
from tests.support.paths import corpus_case

pytestmark = pytest.mark.docker
# docker.io's own client: it builds with the daemon's BuildKit without the buildx plugin.
DOCKER_20 = "/usr/bin/docker"


def _generate(tmp_path: Path, *flags: str) -> Path:
    project = tmp_path / "project"
    shutil.copytree(corpus_case("module_entry"), project)
    (project / "pyproject.toml").write_text(
        '[tool.pyfarm-docker]\nentry = ["-m", "greeter"]\nargs = ["committed"]\n')
    assert cli.main(["generate", str(project), "--base", DEBIAN, "--python", "3.11",
                     "--download", *flags]) == 0
    wheelhouse = project / ".pyfarm" / "wheelhouse"
    assert list(wheelhouse.glob("PyYAML-*.whl")) or list(wheelhouse.glob("pyyaml-*.whl"))
    return project


def _build(argv: list[str], project: Path, tag: str, buildkit: bool = False) -> None:
    """``argv`` is the client, then options for its build command."""
    env = dict(os.environ, DOCKER_BUILDKIT="1" if buildkit else "0")
    done = subprocess.run([argv[0], "build", *argv[1:], "-q", "--network", "none", "-f",
                           ".pyfarm/Dockerfile", "-t", tag, "."], cwd=project, env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]


def test_plain_docker_build_of_a_generated_dockerfile(tmp_path: Path, client: Any,
                                                      base_images: list[str]) -> None:
    project = _generate(tmp_path)
    _build(["docker"], project, "pyfarm-test/generated:1")
    out = client.containers.run("pyfarm-test/generated:1", network_mode="none", remove=True)
    assert b'"message": "Bonjour, committed!"' in out
    assert client.images.get("pyfarm-test/generated:1").attrs["Config"]["Cmd"] == ["committed"]


def test_the_legacy_builder_rejects_the_buildkit_variant(tmp_path: Path,
                                                         base_images: list[str]) -> None:
    """Why the buildkit variant is opt-in."""
    project = _generate(tmp_path, "--syntax", "buildkit")
    with pytest.raises(AssertionError, match="--mount"):
        _build(["docker"], project, "pyfarm-test/generated:legacy")


@pytest.mark.parametrize("syntax", ["portable", "buildkit"])
def test_buildkit_builds_both_variants(tmp_path: Path, syntax: str, client: Any,
                                       base_images: list[str]) -> None:
    project = _generate(tmp_path, "--syntax", syntax)
    tag = f"pyfarm-test/generated:buildkit-{syntax}"
    _build([DOCKER_20], project, tag, buildkit=True)
    out = client.containers.run(tag, network_mode="none", remove=True)
    assert b'"message": "Bonjour, committed!"' in out
    # The buildkit variant mounts the wheels into RUN steps: none is stored in a layer.
    _build([DOCKER_20, "--target", "builder"], project, f"{tag}-builder", buildkit=True)
    found = client.containers.run(f"{tag}-builder",
                                  ["find", "/pyfarm/tool", "/pyfarm/wheelhouse", "-type", "f"],
                                  entrypoint=[], network_mode="none", remove=True)
    assert (found == b"") == (syntax == "buildkit")


@pytest.mark.parametrize("syntax", ["portable", "buildkit"])
def test_podman_builds_the_generated_dockerfile(tmp_path: Path, syntax: str,
                                                podman: Engine) -> None:
    project = _generate(tmp_path, "--syntax", syntax)
    tag = f"pyfarm-test/generated:podman-{syntax}"
    _build(["podman"], project, tag)
    try:
        out = subprocess.run(["podman", "run", "--rm", "--network", "none", tag],
                             capture_output=True, text=True, check=True).stdout
    finally:
        subprocess.run(["podman", "rmi", tag], capture_output=True, check=False)
    assert '"message": "Bonjour, committed!"' in out
