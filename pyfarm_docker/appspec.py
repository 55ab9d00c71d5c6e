"""What the app is and how to run it: from flags, ``[tool.pyfarm-docker]`` or a corpus
``case.json`` (same keys: kind, entry, args, trace_args, run_args, port, probes)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from .errors import UsageError
from .probe import Probe

KINDS = ("script", "server")
SPEC_LABEL = "io.pyfarm-docker.spec"


@dataclass(frozen=True)
class AppSpec:
    """How the app starts; ``entry`` is what follows the interpreter (``app.py`` or ``-m pkg``)."""

    entry: tuple[str, ...] = ("app.py",)
    args: tuple[str, ...] = ()
    trace_args: tuple[str, ...] | None = None
    run_args: tuple[str, ...] | None = None
    kind: str = "script"
    port: int | None = None
    probes: tuple[Probe, ...] = field(default=())

    @property
    def traced_args(self) -> tuple[str, ...]:
        return self.args if self.trace_args is None else self.trace_args

    @property
    def checked_args(self) -> tuple[str, ...]:
        return self.args if self.run_args is None else self.run_args

    @property
    def module(self) -> str | None:
        return self.entry[1] if self.entry[:1] == ("-m",) and len(self.entry) > 1 else None

    def to_label(self) -> str:
        """The spec as JSON for the final image's label: ``verify`` needs only the images."""
        probes = [{"method": p.method, "path": p.path, "json": p.body_json,
                   "expect_status": p.expect_status, "expect_body": p.expect_body,
                   "expect_json": p.expect_json} for p in self.probes]
        return json.dumps({"entry": list(self.entry), "args": list(self.checked_args),
                           "kind": self.kind, "port": self.port, "probes": probes},
                          separators=(",", ":"))

    def validate(self, app_dir: Path) -> AppSpec:
        """Check the spec against the files it names; returns itself."""
        if self.kind not in KINDS:
            raise UsageError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.kind == "server" and self.port is None:
            raise UsageError("a server needs a port", "set port (or --port)")
        if self.module is None:
            script = app_dir / self.entry[0]
            if not script.exists():
                raise UsageError(f"entry file {script} does not exist",
                                 "name the app's script, or use -m package")
            if script.is_dir():
                raise UsageError(f"entry {script} is a directory",
                                 "name a .py file, or run a package with -m NAME")
        elif not (app_dir / self.module.replace(".", "/")).exists() and not (
            app_dir / (self.module.replace(".", "/") + ".py")
        ).exists():
            raise UsageError(f"module {self.module!r} is not in {app_dir}")
        return self


_TYPES: dict[str, type] = {"kind": str, "port": int, "entry": list, "args": list,
                           "trace_args": list, "run_args": list, "probes": list}


def _strings(key: str, value: Any) -> tuple[str, ...]:
    if not all(isinstance(v, str) for v in value):
        raise UsageError(f"{key} must be a list of strings, not {value!r}")
    return tuple(value)


def from_mapping(data: Mapping[str, Any], where: str, extra: frozenset[str] = frozenset()
                 ) -> AppSpec:
    """Build a spec from case.json / pyproject data; unknown keys and wrong types are errors."""
    known = {f.name for f in fields(AppSpec)}
    for key, value in data.items():
        if key in extra:
            continue
        if key not in known:
            raise UsageError(f"{where}: unknown key {key!r}", f"known keys: {sorted(known)}")
        if value is not None and not isinstance(value, _TYPES[key]):
            raise UsageError(f"{where}: {key} must be a {_TYPES[key].__name__}, "
                             f"not {type(value).__name__}")
    values: dict[str, Any] = {}
    for key in ("entry", "args", "trace_args", "run_args"):
        if data.get(key) is not None:
            values[key] = _strings(key, data[key])
    if "kind" in data:
        values["kind"] = data["kind"]
    if "port" in data:
        values["port"] = data["port"]
    values["probes"] = tuple(Probe.from_dict(p) for p in data.get("probes", []))
    return AppSpec(**values)


def load_case(case_dir: Path) -> AppSpec:
    """A corpus case folder: optional case.json, defaults otherwise."""
    case_file = case_dir / "case.json"
    data: dict[str, Any] = {}
    if case_file.exists():
        try:
            data = json.loads(case_file.read_text())
        except ValueError as exc:
            raise UsageError(f"{case_file} is not valid JSON: {exc}") from None
    return from_mapping(data, str(case_file)).validate(case_dir)
