"""The engine dying in the middle of a build is a one-line error with its exit code, not a
urllib3 traceback, and nothing gets tagged. podman's service runs per command on a
private socket, so the test can kill a real engine without disturbing anyone else's."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest

from pyfarm_docker import cli
from pyfarm_docker.driver.engine import Engine
from pyfarm_docker.driver.imagebuild import build_image
from pyfarm_docker.errors import DockerError, PyfarmError, VerifyError
from tests.support.baseimages import DEBIAN
from tests.support.cases import build_options
from tests.support.leftovers import Own, Project

pytestmark = pytest.mark.docker


def test_the_engine_dying_mid_build(own_podman: Own, podman: Engine) -> None:
    project = own_podman.project("import time\ntime.sleep(60)\nprint('done')\n")
    steps: list[str] = []
    errors: list[PyfarmError] = []

    def build() -> None:
        options = build_options(project.path, project.tag, DEBIAN, engine="podman",
                                network="none")
        try:
            build_image(options, report=steps.append)
        except PyfarmError as exc:
            errors.append(exc)

    thread = threading.Thread(target=build)
    thread.start()
    deadline = time.monotonic() + 600
    while not any("pyfarm-docker trace" in s for s in steps) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(5)  # well inside the traced run's minute
    services = own_podman.podman_services()
    assert services, steps[-5:]
    for pid in services:
        os.kill(int(pid), signal.SIGKILL)
    thread.join(timeout=300)
    assert not thread.is_alive()
    (error,) = errors
    assert isinstance(error, DockerError), error.message
    assert error.exit_code == 5 and "stopped answering" in error.message
    assert "\n" not in error.message
    assert own_podman.tags() == []


def test_two_builds_at_once_do_not_interfere(own: Own) -> None:
    """Two apps built at the same time on one daemon: each gets its own image, verified
    against its own builder, and neither leaves containers or temporary files behind."""
    projects = [own.project(f"print({n} * 'app {n} ')\n") for n in (1, 2)]
    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def build(project: Project) -> None:
        try:
            built = build_image(build_options(project.path, project.tag, DEBIAN, verify=True,
                                              network="none"), report=lambda _: None)
            results[project.tag] = built.image_id
        except BaseException as exc:  # reported below, with the other build's
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(p,)) for p in projects]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=900)
    assert errors == []
    assert sorted(results) == sorted(p.tag for p in projects)
    assert len(set(results.values())) == 2
    assert own.wait_for_containers() == []
    assert own.temporary() == []
    own.clean()


def test_a_killed_verify_container(own: Own, client: Any,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Someone kills the image's container while verify runs it: verify fails in one line
    (exit 7) and removes both containers."""
    project = own.project("import time\ntime.sleep(8)\nprint('slept')\n")
    built = build_image(build_options(project.path, project.tag, DEBIAN, network="none",
                                      verify=True), report=lambda _: None)
    builder = built.builder_tag
    assert builder is not None
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(cli.main(
        ["verify", project.tag, "--like", builder])))
    thread.start()
    deadline = time.monotonic() + 300
    victim = None
    while victim is None and time.monotonic() < deadline:
        running = client.containers.list(filters={"ancestor": built.image_id})
        victim = running[0] if running else None
        time.sleep(0.5)
    assert victim is not None
    victim.kill()
    thread.join(timeout=300)
    err = capsys.readouterr().err
    assert codes == [VerifyError.exit_code], err
    assert "ERROR: the image does not behave like its builder" in err.splitlines()
    assert own.wait_for_containers() == []
    own.clean()
