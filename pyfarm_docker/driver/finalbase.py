"""The final base image (``--final``), looked at before the build: can it run the farm, and
which of the farm's files does it already hold?

Its layers are read from the engine's save API (whiteouts applied, as the engine stacks
them); every regular file's size and sha256 and every symlink go into a
:class:`~pyfarm_docker.documents.basefiles.BaseFiles` document in the build context, which
``assemble --provided`` reads in the builder stage. Its C library is read from its files:
a musl loader, or the version string and ELF machine of its ``libc.so.6``.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Callable

from .. import defaults
from ..documents.basefiles import BaseFile, BaseFiles
from ..errors import UsageError
from . import engine
from .dockerfile import PROVIDED_FILE, DockerfileOptions
from .settings import Settings
from .target import Target

FILE = PROVIDED_FILE  # in the helpers directory; the builder's copy: runtime.BUILDER_PROVIDED
# The image config's architecture -> the machine name Python and uname give.
MACHINES = {"amd64": "x86_64", "arm64": "aarch64", "386": "i686", "arm": "armv7l",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
# ELF e_machine -> machine name.
_ELF_MACHINES = {62: "x86_64", 183: "aarch64", 3: "i686", 40: "armv7l", 21: "ppc64le",
                 22: "s390x", 243: "riscv64"}
_GLIBC_VERSION = re.compile(rb"GNU C Library [^\n\x00]{0,120}? version (\d+)\.(\d+)")
_GLIBC_FILE = re.compile(r"libc-(\d+)\.(\d+)\.so$")
_LIBC_READ = 16 << 20  # a libc.so.6 larger than this is read no further


@dataclass
class _Layers:
    """The filesystem as the layers applied so far leave it."""

    files: dict[str, BaseFile] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    libcs: dict[str, tuple[str, tuple[int, int] | None]] = field(default_factory=dict)

    def remove(self, path: str, below_only: bool = False) -> None:
        """Drop ``path`` (unless ``below_only``) and everything below it."""
        under = path.rstrip("/") + "/"
        for table in (self.files, self.links, self.libcs):
            for name in [n for n in table if n.startswith(under) or
                         (n == path and not below_only)]:
                del table[name]


def _path(name: str) -> str:
    name = name[2:] if name.startswith("./") else name
    return "/" + name.strip("/")


def _is_libc(path: str) -> bool:
    base = path.rsplit("/", 1)[-1]
    return base == "libc.so.6" or _GLIBC_FILE.search(base) is not None


def libc_facts(head: bytes, path: str) -> tuple[str, tuple[int, int] | None]:
    """(ELF machine, glibc version) of a libc.so.6 from its bytes (or its file name)."""
    machine = ""
    if head[:4] == b"\x7fELF" and len(head) >= 20:
        number = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
        machine = _ELF_MACHINES.get(number, f"elf-{number}")
    match = _GLIBC_VERSION.search(head)
    if match is not None:
        return machine, (int(match.group(1)), int(match.group(2)))
    named = _GLIBC_FILE.search(path)
    return machine, (int(named.group(1)), int(named.group(2))) if named else None


def _apply(layers: _Layers, layer: tarfile.TarFile) -> None:
    """One layer over the ones below: its whiteouts first, then its entries."""
    members = layer.getmembers()
    for member in members:
        path = _path(member.name)
        parent, _, base = path.rpartition("/")
        if base == ".wh..wh..opq":
            layers.remove(parent or "/", below_only=True)
        elif base.startswith(".wh."):
            layers.remove(f"{parent}/{base[4:]}")
    for member in members:
        path = _path(member.name)
        if path.rpartition("/")[2].startswith(".wh.") or path == "/":
            continue
        layers.remove(path)
        if member.issym():
            layers.links[path] = member.linkname
        elif member.islnk():
            target = _path(member.linkname)
            if target in layers.files:
                layers.files[path] = layers.files[target]
                if target in layers.libcs:
                    layers.libcs[path] = layers.libcs[target]
        elif member.isfile():
            _add_file(layers, layer, member, path)


def _add_file(layers: _Layers, layer: tarfile.TarFile, member: tarfile.TarInfo,
              path: str) -> None:
    stream = layer.extractfile(member)
    assert stream is not None
    digest = hashlib.sha256()
    libc = _is_libc(path)
    kept = bytearray()
    for block in iter(lambda: stream.read(1 << 20), b""):
        digest.update(block)
        if libc and len(kept) < _LIBC_READ:
            kept += block
    layers.files[path] = BaseFile(member.size, digest.hexdigest())
    if libc:
        layers.libcs[path] = libc_facts(bytes(kept), path)


def read_saved(saved: IO[bytes], image: str, digest: str, architecture: str) -> BaseFiles:
    """The document for an image from the tar the engine's save API gives."""
    layers = _Layers()
    with tarfile.open(fileobj=saved) as archive:
        manifest = json.load(_member(archive, "manifest.json"))
        for name in manifest[0]["Layers"]:
            with tarfile.open(fileobj=_member(archive, name), mode="r:*") as layer:
                _apply(layers, layer)
    return _document(layers, image, digest, architecture)


