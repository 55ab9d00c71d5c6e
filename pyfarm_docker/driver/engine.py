"""Talk to the container engine (a Docker daemon, or podman through its Docker-compatible
API): reach it, inspect base images, build with progress, tag."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import docker
import docker.errors
import urllib3

from ..errors import BuildError, DockerError, UsageError
from . import podman
from .target import Target

ENGINES = ("auto", "docker", "podman")
# Docker's legacy builder says "Step 3/20 : COPY ..."; podman (buildah) "[1/2] STEP 3/13: COPY ...".
_STEP = re.compile(r"^(?:Step |\[\d+/\d+\] STEP )(\d+)/(\d+) ?: (.*)$")
# BuildKit's plain progress says "#7 [builder 3/9] RUN ...", once per step it starts.
_BUILDKIT_STEP = re.compile(r"^#(\d+) \[(?:(\S+) )?(\d+)/(\d+)\] (.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# docker/distribution's reference grammar: [domain[:port]/]path[:tag][@sha256:hex].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_NAME = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
_REFERENCE = re.compile(
    rf"(?P<name>{_NAME})(?::(?P<tag>[\w][\w.-]{{0,127}}))?(?P<digest>@sha256:[0-9a-f]{{64}})?",
    re.ASCII,
)
_NAME_MAX = 255  # Docker refuses longer repository names
_PROBE_PY = ("import sys, platform; v = platform.libc_ver(); "
             "print('%d.%d' % sys.version_info[:2], v[0], v[1], platform.machine(), "
             "getattr(sys, 'abiflags', '') or '-')")


def _reference(reference: str) -> re.Match[str] | None:
    match = _REFERENCE.fullmatch(reference)
    if match is None or len(match.group("name")) > _NAME_MAX:
        return None
    return match


def check_reference(reference: str) -> tuple[str, str]:
    """``repo[:tag]`` (a name to tag an image with) -> (repo, tag); a UsageError for what
    Docker would refuse."""
    match = _reference(reference)
    if match is None or match.group("digest"):
        raise UsageError(f"{reference!r} is not a valid image reference",
                         "use lowercase name[:tag], e.g. myapp:1.0")
    return match.group("name"), match.group("tag") or "latest"


def check_image(reference: str, role: str) -> str:
    """An image to build from (``--base``, ``--final``): ``name[:tag][@sha256:<64 hex>]`` by
    Docker's grammar, or a UsageError; returns it."""
    if _reference(reference) is None:
        raise UsageError(f"{role} image {reference!r} is not a valid image reference",
                         "use name[:tag] or name@sha256:<64 hex digits>, e.g. "
                         "python:3.12-slim")
    return reference


@dataclass(frozen=True)
class Engine:
    """A container engine that answers: its name and a docker SDK client to it."""

    name: str
    client: Any
    host: str | None = None  # DOCKER_HOST of the API when it is not the environment's

    def client_kw(self) -> dict[str, Any]:
        """Arguments for docker.from_env (as testcontainers calls it) to reach this engine."""
        if self.host is None:
            return {}
        return {"environment": {**os.environ, "DOCKER_HOST": self.host}}


@contextlib.contextmanager
def session(choice: str = "auto") -> Iterator[Engine]:
    """The engine to use: ``auto`` takes Docker when its daemon answers, else podman."""
    if choice not in ENGINES:
        raise UsageError(f"unknown engine {choice!r}", f"use one of {', '.join(ENGINES)}")
    if choice != "podman":
        try:
            client = connect()
        except DockerError:
            if choice == "docker" or not podman.installed():
                raise
        else:  # outside the try: errors of the caller's block are not Docker's
            yield Engine("docker", client)
            return
    with podman.service() as host:
        yield Engine("podman", connect(host), host)


def connect(host: str | None = None) -> Any:
    """A docker SDK client whose daemon answers, or a DockerError saying what to do."""
    try:
        client = (docker.DockerClient(base_url=host, timeout=600) if host
                  else docker.from_env(timeout=600))
        client.ping()
    except docker.errors.DockerException as exc:
        text = str(exc)
        if "Permission denied" in text:
            raise DockerError("permission denied on the Docker socket",
                              "run as root or join the docker group") from None
        raise DockerError("no Docker daemon answers",
                          "start one (scripts/docker-up does it here), set DOCKER_HOST, "
                          "or use --engine podman") from None
    return client


