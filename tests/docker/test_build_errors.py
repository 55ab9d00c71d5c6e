"""Bad input to `build`: one ERROR line, its exit code, and nothing left behind (no tag,
no container, no temporary context). Other builds share the daemon: a test looks only
at what its own project made (tests/support/leftovers.py)."""

from __future__ import annotations

import io
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from pyfarm_docker import cli
from pyfarm_docker.errors import BuildError, DockerError, UsageError
from tests.support.baseimages import DEBIAN
from tests.support.interrupt import interrupt_while_tracing
from tests.support.leftovers import Own, Project
from tests.support.nobody import Nobody

pytestmark = pytest.mark.docker


@pytest.fixture
def nothing_left(own: Own) -> Iterator[Own]:
    yield own
    assert own.wait_for_containers() == [], "a container was left behind"
    assert own.temporary() == [], "a temporary file or directory was left behind"
    assert own.tags() == [], "a tag was left behind"


def _build(project: Project, argv: list[str], capsys: pytest.CaptureFixture[str]
           ) -> tuple[int, str]:
    code = cli.main(["build", str(project.path), *argv, "-t", project.tag])
    err = capsys.readouterr().err
    return code, err


def test_unknown_base_image(capsys: pytest.CaptureFixture[str], nothing_left: Own) -> None:
    project = nothing_left.project("print(1)\n")
    code, err = _build(project, ["--base", "nope/nope:1"], capsys)
    assert code == UsageError.exit_code
    assert "base image 'nope/nope:1' is not available locally" in err


def test_base_image_without_python(client: Any, capsys: pytest.CaptureFixture[str],
                                   nothing_left: Own) -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        info = tarfile.TarInfo("etc/hostname")
        archive.addfile(info, io.BytesIO(b""))
    base = f"pyfarm-test/{nothing_left.marker()}:nopython"
    client.api.import_image_from_data(data.getvalue(), repository=base.split(":")[0],
                                      tag="nopython")
    try:
        code, err = _build(nothing_left.project("print(1)\n"), ["--base", base], capsys)
    finally:
        client.images.remove(base, force=True)
    assert code == UsageError.exit_code
    assert "has no working python3" in err


def test_no_permission_on_the_docker_socket(as_nobody: Nobody) -> None:
    with tempfile.TemporaryDirectory(dir=as_nobody.root) as tmp:  # uid 65534 reads it
        Path(tmp).chmod(0o755)
        Path(tmp, "app.py").write_text("print(1)\n")
        done = as_nobody.run("build", f"{tmp}/app.py", "--engine", "docker", "-t",
                             "pyfarm-test/never-built:1")
    assert done.returncode == DockerError.exit_code, done.stderr
    assert done.stderr.startswith("ERROR: permission denied on the Docker socket")
    assert "docker group" in done.stderr


def test_unreadable_app(tmp_path: Path, as_nobody: Nobody) -> None:
    (tmp_path / "app.py").write_text("print(1)\n")  # pytest's tmp dirs are root's, mode 0700
    done = as_nobody.run("build", str(tmp_path / "app.py"), "--engine", "docker", "-t",
                         "pyfarm-test/never-built:1")
    assert done.returncode == UsageError.exit_code, done.stderr
    assert done.stderr.startswith(f"ERROR: cannot read {tmp_path / 'app.py'}: Permission denied")


def test_malformed_requirements(capsys: pytest.CaptureFixture[str], nothing_left: Own) -> None:
    project = nothing_left.project("print(1)\n", "numpy>=>2\n")
    code, err = _build(project, ["--base", DEBIAN], capsys)
    assert code == UsageError.exit_code
    assert "numpy>=>2" in err or "Invalid requirement" in err


def test_requirement_without_a_wheel_offline(capsys: pytest.CaptureFixture[str],
                                             nothing_left: Own) -> None:
    project = nothing_left.project("print(1)\n", "pyfarm-docker-no-such-project-4711\n")
    code, err = _build(project, ["--base", DEBIAN], capsys)
    assert code == UsageError.exit_code
    assert "pyfarm-docker-no-such-project-4711" in err


def test_app_that_crashes_in_the_builder(capsys: pytest.CaptureFixture[str],
                                         nothing_left: Own) -> None:
    project = nothing_left.project("raise SystemExit('no config found')\n")
    code, err = _build(project, ["--base", DEBIAN, "--network", "none"], capsys)
    assert code == BuildError.exit_code
    assert "build failed in stage builder" in err
    assert "no config found" in err


def test_symlink_out_of_the_project(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    nothing_left: Own) -> None:
    """A context that cannot be made as asked: a link inside the project, even a dangling
    one, is kept as a link; one pointing outside it is refused."""
    project = nothing_left.project("print(1)\n")
    (project.path / "data").symlink_to(tmp_path / "missing-target")
    code, err = _build(project, ["--base", DEBIAN], capsys)
    assert code == UsageError.exit_code
    assert "symlink data points outside the project" in err


def test_interrupted_build_leaves_nothing(nothing_left: Own) -> None:
    """A fresh project each run: a cached trace step would finish before the Ctrl-C."""
    project = nothing_left.project("import time\ntime.sleep(30)\nprint(1)\n")
    interrupt_while_tracing(project.path, project.tag)
