"""Carry out a plan: write the root filesystem, patch, compile, index, describe."""

from __future__ import annotations

import os
import shutil
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


@dataclass(frozen=True)
class FarmOptions:
    output: Path
    python: str  # the traced interpreter, which compiles the .pyc files
    epoch: int = 0
    layers: bool = False


def write_entries(plan: Plan, root: Path) -> None:
    for entry in sorted(plan.entries, key=lambda e: (e.kind != "dir", str(e.dest))):
        if entry.dest.is_absolute() or ".." in entry.dest.parts:
            raise AssembleError(f"refusing to write {entry.dest}: outside the output")
        if entry.kind == "zip":
            _write_zip(root / entry.dest, plan.zipped)
        else:
            _write(entry, root / entry.dest)


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


def _write(entry: Entry, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if entry.kind == "dir":
        target.mkdir(exist_ok=True)
    elif entry.kind == "link":
        target.symlink_to(entry.target)
        return
    elif entry.kind == "file":
        shutil.copyfile(entry.source, target)
    else:
        target.write_bytes(entry.content)
    os.chmod(target, entry.mode)
    if entry.owner:
        os.chown(target, entry.owner, entry.owner)  # the builder assembles as root


def bytecode_jobs(plan: Plan, root: Path) -> list[tuple[str, Path, bool]]:
    """(builder source, .py in the staged farm, sourceless) for each module to compile."""
    by_dest = {e.dest: e for e in plan.entries}
    return [(by_dest[dest].source, root / dest, dest in plan.sourceless)
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


def _of_generated(rel: PurePosixPath, known: dict[PurePosixPath, tuple[str, str, str]]
                  ) -> tuple[str, str, str]:
    """.pyc files go with their source (beside it, or in its place); the loader cache with
    the runtime."""
    for source in (source_of(rel), rel.with_suffix(".py")):
        if source != rel and source in known:
            return known[source]
    return ("runtime", "essential", "essential")


def manifest(plan: Plan, root: Path) -> Manifest:
    known = {e.dest: (e.layer, e.origin, e.reason) for e in plan.entries}
    files: list[FileRecord] = []
    for path in sorted(root.rglob("*")):
        rel = PurePosixPath(path.relative_to(root).as_posix())
        if path.is_symlink() or not path.is_file():
            continue
        layer, origin, reason = known.get(rel) or _of_generated(rel, known)
        files.append(FileRecord("/" + str(rel), path.stat().st_size, file_sha256(path), origin,
                                layer, reason))
    return Manifest(
        prefix=str(plan.prefix), python="/" + str(plan.python),
        env=tuple(sorted(Runtime(plan.prefix).env())), files=tuple(files),
        links=tuple(sorted("/" + str(e.dest) for e in plan.entries if e.kind == "link")),
        warnings=plan.warnings, conflicts=plan.conflicts,
        prunable=tuple(f.path for f in files if _prunable(PurePosixPath(f.path[1:]), plan)),
    )


def _prunable(rel: PurePosixPath, plan: Plan) -> bool:
    """A .py file the run never read, or the .pyc compiled from one."""
    return source_of(rel) in plan.prunable


def fix_times(root: Path, epoch: int) -> None:
    """Same mtimes everywhere, so identical inputs give identical layers."""
    for path in [*root.rglob("*"), root]:
        os.utime(path, (epoch, epoch), follow_symlinks=False)


def _write_layer_lists(staging: Path, prefix: PurePosixPath, listing: dict[str, list[str]]
                       ) -> None:
    """Each layer lists its own paths: handy to read, and it keeps every layer non-empty
    (the legacy builder fails to export two identical empty COPY layers)."""
    for name, directory in zip(LAYERS, layer_dirs()):
        target = staging / directory / prefix / ".pyfarm" / f"layer-{directory}.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(f"{p}\n" for p in listing[name]))


def split_layers(root: Path, doc: Manifest, plan: Plan) -> None:
    """Move each path into ``root/<n>-<layer>/`` so the Dockerfile copies one layer each."""
    dirs = dict(zip(LAYERS, layer_dirs()))
    layer_of = {e.dest: e.layer for e in plan.entries}
    layer_of.update({PurePosixPath(f.path[1:]): f.layer for f in doc.files})
    layer_of[_manifest_path(plan)] = "app"
    staging = root.parent / (root.name + ".layers")
    listing: dict[str, list[str]] = {name: [] for name in LAYERS}
    for rel, layer in sorted(layer_of.items(), key=lambda kv: str(kv[0])):
        source = root / rel
        if source.is_dir() and not source.is_symlink():
            continue
        if not source.exists() and not source.is_symlink():
            continue  # a .py replaced by its .pyc (prune)
        dest = staging / dirs[layer] / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(source, dest)
        listing[layer].append("/" + str(rel))
    _write_layer_lists(staging, plan.prefix.relative_to("/"), listing)
    for entry in plan.entries:
        if entry.kind == "dir":
            _write(entry, staging / dirs[entry.layer] / entry.dest)
    shutil.rmtree(root)
    os.rename(staging, root)


def _manifest_path(plan: Plan) -> PurePosixPath:
    return PurePosixPath(str(Runtime(plan.prefix).manifest).lstrip("/"))


def write_farm(plan: Plan, options: FarmOptions, patcher: patch.ElfPatcher) -> Manifest:
    """Write the farm described by ``plan`` under ``options.output``; returns the manifest."""
    root = options.output
    root.mkdir(parents=True, exist_ok=True)
    write_entries(plan, root)
    patch.apply(plan.rpaths, root, patcher)
    write_bytecode(options.python, bytecode_jobs(plan, root))
    with basefiles.standing_in(root, plan.base):
        build_ld_cache(root)
    doc = basefiles.with_provided(manifest(plan, root), plan.base)
    target = root / _manifest_path(plan)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(doc.dumps())
    if options.layers:
        split_layers(root, doc, plan)
    fix_times(root, options.epoch)
    return doc