def _member(archive: tarfile.TarFile, name: str) -> IO[bytes]:
    stream = archive.extractfile(name)
    if stream is None:
        raise UsageError(f"the engine's save of the final base lacks {name}")
    return stream


def _document(layers: _Layers, image: str, digest: str, architecture: str) -> BaseFiles:
    doc = BaseFiles(image, digest, architecture, files=layers.files, links=layers.links)
    names = {*layers.files, *layers.links}
    if any(n.rsplit("/", 1)[-1].startswith(("ld-musl-", "libc.musl-")) for n in names):
        return replace(doc, libc="musl")
    facts = {}
    for name in sorted(names):
        if name.rsplit("/", 1)[-1] == "libc.so.6":
            real = doc.resolve(name)
            if real is not None and real in layers.libcs:
                facts[real] = layers.libcs[real]
    if not facts:
        return doc
    machine = MACHINES.get(architecture, architecture)
    chosen = next((f for f in facts.values() if f[0] == machine), next(iter(facts.values())))
    return replace(doc, libc="glibc", machine=chosen[0], glibc=chosen[1])


def inspect(client: Any, image: str) -> BaseFiles:
    """Read ``image``'s files through the engine (a missing image is a UsageError)."""
    engine.require_image(client, image, "final")
    found = client.images.get(image)
    attrs = found.attrs
    digests = [d.split("@", 1)[1] for d in attrs.get("RepoDigests") or [] if "@" in d]
    digest = digests[0] if digests else str(attrs["Id"])
    with tempfile.TemporaryFile() as saved:
        for chunk in found.save(named=False):
            saved.write(chunk)
        saved.seek(0)
        return read_saved(saved, image, digest, str(attrs.get("Architecture") or ""))


def check_runs_farm(doc: BaseFiles, target: Target, builder: str) -> None:
    """Refuse, in one line, a final base the farm cannot run on: another machine, musl, or
    a glibc older than the builder's (the farm's loader and libc would replace the base's
    at their paths, under the base's own programs)."""
    final, machine = doc.image, MACHINES.get(doc.architecture, doc.architecture)
    if (machine and machine != target.machine) or (doc.machine and
                                                  doc.machine != target.machine):
        raise UsageError(f"final base {final!r} is for {doc.machine or machine}, but the "
                         f"builder {builder!r} is {target.machine}: the farm cannot run there")
    if doc.libc == "musl":
        raise UsageError(f"final base {final!r} uses musl, not glibc: the farm is built with "
                         f"the builder's glibc {_version(target.glibc)} ({builder!r})")
    if doc.libc == "glibc" and doc.glibc is not None and doc.glibc < target.glibc:
        raise UsageError(f"final base {final!r} has glibc {_version(doc.glibc)}, older than "
                         f"the builder's {_version(target.glibc)} ({builder!r})")


def _version(pair: tuple[int, int]) -> str:
    return f"{pair[0]}.{pair[1]}"


def check_final_base(client: Any, settings: Settings, target: Target,
                     report: Callable[[str], None]) -> BaseFiles | None:
    """The final base's document, checked against the builder's target before anything is
    built; None for scratch."""
    if settings.final == defaults.FINAL:
        return None
    doc = inspect(client, settings.final)
    check_runs_farm(doc, target, settings.base)
    report(summary(doc))
    return doc


def provide_final_base(options: DockerfileOptions, doc: BaseFiles | None
                       ) -> DockerfileOptions:
    """The Dockerfile copies the document into the builder and assembles with it."""
    return options if doc is None else replace(options, provided=True)


def write_final_base(helpers: Path, doc: BaseFiles | None) -> None:
    """The document into the helpers directory (beside spec.json)."""
    if doc is not None:
        (helpers / FILE).write_text(doc.dumps())


def summary(doc: BaseFiles) -> str:
    libc = (f"glibc {_version(doc.glibc)}" if doc.glibc else doc.libc) or "no C library"
    return (f"final base {doc.reference}: {len(doc.files)} files, "
            f"{doc.total_bytes / 1e6:.1f} MB, {libc}")

