"""Carry out a plan: write the root filesystem, patch, compile, index, describe."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..documents.manifest import FileRecord, Manifest, file_sha256
from ..errors import AssembleError
from ..runtime import LAYERS, Runtime, layer_dirs
from . import basefiles, patch
from .bytecode import write_bytecode
from .plan import Entry, Plan, source_of

_BLOCK = 1 << 20  # bytes read at a time when copying


@dataclass(frozen=True)
class FarmOptions:
    output: Path
    python: str  # the traced interpreter, which compiles the .pyc files
    epoch: int = 0
    layers: bool = False


def write_entries(plan: Plan, root: Path) -> dict[str, str]:
    """Write every entry under ``root``; returns the sha256 of each file written from bytes
    at hand (copies and texts) by its path in the root, so the manifest need not read it."""
    digests: dict[str, str] = {}
    made = {str(root)}
    for entry in sorted(plan.entries, key=lambda e: (e.kind != "dir", str(e.dest))):
        if entry.dest.is_absolute() or ".." in entry.dest.parts:
            raise AssembleError(f"refusing to write {entry.dest}: outside the output")
        rel = str(entry.dest)
        if entry.kind == "zip":
            _write_zip(root / rel, plan.zipped)
            continue
        digest = _write(entry, os.path.join(root, rel), made)
        if digest is not None:
            digests[rel] = digest
    return digests


def _write_zip(target: Path, members: tuple[tuple[str, str], ...]) -> None:
    """A deflated zip with fixed dates and order: the same sources give the same bytes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, source in sorted(members):
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(source, "rb") as f:
                archive.writestr(info, f.read())
    os.chmod(target, 0o644)


def _write(entry: Entry, target: str, made: set[str]) -> str | None:
    """Write one entry at ``target``; returns a written file's sha256. ``made`` holds the
    directories known to exist: one mkdir per directory, not one per file."""
    if entry.kind == "dir":
        if target not in made:
            os.makedirs(target, exist_ok=True)
            made.add(target)
    else:
        _make_parent(target, made)
    if entry.kind == "link":
        os.symlink(entry.target, target)
        return None
    digest = None
    if entry.kind == "file":
        digest = _copy(entry.source, target)
    elif entry.kind == "text":
        with open(target, "wb") as f:
            f.write(entry.content)
        digest = hashlib.sha256(entry.content).hexdigest()
    os.chmod(target, entry.mode)
    if entry.owner:
        os.chown(target, entry.owner, entry.owner)  # the builder assembles as root
    return digest


def _make_parent(target: str, made: set[str]) -> None:
    parent = os.path.dirname(target)
    if parent not in made:
        os.makedirs(parent, exist_ok=True)
        made.add(parent)


def _copy(source: str, target: str) -> str:
    """Copy a file and return the sha256 of its bytes: read once for both."""
    digest = hashlib.sha256()
    with open(source, "rb") as src, open(target, "wb") as dst:
        while True:
            block = src.read(_BLOCK)
            if not block:
                return digest.hexdigest()
            digest.update(block)
            dst.write(block)


def bytecode_jobs(plan: Plan, root: Path) -> list[tuple[str, Path, bool]]:
    """(builder source, .py in the staged farm, sourceless) for each module to compile. A
    generated module (the site hook) has no builder source: its path in the image names
    its code, which the staging directory must not (the same input, the same bytes)."""
    by_dest = {e.dest: e for e in plan.entries}
    return [(by_dest[dest].source or f"/{dest}", root / dest, dest in plan.sourceless)
            for dest in sorted(plan.bytecode)]


def build_ld_cache(root: Path) -> None:
    """An ld.so.cache of the farm, so dlopen by bare name and find_library work."""
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    try:
        done = subprocess.run([ldconfig, "-X", "-r", str(root)], capture_output=True,
                              text=True, check=False)
    except OSError as exc:
        raise AssembleError(f"cannot run ldconfig: {exc.strerror}",
                            "the builder needs glibc's ldconfig (in /sbin on Debian)") from None
    if done.returncode != 0:
        raise AssembleError(f"ldconfig failed: {done.stderr.strip()}",
                            "the builder needs glibc's ldconfig")


