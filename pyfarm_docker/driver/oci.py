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
import secrets
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

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


@contextlib.contextmanager
def loaded(client: Any, source: Layout) -> Iterator[str]:
    """Load a single-image OCI layout into the engine under a name of its own, for as
    long as the block runs; the name is removed afterwards."""
    name = f"pyfarm-load/{secrets.token_hex(6)}:verify"
    with tempfile.TemporaryDirectory(prefix="pyfarm-load-") as tmp:
        layout = _unpacked(source, Path(tmp))
        archive = Path(tmp, "load.tar")
        _loadable(layout, name, archive)
        with archive.open("rb") as data:
            client.images.load(data)
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            client.images.remove(name)


def _unpacked(source: Layout, tmp: Path) -> Path:
    if source.kind == "oci":
        if not (source.path / "index.json").is_file():
            raise UsageError(f"{source.path} has no index.json: not an OCI layout")
        return source.path
    if not source.path.is_file():
        raise UsageError(f"{source.path} does not exist")
    layout = tmp / "layout"
    with tarfile.open(source.path) as tar:
        for member in tar.getmembers():
            if member.name.startswith(("/", "..")) or ".." in Path(member.name).parts or not (
                    member.isfile() or member.isdir()):
                raise UsageError(f"{source.path}: unexpected entry {member.name!r}",
                                 "give an OCI archive written by pyfarm-docker, podman or skopeo")
        # Names are checked above; the "data" filter (where Python has it) checks again.
        safe: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(layout, **safe)
    if not (layout / "index.json").is_file():
        raise UsageError(f"{source.path} has no index.json: not an OCI archive")
    return layout


def _image_manifest(layout: Path) -> dict[str, Any]:
    manifests = json.loads((layout / "index.json").read_text())["manifests"]
    if len(manifests) != 1 or manifests[0].get("mediaType", MANIFEST) != MANIFEST:
        raise UsageError(f"{layout} holds {len(manifests)} entries, not one image manifest",
                         "give a layout with a single image")
    manifest: dict[str, Any] = json.loads((layout / _blob_name(manifests[0]["digest"]))
                                          .read_bytes())
    return manifest


def labeled_file(source: Layout, name: str) -> bytes:
    """The file of the image whose path the config label ``name`` gives, read from the
    top-most layer that has it: no engine needed."""
    with tempfile.TemporaryDirectory(prefix="pyfarm-read-") as tmp:
        layout = _unpacked(source, Path(tmp))
        manifest = _image_manifest(layout)
        config = json.loads((layout / _blob_name(manifest["config"]["digest"])).read_bytes())
        path = label(config.get("config", {}).get("Labels"), name, str(source))
        for layer in reversed(manifest["layers"]):
            with tarfile.open(layout / _blob_name(layer["digest"])) as tar:
                data = _find(tar, path.lstrip("/"))
            if data is not None:
                return data
    raise UsageError(f"{source} has no {path}")


def _find(tar: tarfile.TarFile, name: str) -> bytes | None:
    for member in tar:
        # "./app/x" or "app/x"; lstrip("./") would also eat a leading dot of ".x".
        plain = member.name[2:] if member.name.startswith("./") else member.name
        if plain == name and member.isfile():
            stream = tar.extractfile(member)
            return stream.read() if stream is not None else None
    return None


def _loadable(layout: Path, name: str, out: Path) -> None:
    """A docker-archive view of the layout (its blobs plus a manifest.json naming
    ``name``), which both Docker's and podman's load API accept."""
    manifest = _image_manifest(layout)
    names = [_blob_name(manifest["config"]["digest"])]
    names += [_blob_name(d["digest"]) for d in manifest["layers"]]
    with tarfile.open(out, "w") as tar:
        for blob in dict.fromkeys(names):
            tar.add(str(layout / blob), blob)
        data = _docker_manifest(manifest, name)
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
