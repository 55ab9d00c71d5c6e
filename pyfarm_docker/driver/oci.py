"""Images as OCI image layouts: write one from the engine (a directory, ``oci:DIR``, or a
tar of one, ``tar:FILE``), and load any single-image layout back for ``verify``.

The layout also carries Docker's ``manifest.json`` beside ``index.json``, as ``docker
save`` of Docker 25+ does, so ``docker load`` of older daemons and ``podman load`` read
it too. Layers are gzip-compressed with a zero mtime: the same image gives the same blobs.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import posixpath
import re
import secrets
import shutil
import stat
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

from ..documents._read import Fields
from ..errors import UsageError
from .engine import check_reference, label

KINDS = ("oci", "tar")
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Layout:
    """Where an OCI layout lives: ``oci:DIR`` or ``tar:FILE``."""

    kind: str
    path: Path

    @classmethod
    def parse(cls, text: str) -> Layout:
        kind, sep, path = text.partition(":")
        if not sep or kind not in KINDS or not path:
            raise UsageError(f"{text!r} is not oci:DIR or tar:FILE",
                             "e.g. --output oci:build/image or --output tar:image.tar")
        return cls(kind, Path(path))

    def __str__(self) -> str:
        return f"{self.kind}:{self.path}"

    def check_writable(self) -> None:
        """Fail before a long build when the result could not be written."""
        if not self.path.parent.is_dir():
            raise UsageError(f"{self.path.parent} does not exist", f"create it to write {self}")
        if self.kind == "oci" and _foreign_dir(self.path):
            raise UsageError(f"{self.path} is a non-empty directory that is not an OCI layout",
                             "give a new or empty directory")
        if self.kind == "tar" and self.path.is_dir():
            raise UsageError(f"{self.path} is a directory", "give a file name for tar:")


def is_layout(reference: str) -> bool:
    return reference.split(":", 1)[0] in KINDS


def _foreign_dir(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir()) and not (path / "oci-layout").is_file()


def write(client: Any, image_id: str, reference: str, dest: Layout) -> None:
    """Save ``image_id`` from the engine and write it at ``dest`` named ``reference``."""
    dest.check_writable()
    with tempfile.TemporaryDirectory(prefix=".pyfarm-oci-", dir=dest.path.parent) as tmp:
        archive = Path(tmp, "docker-archive.tar")
        with archive.open("wb") as out:
            for chunk in client.images.get(image_id).save(named=False):
                out.write(chunk)
        layout = Path(tmp, "layout")
        _convert(archive, layout, reference)
        archive.unlink()
        if dest.kind == "tar":
            _tar(layout, Path(tmp, "image.tar"))
            os.replace(Path(tmp, "image.tar"), dest.path)
        else:
            if dest.path.exists():
                shutil.rmtree(dest.path)
            layout.rename(dest.path)


def _convert(archive: Path, layout: Path, reference: str) -> None:
    """docker-archive (what every engine's save API gives) -> OCI layout."""
    with tarfile.open(archive) as src:
        entry = json.loads(_member(src, "manifest.json"))[0]
        config = _put(layout, _member(src, entry["Config"]), CONFIG)
        layers = [_put_gzip(layout, _open(src, name)) for name in entry["Layers"]]
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": layers}
    descriptor = _put(layout, _dumps(manifest), MANIFEST)
    repo, tag = check_reference(reference)
    descriptor["annotations"] = {"io.containerd.image.name": f"{repo}:{tag}",
                                 "org.opencontainers.image.ref.name": tag}
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [descriptor]}
    (layout / "index.json").write_bytes(_dumps(index))
    (layout / "oci-layout").write_bytes(_dumps({"imageLayoutVersion": "1.0.0"}))
    (layout / "manifest.json").write_bytes(_docker_manifest(manifest, f"{repo}:{tag}"))


def _docker_manifest(manifest: dict[str, Any], reference: str) -> bytes:
    return _dumps([{"Config": _blob_name(manifest["config"]["digest"]),
                    "RepoTags": [reference],
                    "Layers": [_blob_name(d["digest"]) for d in manifest["layers"]]}])


def _member(src: tarfile.TarFile, name: str) -> bytes:
    return _open(src, name).read()


def _open(src: tarfile.TarFile, name: str) -> IO[bytes]:
    stream = src.extractfile(name)
    if stream is None:
        raise UsageError(f"{name} in the saved image is not a file")
    return stream


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _blob_name(digest: str) -> str:
    algorithm, hexdigest = digest.split(":", 1)
    return f"blobs/{algorithm}/{hexdigest}"


