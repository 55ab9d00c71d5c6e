"""`build --output oci:DIR|tar:FILE`: a valid OCI layout (skopeo and umoci read it), the
same files as the image, and it runs and verifies after loading, in Docker and podman."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pyfarm_docker import cli
from pyfarm_docker.driver.engine import Engine
from pyfarm_docker.driver.imagebuild import BuildResult, build_image
from pyfarm_docker.driver.oci import Layout
from pyfarm_docker.errors import UsageError
from tests.support.baseimages import DEBIAN
from tests.support.cases import build_options
from tests.support.images import image_files, tree_files
from tests.support.leftovers import Own
from tests.support.paths import corpus_case

pytestmark = pytest.mark.docker


def _build(tag: str, output: Layout) -> BuildResult:
    options = build_options(corpus_case("stdlib_tour"), tag, DEBIAN, verify=True,
                            network="none", engine="docker", output=output)
    return build_image(options, report=lambda _: None)


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def test_oci_dir_is_valid_and_verifies(tmp_path: Path, client: Any, base_images: list[str],
                                       own: Own, capsys: pytest.CaptureFixture[str]) -> None:
    layout = tmp_path / "image"
    tag = f"pyfarm-test/{own.marker()}:1"
    built = _build(tag, Layout("oci", layout))
    assert own.tags() == [f"{tag}-builder"]  # the image itself is not tagged
    inspected = json.loads(_run("skopeo", "inspect", f"oci:{layout}:1"))
    assert inspected["Labels"]["org.opencontainers.image.title"] == "stdlib_tour"
    diff_ids = client.images.get(built.image_id).attrs["RootFS"]["Layers"]
    assert len(inspected["Layers"]) == len(diff_ids) == 4
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:])
                          .read_bytes())
    assert manifest["config"]["digest"] == built.image_id  # the config is kept byte for byte

    _run("umoci", "unpack", "--image", f"{layout}:1", str(tmp_path / "bundle"))
    assert tree_files(tmp_path / "bundle" / "rootfs") == image_files(client, built.image_id)

    assert cli.main(["verify", f"oci:{layout}", "--like", f"{tag}-builder"]) == 0
    assert f"oci:{layout} behaves like" in capsys.readouterr().err
    # verify loaded the layout under a name of its own, and removed that name.
    loaded = [t for t in client.images.get(built.image_id).tags if t.startswith("pyfarm-load/")]
    assert loaded == []

    assert cli.main(["report", f"oci:{layout}", "--json"]) == 0
    from_layout = json.loads(capsys.readouterr().out)
    assert cli.main(["report", f"{tag}-builder", "--json"]) == UsageError.exit_code
    capsys.readouterr()
    assert cli.main(["report", built.image_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == from_layout
    assert from_layout["files"] > 1000


def test_oci_tar_runs_in_docker_and_podman(tmp_path: Path, client: Any, podman: Engine,
                                           own: Own) -> None:
    archive = tmp_path / "image.tar"
    tag = f"pyfarm-test/{own.marker()}:1"
    built = _build(tag, Layout("tar", archive))
    first = archive.read_bytes()
    _build(tag, Layout("tar", archive))
    assert archive.read_bytes() == first  # same image, same archive
    assert f"Loaded image: {tag}" in _run("docker", "load", "-i", str(archive))
    try:
        assert client.images.get(tag).id == built.image_id
        by_docker = _run("docker", "run", "--rm", "--network", "none", tag)
    finally:
        client.images.remove(tag)
    assert '"sqlite": [1, 42]' in by_docker
    _run("podman", "load", "-q", "-i", str(archive))
    try:
        by_podman = _run("podman", "run", "--rm", "--network", "none", tag)
    finally:
        _run("podman", "rmi", tag)
    assert json.loads(by_podman).keys() == json.loads(by_docker).keys()