def label(labels: dict[str, str] | None, name: str, image: str) -> str:
    """The value of label ``name`` among ``image``'s labels; images not made here lack it."""
    if not labels or name not in labels:
        raise UsageError(f"{image} has no {name} label", "was it built by pyfarm-docker?")
    return labels[name]


def image_label(client: Any, image: str, name: str) -> str:
    return label(client.images.get(image).attrs["Config"].get("Labels"), name, image)


def require_image(client: Any, name: str, role: str) -> None:
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        raise UsageError(f"{role} image {name!r} is not available locally",
                         "build or load it first (scripts/make-base-image for the local "
                         "bases), docker pull cannot reach a registry here") from None


def probe_base(client: Any, image: str) -> Target:
    """Run the base image once (no network) to read its Python, glibc and machine."""
    require_image(client, image, "base")
    container = client.containers.create(image, ["python3", "-c", _PROBE_PY],
                                         network_mode="none", entrypoint=[])
    try:
        container.start()
        status = container.wait(timeout=60)["StatusCode"]
        out = container.logs(stderr=False)
    except docker.errors.APIError:
        status = -1
    finally:
        container.remove(force=True)  # run(remove=True) leaves it when the start fails
    if status != 0:
        raise UsageError(f"base image {image!r} has no working python3",
                         "use a Python base image (e.g. python:3.12-slim)")
    parts = out.decode().split()
    if len(parts) != 5 or parts[1] != "glibc":
        libc = parts[1] if len(parts) == 5 else "an unknown C library"
        raise UsageError(f"base image {image!r} uses {libc}, not glibc",
                         "use a glibc-based image (Debian, Ubuntu, RHEL)")
    version, _, libc_version, machine, abiflags = parts
    major, minor = libc_version.split(".")[:2]
    return Target(version, (int(major), int(minor)), abiflags.strip("-"), machine)


@dataclass
class StepTracker:
    """Turns the daemon's stream into 'Step n/m' progress and keeps the log for errors."""

    on_step: Callable[[str], None]
    on_line: Callable[[str], None] | None = None
    started: float = 0.0
    step: str = ""
    stage: str = ""

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        self.log: list[str] = []
        self.vertices: set[str] = set()  # BuildKit steps already reported

    def feed(self, text: str) -> None:
        for line in _ANSI.sub("", text).splitlines():
            if not line.strip():
                continue
            self.log.append(line)
            if self.on_line is not None:
                self.on_line(line)
            match = _STEP.match(line)
            if match:
                self._new_step(match)
            kit = _BUILDKIT_STEP.match(line)
            if kit and kit.group(1) not in self.vertices:
                self.vertices.add(kit.group(1))
                self.stage = kit.group(2) or "final"
                self.step = f"step {kit.group(3)}/{kit.group(4)}"
                elapsed = time.monotonic() - self.started
                self.on_step(f"[{elapsed:6.1f}s] {self.step} ({self.stage}): "
                             f"{kit.group(5)[:90]}")

    def _new_step(self, match: re.Match[str]) -> None:
        self.step = f"step {match.group(1)}/{match.group(2)}"
        instruction = match.group(3)
        if instruction.upper().startswith("FROM "):
            self.stage = instruction.split()[-1] if " AS " in instruction.upper() else "final"
        elapsed = time.monotonic() - self.started
        self.on_step(f"[{elapsed:6.1f}s] {self.step} ({self.stage}): {instruction[:90]}")

    def failure(self, message: str) -> BuildError:
        tail = "\n".join(self.log[-25:])
        return BuildError(f"build failed in stage {self.stage or '?'}, {self.step or 'setup'}: "
                          f"{message.strip()}\n{tail}", "see the log lines above; -v shows all")