def _put(layout: Path, data: bytes, media_type: str) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = layout / _blob_name(digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


class _HashingFile:
    """A write-only file that hashes what passes through it."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.hash, self.size = out, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


def _put_gzip(layout: Path, layer: IO[bytes]) -> dict[str, Any]:
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    part = blobs / f".part-{secrets.token_hex(4)}"
    with part.open("wb") as out:
        hashing = _HashingFile(out)
        with gzip.GzipFile(filename="", mode="wb", fileobj=hashing, mtime=0) as gz:
            shutil.copyfileobj(layer, gz, _CHUNK)
    digest = "sha256:" + hashing.hash.hexdigest()
    part.rename(layout / _blob_name(digest))
    return {"mediaType": LAYER, "digest": digest, "size": hashing.size}


def _tar(layout: Path, out: Path) -> None:
    """A reproducible tar of the layout: sorted names, zero mtimes, root owner."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(layout.rglob("*")):
            info = tar.gettarinfo(str(path), str(path.relative_to(layout)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o755 if info.isdir() else 0o644
            if info.isfile():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)


# Reading a layout someone handed us: every blob is named by a well-formed digest, has the
# size and the content its descriptor says, and every read is bounded.
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
MAX_JSON = 4 << 20  # index.json, a manifest, a config (containerd's limit for manifests)
MAX_BLOB = 32 << 30  # one layer blob
MAX_LAYERS = 256  # Docker stops at 127
MAX_ENTRIES = 4096  # entries of a tar:FILE archive (a layout has a few per layer)
MAX_LAYER_ENTRIES = 2_000_000  # entries of one layer, when report reads it
MAX_EXPANDED = 64 << 30  # bytes one layer may expand to, when report reads it
MAX_FILE = 1 << 30  # the file report reads from a layer (the farm's manifest)


class _Source:
    """The files of a layout, by their names in it (``index.json``, ``blobs/sha256/...``)."""

    def __init__(self, where: str) -> None:
        self.where = where

    def size(self, name: str) -> int:
        raise NotImplementedError

    def open(self, name: str) -> IO[bytes]:
        raise NotImplementedError

    def read(self, name: str, limit: int) -> bytes:
        size = self.size(name)
        if size > limit:
            raise UsageError(f"{self.where}: {name} is {size} bytes, more than {limit} allowed",
                             "give a layout written by pyfarm-docker, podman or skopeo")
        with self.open(name) as stream:
            return stream.read(limit + 1)

    def json(self, name: str, data: bytes | None = None) -> Fields:
        try:
            value = json.loads(self.read(name, MAX_JSON) if data is None else data)
        except ValueError as exc:
            raise UsageError(f"{self.where}: {name} is not JSON: {exc}") from None
        return Fields(value, f"{self.where}: {name}")

    def blob(self, descriptor: Fields, limit: int) -> tuple[str, int]:
        """A descriptor's blob name and size, once both are checked against the layout."""
        digest = descriptor.text("digest")
        if not _DIGEST.fullmatch(digest):
            raise UsageError(f"{descriptor.where}: digest {digest!r} is not sha256:<64 hex>",
                             "give a layout written by pyfarm-docker, podman or skopeo")
        size = descriptor.integer("size")
        if not 0 <= size <= limit:
            raise UsageError(f"{descriptor.where}: size {size} is out of bounds (0 to {limit})")
        name = _blob_name(digest)
        if self.size(name) != size:
            raise UsageError(f"{self.where}: {name} is {self.size(name)} bytes, its descriptor "
                             f"says {size}", "the layout is damaged or was altered")
        return name, size

    def read_blob(self, descriptor: Fields, limit: int = MAX_JSON) -> bytes:
        name, _ = self.blob(descriptor, limit)
        data = self.read(name, limit)
        _check_digest(self.where, name, hashlib.sha256(data))
        return data

    def verify(self, descriptor: Fields) -> str:
        """Hash a (large) blob through; returns its name."""
        name, _ = self.blob(descriptor, MAX_BLOB)
        digest = hashlib.sha256()
        with self.open(name) as stream:
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                digest.update(chunk)
        _check_digest(self.where, name, digest)
        return name


def _check_digest(where: str, name: str, digest: Any) -> None:
    if name.rsplit("/", 1)[-1] != digest.hexdigest():
        raise UsageError(f"{where}: {name} does not match its digest",
                         "the layout is damaged or was altered")


class _DirSource(_Source):
    """``oci:DIR``: regular files below DIR, reached without a symlink."""

    def __init__(self, root: Path) -> None:
        super().__init__(f"oci:{root}")
        self.root = os.path.realpath(root)

    def _path(self, name: str) -> str:
        path = os.path.join(self.root, name)
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            raise UsageError(f"{self.where} has no {name}",
                             "give a complete OCI layout directory") from None
        if os.path.realpath(path) != path or not stat.S_ISREG(mode):
            raise UsageError(f"{self.where}: {name} is not a regular file inside the layout",
                             "a layout's files are never symlinks")
        return path

    def size(self, name: str) -> int:
        return os.lstat(self._path(name)).st_size

    def open(self, name: str) -> IO[bytes]:
        return open(self._path(name), "rb")


class _TarSource(_Source):
    """``tar:FILE``: an uncompressed tar of a layout, read in place, never extracted."""

    def __init__(self, tar: tarfile.TarFile, where: str) -> None:
        super().__init__(where)
        self.tar = tar
        self.members: dict[str, tarfile.TarInfo] = {}
        for count, member in enumerate(tar, start=1):
            if count > MAX_ENTRIES:
                raise UsageError(f"{where} has more than {MAX_ENTRIES} entries",
                                 "an OCI archive holds a few files per layer")
            name = member.name[2:] if member.name.startswith("./") else member.name
            if name.startswith("/") or ".." in name.split("/") or not (
                    member.isfile() or member.isdir()):
                raise UsageError(f"{where}: unexpected entry {member.name!r}",
                                 "give an OCI archive written by pyfarm-docker, podman or skopeo")
            self.members[name.rstrip("/")] = member

    def _member(self, name: str) -> tarfile.TarInfo:
        member = self.members.get(name)
        if member is None or not member.isfile():
            raise UsageError(f"{self.where} has no {name}", "give a complete OCI archive")
        return member

    def size(self, name: str) -> int:
        return self._member(name).size

    def open(self, name: str) -> IO[bytes]:
        stream = self.tar.extractfile(self._member(name))
        assert stream is not None  # a regular file
        return stream


@contextlib.contextmanager
def _opened(source: Layout) -> Iterator[_Source]:
    if source.kind == "oci":
        if not (source.path / "index.json").is_file():
            raise UsageError(f"{source.path} has no index.json: not an OCI layout")
        yield _DirSource(source.path)
        return
    if not source.path.is_file():
        raise UsageError(f"{source.path} does not exist")
    try:
        # Uncompressed only: members are read in place, and nothing expands.
        tar = tarfile.open(source.path, "r:")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError) as exc:
        raise UsageError(f"{source.path} is not an uncompressed tar: {exc}",
                         "give the tar written by --output tar:FILE, podman or skopeo") from None
    with tar:
        try:
            yield _TarSource(tar, str(source))
        except (tarfile.TarError, EOFError) as exc:
            raise UsageError(f"{source.path} is damaged: {exc}") from None


@dataclass(frozen=True)
class _Image:
    """The single image of a layout: its manifest (as JSON) and its descriptors."""

    manifest: dict[str, Any]
    config: Fields
    layers: list[Fields]


def _image_manifest(layout: _Source) -> _Image:
    manifests = layout.json("index.json").objects("manifests")
    if len(manifests) != 1 or manifests[0].text("mediaType", MANIFEST) != MANIFEST:
        raise UsageError(f"{layout.where} holds {len(manifests)} entries, not one image "
                         "manifest", "give a layout with a single image")
    data = layout.read_blob(manifests[0])
    fields = layout.json(_blob_name(manifests[0].text("digest")), data)
    layers = fields.objects("layers")
    if len(layers) > MAX_LAYERS:
        raise UsageError(f"{layout.where}: {len(layers)} layers, more than {MAX_LAYERS}")
    for layer in layers:
        layout.blob(layer, MAX_BLOB)
    return _Image(dict(fields.data), fields.object("config"), layers)


@contextlib.contextmanager
def loaded(client: Any, source: Layout) -> Iterator[str]:
    """Load a single-image OCI layout into the engine under a name of its own, for as
    long as the block runs; the name is removed afterwards."""
    name = f"pyfarm-load/{secrets.token_hex(6)}:verify"
    with tempfile.TemporaryDirectory(prefix="pyfarm-load-") as tmp:
        archive = Path(tmp, "load.tar")
        loadable(source, name, archive)
        with archive.open("rb") as data:
            client.images.load(data)
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            client.images.remove(name)


def image_descriptor(source: Layout) -> dict[str, Any]:
    """The descriptor (mediaType, digest, size) of the layout's single image manifest,
    once the manifest and its blobs are checked against their digests and sizes."""
    with _opened(source) as layout:
        image = _image_manifest(layout)
        for layer in image.layers:
            layout.verify(layer)
        layout.read_blob(image.config)
        found = layout.json("index.json").objects("manifests")[0]
        return {"mediaType": MANIFEST, "digest": found.text("digest"),
                "size": found.integer("size")}


def image_labels(source: Layout) -> dict[str, str]:
    """The config labels of the layout's single image."""
    with _opened(source) as layout:
        image = _image_manifest(layout)
        config = layout.json("config", layout.read_blob(image.config)).data.get("config")
    labels = config.get("Labels") if isinstance(config, dict) else None
    return {k: v for k, v in labels.items() if isinstance(v, str)} if isinstance(
        labels, dict) else {}


def labeled_file(source: Layout, name: str, sibling: str | None = None) -> bytes:
    """The file of the image whose path the config label ``name`` gives (or the file
    called ``sibling`` beside it), read from the top-most layer that has it: no engine
    needed."""
    with _opened(source) as layout:
        image = _image_manifest(layout)
        config = layout.json("config", layout.read_blob(image.config)).data.get("config")
        labels = config.get("Labels") if isinstance(config, dict) else None
        path = label(labels if isinstance(labels, dict) else None, name, str(source))
        if not isinstance(path, str):
            raise UsageError(f"{source}: label {name} is not a string")
        if sibling is not None:
            path = posixpath.join(posixpath.dirname(path), sibling)
        for layer in reversed(image.layers):
            blob = layout.verify(layer)
            with layout.open(blob) as stream:
                data = _find(stream, path.lstrip("/"), f"{source}: {blob}")
            if data is not None:
                return data
    raise UsageError(f"{source} has no {path}")


def _find(stream: IO[bytes], name: str, where: str) -> bytes | None:
    """``name``'s bytes from a layer (a tar, maybe compressed), reading at most
    :data:`MAX_EXPANDED` bytes and :data:`MAX_LAYER_ENTRIES` entries of it."""
    expanded = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for count, member in enumerate(tar, start=1):
                expanded += member.size
                if count > MAX_LAYER_ENTRIES or expanded > MAX_EXPANDED:
                    raise UsageError(f"{where} expands beyond {MAX_LAYER_ENTRIES} entries or "
                                     f"{MAX_EXPANDED >> 30} GiB", "is it really an image layer?")
                # "./app/x" or "app/x"; lstrip("./") would also eat a leading dot of ".x".
                plain = member.name[2:] if member.name.startswith("./") else member.name
                if plain == name and member.isfile():
                    if member.size > MAX_FILE:
                        raise UsageError(f"{where}: {name} is larger than {MAX_FILE} bytes")
                    found = tar.extractfile(member)
                    return found.read() if found is not None else None
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise UsageError(f"{where} is not a readable layer: {exc}") from None
    return None


def loadable(source: Layout, name: str, out: Path) -> None:
    """Write ``out``, a docker-archive view of the layout (its referenced blobs, each
    checked against its digest, plus a manifest.json naming ``name``), which both Docker's
    and podman's load API accept. Nothing else of the layout is read."""
    with _opened(source) as layout, tarfile.open(out, "w") as tar:
        image = _image_manifest(layout)
        for descriptor in [image.config, *image.layers]:
            blob, size = layout.blob(descriptor, MAX_BLOB)
            if blob in tar.getnames():
                continue
            info = tarfile.TarInfo(blob)
            info.size, info.mode = size, 0o644
            with layout.open(blob) as stream:
                hashing = _HashingReader(stream)
                tar.addfile(info, hashing)
            _check_digest(layout.where, blob, hashing.hash)
        data = _docker_manifest(image.manifest, name)
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


class _HashingReader:
    """A read-only file that hashes what passes through it."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream, self.hash = stream, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.hash.update(data)
        return data