def _of_generated(rel: str, known: dict[str, tuple[str, str, str]]) -> tuple[str, str, str]:
    """.pyc files go with their source (beside it, or in its place); the loader cache with
    the runtime."""
    path = PurePosixPath(rel)
    for source in (source_of(path), path.with_suffix(".py")):
        if source != path and str(source) in known:
            return known[str(source)]
    return ("runtime", "essential", "essential")


def manifest(plan: Plan, root: Path, digests: dict[str, str]) -> Manifest:
    """Every regular file under ``root``; ``digests`` are the sha256 of those unchanged since
    they were written, the others are read."""
    known = {str(e.dest): (e.layer, e.origin, e.reason) for e in plan.entries}
    files: list[FileRecord] = []
    for rel, entry in _walk(str(root)):
        if not entry.is_file(follow_symlinks=False):
            continue
        layer, origin, reason = known.get(rel) or _of_generated(rel, known)
        digest = digests.get(rel) or file_sha256(root / rel)
        files.append(FileRecord("/" + rel, entry.stat(follow_symlinks=False).st_size, digest,
                                origin, layer, reason))
    return Manifest(
        prefix=str(plan.prefix), python="/" + str(plan.python),
        env=tuple(sorted(Runtime(plan.prefix).env())), files=tuple(files),
        links=tuple(sorted("/" + str(e.dest) for e in plan.entries if e.kind == "link")),
        warnings=plan.warnings, conflicts=plan.conflicts,
        prunable=tuple(f.path for f in files if _prunable(f.path[1:], plan)),
    )


def _walk(root: str) -> list[tuple[str, os.DirEntry[str]]]:
    """Every path below ``root``, links not followed, as (relative path, its entry), sorted
    part by part as pathlib sorts paths (a directory, then what it holds)."""
    found: list[tuple[str, os.DirEntry[str]]] = []
    pending = [("", root)]
    while pending:
        rel, directory = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                found.append((rel + entry.name, entry))
                if entry.is_dir(follow_symlinks=False):
                    pending.append((rel + entry.name + "/", entry.path))
    return sorted(found, key=lambda item: item[0].split("/"))


def _prunable(rel: str, plan: Plan) -> bool:
    """A file --prune leaves out: a module's .pyc goes with its module, its source also where
    --prune ships the module as bytecode only."""
    path = PurePosixPath(rel)
    return source_of(path) in plan.prunable or path in plan.prunable_sources


def fix_times(root: Path, epoch: int) -> None:
    """Same mtimes everywhere, so identical inputs give identical layers."""
    for here, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.utime(os.path.join(here, name), (epoch, epoch), follow_symlinks=False)
    os.utime(root, (epoch, epoch), follow_symlinks=False)


def _write_layer_lists(staging: Path, prefix: PurePosixPath, listing: dict[str, list[str]]
                       ) -> None:
    """Each layer lists its own paths: handy to read, and it keeps every layer non-empty
    (the legacy builder fails to export two identical empty COPY layers)."""
    for name, directory in zip(LAYERS, layer_dirs()):
        target = staging / directory / prefix / ".pyfarm" / f"layer-{directory}.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(f"{p}\n" for p in listing[name]))


