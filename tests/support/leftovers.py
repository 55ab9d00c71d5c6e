"""What one test made on an engine that others share, and whether any of it is left.

Other builds (another test run, a person at the same machine) come and go on the same
Docker daemon and podman storage, so a test never compares the whole engine before and
after. It gives what it makes a marker nobody else has: its project's directory is
named after it (the image's title label says it), its app's source opens with it (so
the builder's /src/app.py, and every step container after the COPY, holds it), and its
tags contain it. Its temporary files go to a directory of its own. Containers that hold
the marker, or carry this test session's testcontainers label, are the test's own.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import docker
import pytest
from testcontainers.core.labels import LABEL_SESSION_ID, SESSION_ID

APP_IN_BUILDER = "/src/app.py"  # runtime.BUILDER_SOURCE / the project's entry
SLACK = 5.0  # seconds between the engine's creation times and this clock


def new_marker() -> str:
    return f"pyfarm-test-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Project:
    """An app only this test has. Its tag is unique too; ``tag-builder`` is its sibling."""

    path: Path
    marker: str

    @property
    def tag(self) -> str:
        return f"pyfarm-test/{self.marker}:1"


@dataclass
class Own:
    """One test's projects, tags, containers and temporary files on a shared engine.

    ``engine`` is a docker SDK client, or ``"podman"`` for podman's storage (buildah's
    build containers included, which podman's Docker API does not list).
    """

    engine: Any
    work: Path
    started: float = field(default_factory=time.time)
    markers: list[str] = field(default_factory=list)

    @property
    def tmp(self) -> Path:
        """TMPDIR of the test and of what it runs (set by ``private_tmp``)."""
        return self.work / "tmp"

    def project(self, app: str, requirements: str = "") -> Project:
        marker = self.marker()
        path = self.work / marker
        path.mkdir(parents=True)
        (path / "app.py").write_text(f"# {marker}\n{app}")
        (path / "requirements.txt").write_text(requirements)
        return Project(path, marker)

    def marker(self) -> str:
        """A new marker of this test's (for a tag or an image it names itself)."""
        marker = new_marker()
        self.markers.append(marker)
        return marker

    def containers(self) -> list[str]:
        """IDs of this test's containers that still exist."""
        if self.engine == "podman":
            return [c["Id"] for c in _podman_containers() if self._podmans(c)]
        found = []
        for container in self.engine.containers.list(all=True, sparse=True):
            if self._created_since(container.attrs.get("Created", 0)) and self._dockers(
                    container):
                found.append(container.id)
        return found

    def tags(self) -> list[str]:
        """Tags on the engine that hold one of this test's markers."""
        if self.engine == "podman":
            out = _podman("images", "--format", "{{.Repository}}:{{.Tag}}")
            names = out.split()
        else:
            # One listing call: images.list() inspects each image after listing, and an
            # image another build removes meanwhile would fail it.
            names = [t for image in self.engine.api.images() for t in image.get("RepoTags")
                     or () if t != "<none>:<none>"]
        return sorted(n for n in names if any(m in n for m in self.markers))

    def temporary(self) -> list[str]:
        """What the tool left in the test's TMPDIR."""
        return sorted(p.name for p in self.tmp.iterdir()) if self.tmp.is_dir() else []

    def podman_services(self) -> list[str]:
        """`podman system service` processes on a socket in the test's TMPDIR."""
        done = subprocess.run(["pgrep", "-f", f"podman system service .*unix://{self.tmp}/"],
                              capture_output=True, text=True, check=False)
        return done.stdout.split()

    def wait_for_containers(self, timeout: float = 60) -> list[str]:
        """The test's containers once they are gone, or at ``timeout`` (an interrupted
        build's step container is removed by the daemon a little later)."""
        return _wait(self.containers, timeout)

    def clean(self) -> None:
        """Remove whatever the test left: its containers, then its tags."""
        for container in self.containers():
            if self.engine == "podman":
                subprocess.run(["podman", "rm", "--force", container], capture_output=True,
                               check=False)
            else:
                with contextlib.suppress(docker.errors.APIError):
                    self.engine.api.remove_container(container, force=True)
        for tag in self.tags():
            if self.engine == "podman":
                subprocess.run(["podman", "rmi", tag], capture_output=True, check=False)
            else:
                with contextlib.suppress(docker.errors.APIError):
                    self.engine.images.remove(tag)

    def _created_since(self, created: float) -> bool:
        return created >= self.started - SLACK

    def _labelled(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        return labels.get(LABEL_SESSION_ID) == SESSION_ID or any(
            m in value for value in labels.values() for m in self.markers)

    def _dockers(self, container: Any) -> bool:
        attrs = container.attrs
        if self._labelled(attrs.get("Labels")):
            return True
        try:
            stream, _ = container.get_archive(APP_IN_BUILDER)
            return self._holds(b"".join(stream))
        except docker.errors.APIError:  # gone, not a builder, or not readable: not known ours
            return False

    def _podmans(self, entry: dict[str, Any]) -> bool:
        if not self._created_since(entry.get("Created", 0)):
            return False
        if self._labelled(entry.get("Labels")):
            return True
        mounted = subprocess.run(["podman", "mount", entry["Id"]], capture_output=True,
                                 text=True, check=False)
        if mounted.returncode != 0:  # gone meanwhile
            return False
        try:
            app = Path(mounted.stdout.strip()) / APP_IN_BUILDER.lstrip("/")
            return app.is_file() and any(m in app.read_text(errors="replace")
                                         for m in self.markers)
        finally:
            subprocess.run(["podman", "umount", entry["Id"]], capture_output=True,
                           check=False)

    def _holds(self, archive: bytes) -> bool:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            for member in tar.getmembers():
                data = tar.extractfile(member) if member.isfile() else None
                if data is not None:
                    text = data.read().decode(errors="replace")
                    if any(m in text for m in self.markers):
                        return True
        return False


def private_tmp(monkeypatch: pytest.MonkeyPatch, own: Own) -> Path:
    """Send the temporary files of the test, and of the processes it starts, to
    ``own.tmp``: what the tool leaves there is the test's own."""
    own.tmp.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(tempfile, "tempdir", str(own.tmp))
    monkeypatch.setenv("TMPDIR", str(own.tmp))
    return own.tmp


def _wait(find: Callable[[], Sequence[str]], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        found = list(find())
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(1)


def _podman(*argv: str) -> str:
    return subprocess.run(["podman", *argv], capture_output=True, text=True,
                          check=True).stdout


def _podman_containers() -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(
        _podman("ps", "--all", "--external", "--format", "json") or "[]")
    return listed
