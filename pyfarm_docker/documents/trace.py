"""trace.json: what one traced run of the app used (docs/trace-json.md). Written by
``trace``, read by ``assemble``."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from ..errors import UsageError
from ._read import Fields, dump, load
from .interpreter import Interpreter

SCHEMA_VERSION = 2  # 2: the native file tracer's records (`native`)
SYS_PATH_KINDS = ("app", "dynload", "stdlib", "stdlib-zip", "site")


@dataclass(frozen=True)
class SysPathEntry:
    path: str
    kind: str  # one of SYS_PATH_KINDS

    @classmethod
    def from_json(cls, f: Fields) -> SysPathEntry:
        kind = f.text("kind")
        if kind not in SYS_PATH_KINDS:
            raise UsageError(f"{f.where}: kind {kind!r} is not one of {SYS_PATH_KINDS}")
        return cls(f.text("path"), kind)


@dataclass(frozen=True)
class Module:
    """Where an imported module came from (its spec's origin) and, for a package, its
    search locations."""

    file: str
    search_locations: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, f: Fields) -> Module:
        return cls(f.text("file", ""), f.texts("search_locations", ()))


@dataclass(frozen=True)
class Distribution:
    """One installed distribution; ``files`` are relative to ``site_dir`` and stay inside it."""

    name: str
    version: str
    site_dir: str
    dist_info: str
    files: tuple[str, ...]

    @classmethod
    def from_json(cls, f: Fields) -> Distribution:
        return cls(f.text("name"), f.text("version", ""), f.text("site_dir"),
                   f.text("dist_info"), f.texts("files"))


@dataclass(frozen=True)
class ImpliedFile:
    """A file C code opens where the audit hook cannot see it, and why it is implied."""

    path: str
    reason: str

    @classmethod
    def from_json(cls, f: Fields) -> ImpliedFile:
        return cls(f.text("path"), f.text("reason"))


@dataclass(frozen=True)
class NativeAccess:
    """What the Python processes of the run asked the kernel for, by path, whoever made
    the call (Python, a C extension, glibc): recorded by the native file tracer."""

    traced: bool
    note: str = ""  # why it was not traced
    read: tuple[str, ...] = ()  # opened for reading
    listed: tuple[str, ...] = ()  # directories opened
    written: tuple[str, ...] = ()  # opened for writing or created
    executed: tuple[str, ...] = ()
    probed: tuple[str, ...] = ()  # stat, access, readlink, O_PATH: found
    absent: tuple[str, ...] = ()  # looked for and not found (ENOENT, ENOTDIR)
    programs: tuple[str, ...] = ()  # programs other than Python the run started

    @classmethod
    def list_names(cls) -> tuple[str, ...]:
        """The path lists, in field order: every field after ``traced`` and ``note``."""
        return tuple(f.name for f in fields(cls))[2:]

    @classmethod
    def from_json(cls, f: Fields) -> NativeAccess:
        return cls(f.flag("traced"), f.text("note", ""),
                   *(f.texts(name, ()) for name in cls.list_names()))

    def to_json(self) -> dict[str, Any]:
        return {"traced": self.traced, "note": self.note,
                **{name: list(getattr(self, name)) for name in self.list_names()}}


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    executable: str
    argv: tuple[str, ...]
    exited: bool

    @classmethod
    def from_json(cls, f: Fields) -> Process:
        return cls(f.integer("pid"), f.integer("ppid"), f.text("executable", ""),
                   f.texts("argv"), f.flag("exited"))


@dataclass(frozen=True)
class ProbeAnswer:
    probe: str
    status: int
    body: str

    @classmethod
    def from_json(cls, f: Fields) -> ProbeAnswer:
        return cls(f.text("probe"), f.integer("status"), f.text("body", ""))


@dataclass(frozen=True)
class Trace:
    command: tuple[str, ...]
    cwd: str
    kind: str
    port: int | None
    interpreter: Interpreter
    app_dir: str
    sys_path: tuple[SysPathEntry, ...]
    modules: Mapping[str, Module]
    imports: tuple[str, ...]
    files_opened: tuple[str, ...]
    mapped: tuple[str, ...]
    dlopen: tuple[str, ...]
    files_implied: tuple[ImpliedFile, ...]
    distributions: tuple[Distribution, ...]
    unowned: tuple[str, ...]
    processes: tuple[Process, ...]
    exit_status: int
    probes: tuple[ProbeAnswer, ...]
    native: NativeAccess

    def site_dirs(self) -> list[str]:
        return [e.path for e in self.sys_path if e.kind == "site"]

    @classmethod
    def from_json(cls, f: Fields) -> Trace:
        version = f.data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise UsageError(f"{f.where} has trace schema {version!r}, this tool reads "
                             f"only {SCHEMA_VERSION}", "trace the app again with this version")
        modules = f.object("modules")
        return cls(
            command=f.texts("command"), cwd=f.text("cwd"), kind=f.text("kind"),
            port=f.opt_integer("port"), interpreter=Interpreter.from_json(f.object("interpreter")),
            app_dir=f.text("app_dir"),
            sys_path=tuple(SysPathEntry.from_json(e) for e in f.objects("sys_path")),
            modules={k: Module.from_json(modules.object(k)) for k in modules.data},
            imports=f.texts("imports"), files_opened=f.texts("files_opened"),
            mapped=f.texts("mapped"), dlopen=f.texts("dlopen"),
            files_implied=tuple(ImpliedFile.from_json(e) for e in f.objects("files_implied")),
            distributions=tuple(Distribution.from_json(e) for e in f.objects("distributions")),
            unowned=f.texts("unowned"),
            processes=tuple(Process.from_json(e) for e in f.objects("processes")),
            exit_status=f.integer("exit_status"),
            probes=tuple(ProbeAnswer.from_json(e) for e in f.objects("probes")),
            native=NativeAccess.from_json(f.object("native")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION, "command": list(self.command), "cwd": self.cwd,
            "kind": self.kind, "port": self.port, "interpreter": self.interpreter.to_json(),
            "app_dir": self.app_dir,
            "sys_path": [{"path": e.path, "kind": e.kind} for e in self.sys_path],
            "modules": {k: {"file": m.file, "search_locations": list(m.search_locations)}
                        for k, m in sorted(self.modules.items())},
            "imports": list(self.imports), "files_opened": list(self.files_opened),
            "mapped": list(self.mapped), "dlopen": list(self.dlopen),
            "files_implied": [{"path": i.path, "reason": i.reason} for i in self.files_implied],
            "distributions": [_dist_json(d) for d in self.distributions],
            "unowned": list(self.unowned),
            "processes": [{"pid": p.pid, "ppid": p.ppid, "executable": p.executable,
                           "argv": list(p.argv), "exited": p.exited} for p in self.processes],
            "exit_status": self.exit_status,
            "probes": [{"probe": a.probe, "status": a.status, "body": a.body}
                       for a in self.probes],
            "native": self.native.to_json(),
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump(self.to_json()))

    @classmethod
    def read(cls, path: Path) -> Trace:
        return cls.from_json(load(path, "trace", "run 'pyfarm-docker trace' first"))


def _dist_json(d: Distribution) -> dict[str, Any]:
    return {"name": d.name, "version": d.version, "site_dir": d.site_dir,
            "dist_info": d.dist_info, "files": list(d.files)}
