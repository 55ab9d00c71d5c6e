"""Bad input to `build`: one ERROR line, its exit code, and nothing left behind (no tag,
no container, no temporary context)."""

from __future__ import annotations

import glob
import io
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from pyfarm_docker import cli
from pyfarm_docker.errors import BuildError, DockerError, UsageError
from tests.docker.test_corpus_images import DEBIAN

pytestmark = pytest.mark.docker
TAG = "pyfarm-test/should-not-exist:1"


def _contexts() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "pyfarm-context-*")))


@pytest.fixture
def nothing_left(client: Any) -> Iterator[None]:
    containers = {c.id for c in client.containers.list(all=True)}
    contexts = _contexts()
    yield
    deadline = time.monotonic() + 60  # an interrupted build's step is removed by the daemon
    while {c.id for c in client.containers.list(all=True)} != containers:
        assert time.monotonic() < deadline, "a container was left behind"
        time.sleep(1)
    assert _contexts() == contexts
    assert not client.images.list(name=TAG.split(":")[0])


def _project(tmp_path: Path, app: str, requirements: str = "") -> Path:
    (tmp_path / "app.py").write_text(app)
    (tmp_path / "requirements.txt").write_text(requirements)
    return tmp_path


def _build(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["build", *argv, "-t", TAG])
    err = capsys.readouterr().err
    return code, err


def test_unknown_base_image(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            nothing_left: None) -> None:
    code, err = _build([str(_project(tmp_path, "print(1)\n")), "--base", "nope/nope:1"], capsys)
    assert code == UsageError.exit_code
    assert "base image 'nope/nope:1' is not available locally" in err


def test_base_image_without_python(tmp_path: Path, client: Any,
                                   capsys: pytest.CaptureFixture[str], nothing_left: None) -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        info = tarfile.TarInfo("etc/hostname")
        archive.addfile(info, io.BytesIO(b""))
    client.api.import_image_from_data(data.getvalue(), repository="pyfarm-test/nopython",
                                      tag="1")
    try:
        code, err = _build([str(_project(tmp_path, "print(1)\n")), "--base",
                            "pyfarm-test/nopython:1"], capsys)
    finally:
        client.images.remove("pyfarm-test/nopython:1", force=True)
    assert code == UsageError.exit_code
    assert "has no working python3" in err


def _as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user outside the docker group (root passes every permission check)."""
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           sys.executable, "-m", "pyfarm_docker", *argv],
                          capture_output=True, text=True, check=False)


def test_no_permission_on_the_docker_socket() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        Path(tmp, "app.py").write_text("print(1)\n")
        done = _as_nobody("build", f"{tmp}/app.py", "--engine", "docker", "-t", TAG)
    assert done.returncode == DockerError.exit_code, done.stderr
    assert done.stderr.startswith("ERROR: permission denied on the Docker socket")
    assert "docker group" in done.stderr


def test_unreadable_app(tmp_path: Path) -> None:
    _project(tmp_path, "print(1)\n")  # pytest's tmp dirs are root's, mode 0700
    done = _as_nobody("build", str(tmp_path / "app.py"), "--engine", "docker", "-t", TAG)
    assert done.returncode == UsageError.exit_code, done.stderr
    assert done.stderr.startswith(f"ERROR: cannot read {tmp_path / 'app.py'}: Permission denied")


def test_malformed_requirements(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                nothing_left: None) -> None:
    project = _project(tmp_path, "print(1)\n", "numpy>=>2\n")
    code, err = _build([str(project), "--base", DEBIAN], capsys)
    assert code == UsageError.exit_code
    assert "numpy>=>2" in err or "Invalid requirement" in err


def test_requirement_without_a_wheel_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             nothing_left: None) -> None:
    project = _project(tmp_path, "print(1)\n", "pyfarm-docker-no-such-project-4711\n")
    code, err = _build([str(project), "--base", DEBIAN], capsys)
    assert code == UsageError.exit_code
    assert "pyfarm-docker-no-such-project-4711" in err


def test_app_that_crashes_in_the_builder(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         nothing_left: None) -> None:
    project = _project(tmp_path, "raise SystemExit('no config found')\n")
    code, err = _build([str(project), "--base", DEBIAN, "--network", "none"], capsys)
    assert code == BuildError.exit_code
    assert "build failed in stage builder" in err
    assert "no config found" in err


def test_unreadable_context(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            nothing_left: None) -> None:
    project = _project(tmp_path, "print(1)\n")
    (project / "data").symlink_to(tmp_path / "missing-target")
    code, err = _build([str(project), "--base", DEBIAN], capsys)
    assert code == UsageError.exit_code
    assert "cannot read the project" in err


def interrupt_while_tracing(project: Path, tag: str, *flags: str) -> None:
    """Ctrl-C a `build` while its builder traces the app: exit 130, 'interrupted'."""
    proc = subprocess.Popen([sys.executable, "-m", "pyfarm_docker", "build", str(project),
                             "--base", DEBIAN, "--network", "none", "-t", tag, *flags],
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "pyfarm-docker trace" in line:
            break
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    assert "interrupted" in proc.stderr.read()


def test_interrupted_build_leaves_nothing(tmp_path: Path, client: Any,
                                          nothing_left: None) -> None:
    interrupt_while_tracing(_project(tmp_path, "import time\ntime.sleep(30)\nprint(1)\n"), TAG)