def split_layers(root: Path, doc: Manifest, plan: Plan) -> None:
    """Move each path into ``root/<n>-<layer>/`` so the Dockerfile copies one layer each. A
    directory whose paths all go to one layer moves whole: one rename, not one per file
    (each costs as much as writing a small file, on overlayfs)."""
    dirs = dict(zip(LAYERS, layer_dirs()))
    layer_of = {str(e.dest): e.layer for e in plan.entries}
    layer_of.update({f.path[1:]: f.layer for f in doc.files})
    layer_of[str(_manifest_path(plan))] = "app"
    paths = _walk(str(root))
    below = _layers_below(paths, layer_of)
    staging = root.parent / (root.name + ".layers")
    listing: dict[str, list[str]] = {name: [] for name in LAYERS}
    made: set[str] = set()
    whole, layer = "", ""  # the directory moving whole ("a/b/"), and its layer
    for rel, dirent in paths:
        if whole and rel.startswith(whole):
            if not dirent.is_dir(follow_symlinks=False):
                listing[layer].append("/" + rel)
            continue
        whole = ""
        if dirent.is_dir(follow_symlinks=False):
            if len(below[rel]) != 1 or _NOWHERE in below[rel]:
                continue  # its paths move one by one
            whole, layer = rel + "/", next(iter(below[rel]))
        else:
            layer = layer_of.get(rel, _NOWHERE)
            if layer == _NOWHERE:
                continue
            listing[layer].append("/" + rel)
        dest = os.path.join(staging, dirs[layer], rel)
        _make_parent(dest, made)
        os.rename(dirent.path, dest)
    for names in listing.values():
        names.sort()
    _write_layer_lists(staging, plan.prefix.relative_to("/"), listing)
    for entry in plan.entries:
        if entry.kind == "dir":
            _write(entry, os.path.join(staging, dirs[entry.layer], str(entry.dest)), made)
    shutil.rmtree(root)
    os.rename(staging, root)


_NOWHERE = ""  # the layer of what the split leaves behind


def _layers_below(paths: list[tuple[str, os.DirEntry[str]]], layer_of: dict[str, str]
                  ) -> dict[str, set[str]]:
    """For each directory of ``paths``, the layers it and every path below it go to, with
    _NOWHERE for what moving it whole would keep but a move of its paths one by one would
    not: a path of no layer, a directory of no entry that is empty or has another mode than
    a new one."""
    new_mode = _new_dir_mode()
    below: dict[str, set[str]] = {}
    for rel, entry in reversed(paths):  # what a directory holds comes before it
        if entry.is_dir(follow_symlinks=False):
            own = below.setdefault(rel, set())
            if rel in layer_of:
                own.add(layer_of[rel])
            elif not own or stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode) != new_mode:
                own.add(_NOWHERE)
        else:
            own = {layer_of.get(rel, _NOWHERE)}
        parent = rel.rpartition("/")[0]
        if parent:
            below.setdefault(parent, set()).update(own)
    return below


def _new_dir_mode() -> int:
    """The mode os.makedirs gives a new directory: 0o777 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def _manifest_path(plan: Plan) -> PurePosixPath:
    return PurePosixPath(str(Runtime(plan.prefix).manifest).lstrip("/"))


def write_farm(plan: Plan, options: FarmOptions, patcher: patch.ElfPatcher) -> Manifest:
    """Write the farm described by ``plan`` under ``options.output``; returns the manifest."""
    root = options.output
    root.mkdir(parents=True, exist_ok=True)
    digests = write_entries(plan, root)
    patch.apply(plan.rpaths, root, patcher)
    write_bytecode(options.python, bytecode_jobs(plan, root))
    with basefiles.standing_in(root, plan.base):
        build_ld_cache(root)
    # What the steps after the copy rewrote is read again: the patched objects; the .pyc
    # files are new, or may replace a copied one.
    patched = {str(edit.dest) for edit in plan.rpaths}
    unchanged = {rel: digest for rel, digest in digests.items()
                 if rel not in patched and not rel.endswith(".pyc")}
    doc = basefiles.with_provided(manifest(plan, root, unchanged), plan.base)
    target = root / _manifest_path(plan)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(doc.dumps())
    if options.layers:
        split_layers(root, doc, plan)
    fix_times(root, options.epoch)
    return doc

