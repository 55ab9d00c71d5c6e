"""podman builds the same generated Dockerfile: the image passes verify and holds the
same files as Docker's; errors and interrupts leave nothing behind in podman either."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pyfarm_docker import cli
from pyfarm_docker.driver import engine
from pyfarm_docker.driver.engine import Engine
from pyfarm_docker.driver.imagebuild import build_image
from pyfarm_docker.driver.oci import Layout
from pyfarm_docker.errors import BuildError
from tests.support.baseimages import DEBIAN
from tests.support.cases import build_case, build_options
from tests.support.images import image_files
from tests.support.interrupt import interrupt_while_tracing
from tests.support.leftovers import Own
from tests.support.paths import corpus_case

pytestmark = pytest.mark.docker


@pytest.mark.parametrize("name", ["stdlib_tour", "numpy_linalg"])
def test_podman_image_matches_dockers(name: str, client: Any, podman: Engine) -> None:
    case = corpus_case(name)
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


def test_podman_writes_an_oci_layout_that_verifies(tmp_path: Path, own_podman: Own,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    layout = tmp_path / "image"
    tag = f"pyfarm-test/{own_podman.marker()}:1"
    options = build_options(corpus_case("stdlib_tour"), tag, DEBIAN, verify=True,
                            network="none", engine="podman", output=Layout("oci", layout))
    built = build_image(options, report=lambda _: None)
    assert not _tagged(tag) and _tagged(f"{tag}-builder")
    inspected = json.loads(subprocess.run(["skopeo", "inspect", f"oci:{layout}:1"],
                                          capture_output=True, text=True, check=True).stdout)
    assert inspected["Labels"]["org.opencontainers.image.title"] == "stdlib_tour"
    assert cli.main(["verify", f"oci:{layout}", "--like", f"{tag}-builder",
                     "--engine", "podman"]) == 0
    assert f"oci:{layout} behaves like" in capsys.readouterr().err
    config = json.loads((layout / "manifest.json").read_text())[0]["Config"]
    assert config.endswith(built.image_id.split(":")[1])


def test_auto_takes_podman_when_docker_does_not_answer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, podman: Engine) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    with engine.session("auto") as eng:
        assert eng.name == "podman"
        assert eng.client.version()["Components"][0]["Name"] == "Podman Engine"


def _tagged(reference: str) -> bool:
    return subprocess.run(["podman", "image", "exists", reference], check=False).returncode == 0


def _nothing_left(own: Own) -> None:
    """No build container, tag, podman service or temporary file of this test's."""
    assert own.wait_for_containers() == [], "a container was left behind"
    assert own.tags() == [], "a tag was left behind"
    assert own.podman_services() == [], "podman's service was left running"
    assert own.temporary() == [], "a temporary file or directory was left behind"


def test_podman_build_failure_leaves_nothing(own_podman: Own,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    project = own_podman.project("raise SystemExit('no config found')\n")
    code = cli.main(["build", str(project.path), "--engine", "podman", "--base", DEBIAN,
                     "--network", "none", "-t", project.tag])
    err = capsys.readouterr().err
    assert code == BuildError.exit_code
    assert "build failed in stage builder" in err and "no config found" in err
    _nothing_left(own_podman)


def test_interrupted_podman_build_leaves_nothing(own_podman: Own) -> None:
    """A fresh project each run: a cached trace step would finish before the Ctrl-C."""
    project = own_podman.project("import time\ntime.sleep(30)\nprint(1)\n")
    interrupt_while_tracing(project.path, project.tag, "--engine", "podman")
    _nothing_left(own_podman)