def build_stage(client: Any, context: Path, dockerfile: str, tracker: StepTracker,
          target: str | None = None, network: str | None = None, no_cache: bool = False,
          buildargs: dict[str, str] | None = None, platform: str | None = None) -> str:
    """Build one stage (``target``) with the legacy builder; returns the image id. Never
    tags."""
    kwargs: dict[str, Any] = {"path": str(context), "dockerfile": dockerfile, "rm": True,
                              "forcerm": True, "decode": True, "pull": False,
                              "nocache": no_cache, "buildargs": buildargs or {}}
    if platform:
        kwargs["platform"] = platform
    if target:
        kwargs["target"] = target
    if network:
        kwargs["network_mode"] = network
    image_id = ""
    try:
        for chunk in client.api.build(**kwargs):
            if "error" in chunk:
                raise tracker.failure(chunk["error"])
            tracker.feed(chunk.get("stream", ""))
            image_id = chunk.get("aux", {}).get("ID", image_id)
    except docker.errors.APIError as exc:
        raise tracker.failure(str(exc.explanation or exc)) from None
    except (OSError, urllib3.exceptions.HTTPError) as exc:  # the engine died mid-build
        raise DockerError(f"the engine stopped answering during the build ({exc})",
                          "check that dockerd (or podman) still runs; nothing was tagged"
                          ) from None
    if not image_id:
        raise tracker.failure("the daemon reported no image")
    return str(image_id)


def buildkit_client() -> list[str]:
    """A docker client that builds through the daemon's BuildKit: ``docker buildx build``
    where the buildx plugin is, else a client before 23, whose ``docker build`` speaks to
    BuildKit itself when DOCKER_BUILDKIT=1 (later ones need buildx for that)."""
    found = [shutil.which("docker") or "", "/usr/bin/docker", "/usr/local/bin/docker"]
    clients = [c for c in dict.fromkeys(found) if c and os.access(c, os.X_OK)]
    for cli in clients:
        if _quiet([cli, "buildx", "version"]) is not None:
            return [cli, "buildx", "build", "--load"]
    for cli in clients:
        version = re.search(r"version (\d+)\.", _quiet([cli, "--version"]) or "")
        if version and int(version.group(1)) < 23:
            return [cli, "build"]
    raise UsageError("building through BuildKit needs docker buildx, or a Docker client "
                     "before 23 (Debian's docker.io 20.10 has one)",
                     "install docker-buildx, or build with --syntax portable")


def _quiet(argv: list[str]) -> str | None:
    """A command's output, or None when it fails."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False,
                              env={**os.environ, "DOCKER_CLI_HINTS": "false"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def buildkit_stage(client: Any, context: Path, dockerfile: str, tracker: StepTracker,
                   target: str | None = None, network: str | None = None,
                   no_cache: bool = False, buildargs: dict[str, str] | None = None,
                   platform: str | None = None) -> str:
    """Build one stage through BuildKit (the docker client, ``--progress=plain``); returns
    the image id from ``--iidfile``. Never tags. An interrupted build stops the client,
    and BuildKit cancels what it was running."""
    argv = buildkit_client()
    with tempfile.TemporaryDirectory(prefix="pyfarm-buildkit-") as tmp:
        iidfile = Path(tmp, "iid")
        argv += ["--progress=plain", "--iidfile", str(iidfile), "-f",
                 str(context / dockerfile)]
        for name, value in (buildargs or {}).items():
            argv += ["--build-arg", f"{name}={value}"]
        for flag, given in (("--target", target), ("--network", network),
                            ("--platform", platform)):
            if given:
                argv += [flag, given]
        if no_cache:
            argv.append("--no-cache")
        env = {**os.environ, "DOCKER_BUILDKIT": "1"}
        proc = subprocess.Popen([*argv, str(context)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                errors="replace", env=env, start_new_session=True)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                tracker.feed(line)
            status = proc.wait()
        finally:
            if proc.poll() is None:  # interrupted: stop the client, BuildKit cancels
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if status != 0:
            errors = [line for line in tracker.log if "ERROR" in line or "error" in line]
            raise tracker.failure(errors[-1] if errors else f"docker build exited {status}")
        image_id = iidfile.read_text().strip() if iidfile.is_file() else ""
    if not image_id:
        raise tracker.failure("BuildKit reported no image")
    return image_id


def tag(client: Any, image_id: str, reference: str) -> None:
    repo, name = check_reference(reference)
    client.api.tag(image_id, repo, name)


def image_size(client: Any, image: str) -> int:
    return int(client.images.get(image).attrs["Size"])


def read_file(client: Any, image: str, path: str) -> bytes:
    """One file's bytes from an image, through a created (never started) container. The
    command given is never run: it only lets images without one (a bare base) be created."""
    container = client.containers.create(image, ["/never-run"], network_mode="none")
    try:
        stream, _ = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.extractfile(archive.getmembers()[0])
            assert member is not None
            return member.read()
    finally:
        container.remove(force=True)
