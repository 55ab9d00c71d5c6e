"""Docker tier of issue 15: files that native code opens (glibc's locale, ncurses'
terminfo, iconv's gconv modules, OpenSSL's config, a C extension's data file) ship in the
FROM-scratch image at the paths they were opened. The app of tests/support/nativereaders.py
is built once, offline and verified, on a bookworm base that also holds the files outside
the Python installation (a derived base, made here); each reader's line of the final
image's output must be the one the builder printed."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import docker
import pytest

from pyfarm_docker.driver.imagebuild import build_image
from pyfarm_docker.errors import VerifyError
from tests.support import leftovers, nativereaders
from tests.support.baseimages import DEBIAN
from tests.support.cases import build_options
from tests.support.images import image_files
from tests.support.nativereaders import EXPECTED, LOCALE_DIR, NATIVE_DIR, READERS
from tests.support.paths import HOST_PYTHON

pytestmark = pytest.mark.docker

BASE_REPOSITORY = "pyfarm-test/native-readers-base"
BASE_LABEL = "io.pyfarm-test.native-readers-base"
BASE_DOCKERFILE = f"""FROM {DEBIAN}
COPY {Path(LOCALE_DIR).name}/ {LOCALE_DIR}/
COPY native/ {NATIVE_DIR}/
"""


@pytest.fixture(scope="session")
def native_base(client: Any, base_images: list[str],
                tmp_path_factory: pytest.TempPathFactory) -> str:
    """DEBIAN plus the de_DE.UTF-8 locale compiled on the host (its glibc is bookworm's
    too) and NATIVE_DIR's files. Its tag is the digest of what it holds, so a later run
    reuses it; older ones of this test's repository are removed."""
    context = tmp_path_factory.mktemp("native-base")
    locale = nativereaders.compile_locale(context)
    native = nativereaders.write_native_files(context / "native")
    (context / "Dockerfile").write_text(BASE_DOCKERFILE)
    digest = hashlib.sha256(BASE_DOCKERFILE.encode() + client.images.get(DEBIAN).id.encode()
                            + nativereaders.tree_digest(locale, native).encode()).hexdigest()
    tag = f"{BASE_REPOSITORY}:{digest[:16]}"
    if not _image_exists(client, tag):
        for chunk in client.api.build(path=str(context), tag=tag, rm=True, forcerm=True,
                                      pull=False, network_mode="none", decode=True,
                                      labels={BASE_LABEL: digest[:16]}):
            assert "error" not in chunk, chunk["error"]
    stale = [t for image in client.api.images(filters={"label": BASE_LABEL})
             for t in image.get("RepoTags") or () if t.startswith(f"{BASE_REPOSITORY}:")
             and t != tag]
    for old in stale:
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(old)
    return tag


def _image_exists(client: Any, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


@dataclass(frozen=True)
class Built:
    """The app's image: what its build log shows of the traced run in the builder, what
    the final image printed, and verify's complaint (None when it passed)."""

    tag: str
    builder_log: str
    final_status: int
    final_stdout: str
    final_stderr: str
    verify_error: str | None


@pytest.fixture(scope="module")
def built(client: Any, native_base: str, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Built]:
    """One build for the five readers: verified; when verify fails, the same build again
    without it (all cached) tags the image, so that each reader's line can be looked at."""
    work = tmp_path_factory.mktemp("native-readers")
    own = leftovers.Own(client, work / "own")
    try:
        with pytest.MonkeyPatch.context() as mp:
            leftovers.private_tmp(mp, own)
            wheels = work / "wheels"
            wheels.mkdir()
            nativereaders.greeting_wheel(wheels, HOST_PYTHON)
            project = own.project(nativereaders.APP, f"{nativereaders.WHEEL_NAME}==1.0\n")
            log: list[str] = []

            def build(verify: bool) -> str:
                options = build_options(project.path, project.tag, native_base,
                                        verify=verify, network="none", wheelhouse=wheels)
                return build_image(options, report=lambda _: None, log=log.append).tag

            verify_error = None
            try:
                tag = build(verify=True)
            except VerifyError as exc:
                verify_error = str(exc)
                tag = build(verify=False)
            status, out, err = _run(client, tag)
            yield Built(tag, "\n".join(log), status, out, err, verify_error)
    finally:
        own.clean()


def _run(client: Any, image: str) -> tuple[int, str, str]:
    container = client.containers.create(image, network_mode="none")
    try:
        container.start()
        status = int(container.wait(timeout=300)["StatusCode"])
        out = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        err = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
    finally:
        container.remove(force=True)
    return status, out, err


@pytest.mark.parametrize("reader", READERS)
def test_the_builder_reads_it(built: Built, reader: str) -> None:
    """The traced run in the builder stage printed each reader's value: the base holds
    what they read, else the final image's check would mean nothing."""
    assert nativereaders.lines(built.builder_log).get(reader) == EXPECTED[reader], (
        built.builder_log[-5000:])


@pytest.mark.parametrize("reader", READERS)
def test_the_final_image_ships_what_native_code_read(built: Built, reader: str) -> None:
    assert built.final_status == 0, built.final_stderr[-3000:]
    got = nativereaders.lines(built.final_stdout).get(reader)
    assert got == EXPECTED[reader], f"{built.final_stdout}\n{built.final_stderr[-3000:]}"


def test_verify_passes(built: Built) -> None:
    assert built.verify_error is None, built.verify_error


def test_the_locale_ships_whole(client: Any, built: Built,
                                tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every file of the locale's directory is in the image at its path, not only the
    LC_* files glibc read."""
    compiled = nativereaders.compile_locale(tmp_path_factory.mktemp("locale"))
    wanted = sorted(f"{LOCALE_DIR}/{p.relative_to(compiled)}".lstrip("/")
                    for p in compiled.rglob("*") if p.is_file())
    files = image_files(client, built.tag)
    missing = [p for p in wanted if files.get(p, ("",))[0] != "file"]
    assert missing == [], f"not in the image: {missing}"
