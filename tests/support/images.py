"""What an image holds, read from its layers (not from a container, which the engine
decorates with /etc/hosts, /dev and the like)."""

from __future__ import annotations

import json
import os
import stat
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Dict, Tuple

# path -> (kind, permission bits, uid, gid, size of a file or target of a symlink)
Listing = Dict[str, Tuple[str, int, int, int, str]]
_KINDS = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir",
          tarfile.SYMTYPE: "symlink"}


def image_files(client: Any, image: str) -> Listing:
    """The image's filesystem, layer over layer, from the engine's save API."""
    files: Listing = {}
    with tempfile.TemporaryFile() as saved:
        for chunk in client.images.get(image).save(named=False):
            saved.write(chunk)
        saved.seek(0)
        with tarfile.open(fileobj=saved) as archive:
            entry = json.load(_open(archive, "manifest.json"))[0]
            for layer in entry["Layers"]:
                with tarfile.open(fileobj=_open(archive, layer)) as tar:
                    for member in tar.getmembers():
                        files[_name(member.name)] = _entry(member)
    files.pop("", None)
    return files


def _open(archive: tarfile.TarFile, name: str) -> Any:
    stream = archive.extractfile(name)
    assert stream is not None, name
    return stream


def _name(name: str) -> str:
    name = name[2:] if name.startswith("./") else name
    return name.rstrip("/")


def _entry(member: tarfile.TarInfo) -> tuple[str, int, int, int, str]:
    assert member.type in _KINDS, f"{member.name}: unexpected tar type {member.type!r}"
    kind = _KINDS[member.type]
    detail = member.linkname if kind == "symlink" else str(member.size) if kind == "file" else ""
    return kind, member.mode & 0o7777, member.uid, member.gid, detail


def tree_files(root: Path) -> Listing:
    """The same listing for an unpacked root filesystem."""
    files: Listing = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                kind, detail = "symlink", os.readlink(path)
            elif stat.S_ISDIR(st.st_mode):
                kind, detail = "dir", ""
            else:
                kind, detail = "file", str(st.st_size)
            files[str(path.relative_to(root))] = (kind, stat.S_IMODE(st.st_mode), st.st_uid,
                                                  st.st_gid, detail)
    return files
