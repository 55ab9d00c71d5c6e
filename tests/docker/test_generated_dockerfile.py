"""A generated Dockerfile builds with plain `docker build` (legacy builder, no tool)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pyfarm_docker import cli
from tests.docker.test_corpus_images import DEBIAN
from tests.support.paths import corpus_cases

pytestmark = pytest.mark.docker


def test_plain_docker_build_of_a_generated_dockerfile(tmp_path: Path, client: Any,
                                                      base_images: list[str]) -> None:
    (case,) = [c for c in corpus_cases() if c.name == "module_entry"]
    project = tmp_path / "project"
    shutil.copytree(case, project)
    (project / "pyproject.toml").write_text(
        '[tool.pyfarm-docker]\nentry = ["-m", "greeter"]\nargs = ["committed"]\n')
    assert cli.main(["generate", str(project), "--base", DEBIAN, "--python", "3.11",
                     "--download"]) == 0
    assert list((project / ".pyfarm" / "wheelhouse").glob("PyYAML-*.whl")) or list(
        (project / ".pyfarm" / "wheelhouse").glob("pyyaml-*.whl"))
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    subprocess.run(["docker", "build", "-q", "--network", "none", "-f", ".pyfarm/Dockerfile",
                    "-t", "pyfarm-test/generated:1", "."], cwd=project, env=env, check=True,
                   capture_output=True)
    out = client.containers.run("pyfarm-test/generated:1", network_mode="none", remove=True)
    assert b'"message": "Bonjour, committed!"' in out
    assert client.images.get("pyfarm-test/generated:1").attrs["Config"]["Cmd"] == ["committed"]
