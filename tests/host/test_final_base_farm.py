"""Host tier: a farm assembled against a final base made of the host's own Debian packages
(laid out unmerged, as distroless unpacks them), run in an empty root holding the base
plus the farm. What the base provides byte-identical is left out and used from there; a
base library that differs from the traced one (here: garbage) is never loaded."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pyfarm_docker.builder.assemble import AssembleOptions, assemble
from pyfarm_docker.builder.essentials import GROUP, PASSWD
from pyfarm_docker.builder.tracer import TraceOptions, run_trace
from pyfarm_docker.documents.basefiles import BaseFile, BaseFiles
from pyfarm_docker.documents.manifest import Manifest
from pyfarm_docker.runtime import CA_BUNDLE, Runtime
from tests.support import corpusrun, emptyroot
from tests.support.paths import corpus_case
from tests.support.venvs import case_venv

pytestmark = pytest.mark.host

RUNTIME = Runtime()
PACKAGES = ("libc6", "libssl3", "tzdata")
LIBCRYPTO = "/usr/lib/x86_64-linux-gnu/libcrypto.so.3"


def _package_paths(package: str) -> list[str]:
    done = subprocess.run(["dpkg-query", "-L", package], capture_output=True, text=True,
                          check=True)
    return [p for p in done.stdout.splitlines() if p.startswith("/") and p != "/."]


def _base_root(root: Path) -> None:
    """The host's libc6, libssl3 and tzdata at the paths their packages name (so the base
    is unmerged, like distroless), its CA bundle, and the farm's users."""
    for package in PACKAGES:
        for path in _package_paths(package):
            dest = root / path.lstrip("/")
            top_level = path.count("/") == 1  # /lib: a link on a merged host, not in the base
            if os.path.isdir(path) and (top_level or not os.path.islink(path)):
                dest.mkdir(parents=True, exist_ok=True)
            elif os.path.islink(path):
                dest.parent.mkdir(parents=True, exist_ok=True)
                if not dest.is_symlink():
                    dest.symlink_to(os.readlink(path))
            elif os.path.isfile(path):
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
                dest.chmod(os.stat(path).st_mode & 0o777)
    bundle = root / str(CA_BUNDLE).lstrip("/")
    bundle.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CA_BUNDLE, bundle)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)


def _document(root: Path) -> BaseFiles:
    """What the driver reads from an image's layers, read from a directory."""
    files, links = {}, {}
    for path in root.rglob("*"):
        name = "/" + path.relative_to(root).as_posix()
        if path.is_symlink():
            links[name] = os.readlink(path)
        elif path.is_file():
            data = path.read_bytes()
            files[name] = BaseFile(len(data), hashlib.sha256(data).hexdigest())
    return BaseFiles("host-packages:1", "sha256:" + "0" * 64, "amd64", "glibc", (2, 36),
                     "x86_64", files, links)


def _farm_on_base(tmp_path: Path, garbage: tuple[str, ...]) -> tuple[Path, Manifest, Path]:
    case = corpus_case("stdlib_tour")
    app = corpusrun.copy_app(case, tmp_path / "src")
    python = case_venv(case / "requirements.txt") / "bin" / "python"
    run_trace(TraceOptions((str(python), "app.py"), tmp_path / "trace.json", cwd=app))
    base = tmp_path / "base"
    _base_root(base)
    for path in garbage:  # same size, other bytes: not the library the run was traced with
        target = base / path.lstrip("/")
        target.write_bytes(b"\0" * target.stat().st_size)
    (tmp_path / "provided.json").write_text(_document(base).dumps())
    manifest = assemble(AssembleOptions(tmp_path / "trace.json", tmp_path / "farm",
                                        provided=tmp_path / "provided.json"))
    image = tmp_path / "image"  # the base, then the farm's files on top, as the COPYs do
    shutil.copytree(base, image, symlinks=True)
    shutil.copytree(tmp_path / "farm", image, symlinks=True, dirs_exist_ok=True)
    return app, manifest, image


@pytest.mark.parametrize("garbage", [(), (LIBCRYPTO,)],
                         ids=["identical", "libcrypto-differs"])
def test_farm_on_a_base_of_host_packages(tmp_path: Path, garbage: tuple[str, ...]) -> None:
    app, manifest, image = _farm_on_base(tmp_path, garbage)
    provided = {f.path for f in manifest.provided}
    assert "/lib/x86_64-linux-gnu/libc.so.6" in provided
    assert {"/etc/passwd", "/etc/group", str(CA_BUNDLE), "/lib64/ld-linux-x86-64.so.2"} <= provided
    assert not (tmp_path / "farm" / "lib" / "x86_64-linux-gnu" / "libc.so.6").exists()
    shipped_crypto = any(f.path.endswith("/reals/r/libcrypto.so.3") for f in manifest.files)
    assert shipped_crypto == bool(garbage)
    if garbage:  # libssl needs libcrypto: it cannot come from the base either
        assert any(f.path.endswith("/reals/r/libssl.so.3") for f in manifest.files)

    case = corpus_case("stdlib_tour")
    python = case_venv(case / "requirements.txt") / "bin" / "python"
    expected = corpusrun.run_script([str(python), "app.py"], app)
    got = corpusrun.run_script(emptyroot.command(
        image, [*RUNTIME.entrypoint(("app.py",))], str(RUNTIME.workdir), dict(RUNTIME.env())),
        app)
    assert expected.status == 0, expected.stderr
    assert (got.status, got.stdout) == (expected.status, expected.stdout), got.stderr[-3000:]

    objects = [str(RUNTIME.python)] + [f.path for f in manifest.files
                                       if f.path.startswith("/app/reals/r/")]
    for obj in objects:
        done = emptyroot.run(image, ["/lib64/ld-linux-x86-64.so.2", "--list", obj])
        assert done.returncode == 0, done.stdout + done.stderr
        for dest in re.findall(r"=> (\S+)", done.stdout):
            real = "/" + os.path.relpath(os.path.realpath(image / dest.lstrip("/")), image)
            assert dest.startswith("/app/") or real in provided, (obj, done.stdout)
            assert real not in garbage, (obj, done.stdout)
