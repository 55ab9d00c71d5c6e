"""The engine dying in the middle of a build is a one-line error with its exit code, not a
urllib3 traceback, and nothing gets tagged. podman's service runs per command on a
private socket, so the test can kill a real engine without disturbing anyone else's."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from pyfarm_docker.driver.engine import Engine
from pyfarm_docker.driver.imagebuild import build_image
from pyfarm_docker.errors import DockerError, PyfarmError
from tests.support.baseimages import DEBIAN
from tests.support.cases import build_options
from tests.support.leftovers import Own

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
