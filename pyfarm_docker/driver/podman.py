"""Podman as the engine: its Docker-compatible API served on a private socket for one
command. Podman has no daemon; this service lives exactly as long as the command, so the
docker SDK, testcontainers and everything built on them work unchanged."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

from ..errors import DockerError

_READY_TIMEOUT = 30.0


def installed() -> bool:
    return shutil.which("podman") is not None


@contextlib.contextmanager
def service() -> Iterator[str]:
    """Run `podman system service` on a socket of our own; yields its DOCKER_HOST URL."""
    exe = shutil.which("podman")
    if exe is None:
        raise DockerError("podman is not installed",
                          "apt-get install podman (scripts/podman-up), or use --engine docker")
    tmp = Path(tempfile.mkdtemp(prefix="pyfarm-podman-"))
    sock, log = tmp / "podman.sock", tmp / "service.log"
    working = _working_containers(exe)
    # Its build contexts and scratch directories go into our own directory, removed below:
    # a service that must be killed (a build cut short on a busy machine) leaves nothing.
    env = {**os.environ, "TMPDIR": str(tmp)}
    with log.open("wb") as err:
        proc = subprocess.Popen([exe, "system", "service", "--time=0", f"unix://{sock}"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                env=env)
    try:
        _wait_ready(proc, sock, log)
        yield f"unix://{sock}"
    except BaseException:
        # A build cut short (Ctrl-C, an error) leaves buildah's working containers
        # behind, even with the podman CLI: remove the ones this session made.
        _stop(proc)
        _remove(exe, _working_containers(exe) - working)
        raise
    finally:
        _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def _working_containers(exe: str) -> set[str]:
    """buildah's build containers, which the Docker-compatible API does not list."""
    out = subprocess.run([exe, "ps", "--all", "--external", "--format", "{{.ID}} {{.Names}}"],
                         capture_output=True, text=True, check=False).stdout
    return {line.split()[0] for line in out.splitlines()
            if line.endswith("-working-container")}


def _remove(exe: str, containers: set[str]) -> None:
    if containers:
        subprocess.run([exe, "rm", "--force", *sorted(containers)], capture_output=True,
                       check=False)


def _wait_ready(proc: subprocess.Popen[bytes], sock: Path, log: Path) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            lines = log.read_text(errors="replace").strip().splitlines() or ["(no output)"]
            raise DockerError(f"podman system service exited: {lines[-1]}",
                              "check `podman info` works for this user")
        if _answers(sock):
            return
        time.sleep(0.05)
    raise DockerError(f"podman system service did not answer within {_READY_TIMEOUT:.0f}s",
                      "check `podman info` works for this user")


def _answers(sock: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(sock))
        except OSError:
            return False
    return True


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
