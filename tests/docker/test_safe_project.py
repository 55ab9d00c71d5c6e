"""A project with secrets beside the app and a hostile name, built for real: by `build`
(the docker SDK makes the context) and by a plain `docker build` of what `generate` wrote
(Docker makes it, from the .dockerignore). Neither image nor builder stage holds the
secrets, and the title label and CMD are exactly the hostile values."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from pyfarm_docker import cli
from pyfarm_docker.driver.dockerfile import DockerfileOptions
from pyfarm_docker.driver.imagebuild import BuildOptions, build_image
from pyfarm_docker.driver.settings import Flags, resolve
from tests.support.images import image_files

pytestmark = pytest.mark.docker
DEBIAN = "local/python:3.11-bookworm"
TITLE = 'my "app" $HOME \\ été'
ARGS = ["a b", 'say "hi"', "$HOME", "${PATH}", "back\\slash", "naïve"]
KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
       "-----END OPENSSH PRIVATE KEY-----\n")
SECRETS = (".env", ".git", "id_ed25519", "notes.txt")
APP = """import json, pathlib, sys
config = json.loads((pathlib.Path(__file__).parent / "data" / "config.json").read_text())
print(json.dumps({"args": sys.argv[1:], "colour": config["colour"]}))
"""


def _project(tmp_path: Path) -> Path:
    project = tmp_path / TITLE
    (project / ".git").mkdir(parents=True)
    (project / ".git" / "config").write_text("[remote]\n")
    (project / "deploy").mkdir()
    (project / "deploy" / "id_ed25519").write_text(KEY)
    (project / "data").mkdir()
    (project / "data" / "config.json").write_text('{"colour": "green"}')
    (project / ".env").write_text("PASSWORD=hunter2\n")
    (project / "notes.txt").write_text("private notes\n")
    (project / ".dockerignore").write_text("notes.txt\n")
    (project / "app.py").write_text(APP)
    os.symlink("app.py", project / "main_link.py")
    return project


def _leaks(files: dict[str, Any], app_dir: str) -> list[str]:
    return [path for path in files
            if path.startswith(app_dir) and any(secret in path for secret in SECRETS)]


def _check_final(client: Any, image: str) -> None:
    config = client.images.get(image).attrs["Config"]
    assert config["Labels"]["org.opencontainers.image.title"] == TITLE
    assert config["Cmd"] == ARGS
    out = client.containers.run(image, network_mode="none", remove=True)
    assert json.loads(out) == {"args": ARGS, "colour": "green"}
    files = image_files(client, image)
    assert "app/app/app.py" in files
    assert _leaks(files, "app/app/") == []


def _check_builder(client: Any, image: str) -> None:
    """The builder's /src, the project as the build context brought it (the base image
    has device files, which image_files does not list)."""
    container = client.containers.create(image, ["true"], entrypoint=[])  # never started
    try:
        stream, _ = container.get_archive("/src")
        data = b"".join(stream)
    finally:
        container.remove(force=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        files = {member.name: member for member in tar.getmembers()}
    assert _leaks(files, "src/") == []
    assert files["src/main_link.py"].issym()
    assert files["src/main_link.py"].linkname == "app.py"
    assert files["src/data/config.json"].isfile()


def test_build_leaves_the_secrets_out(tmp_path: Path, client: Any,
                                      base_images: list[str]) -> None:
    project = _project(tmp_path)
    settings = resolve(Flags(path=project / "app.py", args=tuple(ARGS), base=DEBIAN))
    lines: list[str] = []
    result = build_image(BuildOptions(DockerfileOptions(settings), "pyfarm-test/safe-build:1",
                                      network="none", verify=True), report=lines.append)
    assert ("3 files of the project go into the image, 4 stay out: 1 secret (.env); "
            "1 private key (deploy/id_ed25519); 1 VCS directory (.git/); "
            "1 .dockerignore (notes.txt); --include PATH brings one back") in lines
    _check_final(client, result.image_id)
    assert result.builder_tag is not None
    _check_builder(client, result.builder_tag)


def test_a_generated_dockerfile_leaves_the_secrets_out(tmp_path: Path, client: Any,
                                                       base_images: list[str]) -> None:
    project = _project(tmp_path)
    argv = ["generate", str(project / "app.py"), "--base", DEBIAN, "--python", "3.11"]
    assert cli.main([*argv, *(f"--arg={arg}" for arg in ARGS)]) == 0
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    for target, tag in (("final", "pyfarm-test/safe-generated:1"),
                        ("builder", "pyfarm-test/safe-generated:1-builder")):
        done = subprocess.run(["docker", "build", "-q", "--network", "none", "--target", target,
                               "-f", ".pyfarm/Dockerfile", "-t", tag, "."], cwd=project,
                              env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
    _check_final(client, "pyfarm-test/safe-generated:1")
    _check_builder(client, "pyfarm-test/safe-generated:1-builder")
