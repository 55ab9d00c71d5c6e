"""The app spec: what the app is and how to run it.

One encoding for every place it comes from or goes to: ``[tool.pyfarm-docker]`` in
pyproject.toml, a corpus ``case.json``, the JSON file the builder stage traces with
(``trace --spec``) and the final image's ``io.pyfarm-docker.spec`` label. Keys: kind,
entry, args, trace_args, run_args, port, probes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ._read import Fields

KINDS = ("script", "server")
KEYS = frozenset({"kind", "entry", "args", "trace_args", "run_args", "port", "probes"})
# RFC 9110 token (a method), and a request target without spaces or control characters.
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_PATH = re.compile(r"/[^\x00-\x20\x7f-\x9f]*")


@dataclass(frozen=True)
class Probe:
    """One HTTP request to the server and, optionally, what must come back."""

    method: str
    path: str
    body_json: Any = None
    expect_status: int | None = None
    expect_body: str | None = None
    expect_json: Any = None

    def __post_init__(self) -> None:
        if not _METHOD.fullmatch(self.method):
            raise UsageError(f"probe method {self.method!r} is not an HTTP method",
                             "use a token such as GET or POST")
        if not _PATH.fullmatch(self.path):
            raise UsageError(f"probe path {self.path!r} is not a request path",
                             "start it with / and leave out spaces and control characters")

    @classmethod
    def parse(cls, text: str) -> Probe:
        """``'GET /health'``, ``'GET /missing 404'`` or ``'POST /sum 200 {"numbers": [1]}'``:
        method, path, optional expected status, optional JSON body."""
        parts = text.strip().split(None, 2)
        if len(parts) < 2 or not parts[1].startswith("/"):
            raise UsageError(f"bad probe {text!r}",
                             "write it as 'METHOD /path [STATUS] [JSON body]'")
        rest = parts[2] if len(parts) == 3 else ""
        status = None
        first, _, tail = rest.partition(" ")
        if first.isdigit():
            status, rest = int(first), tail.strip()
        body = None
        if rest:
            try:
                body = json.loads(rest)
            except ValueError as exc:
                raise UsageError(f"probe {text!r} has a body that is not JSON: {exc}") from None
        return cls(parts[0].upper(), parts[1], body, status)

    @classmethod
    def from_json(cls, fields: Fields) -> Probe:
        fields.only({"method", "path", "json", "expect_status", "expect_body", "expect_json"})
        return cls(fields.text("method", "GET").upper(), fields.text("path"),
                   fields.raw("json"), fields.opt_integer("expect_status"),
                   fields.opt_text("expect_body"), fields.raw("expect_json"))

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "json": self.body_json,
                "expect_status": self.expect_status, "expect_body": self.expect_body,
                "expect_json": self.expect_json}

    def label(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class AppSpec:
    """How the app starts; ``entry`` is what follows the interpreter (``app.py`` or ``-m pkg``)."""

    entry: tuple[str, ...] = ("app.py",)
    args: tuple[str, ...] = ()
    trace_args: tuple[str, ...] | None = None
    run_args: tuple[str, ...] | None = None
    port: int | None = None
    probes: tuple[Probe, ...] = ()

    def __post_init__(self) -> None:
        if not self.entry or (self.entry[0] in ENTRY_OPTIONS and len(self.entry) < 2):
            raise UsageError(f"entry {list(self.entry)} names no script or module",
                             'use ["app.py"], ["-m", "package"] or ["--script", "name"]')
        if self.entry[0].startswith("-") and self.entry[0] not in ENTRY_OPTIONS:
            raise UsageError(f"entry {list(self.entry)} starts with an unknown option",
                             'use ["app.py"], ["-m", "package"] or ["--script", "name"]')
        if self.port is not None and not 0 < self.port < 65536:
            raise UsageError(f"port {self.port} is not a TCP port (1-65535)")
        if self.probes and self.port is None:
            raise UsageError("probes are given but no port", "a server needs --port (or port)")

    @property
    def kind(self) -> str:
        """A server has a port; anything else runs to completion."""
        return "script" if self.port is None else "server"

    @property
    def traced_args(self) -> tuple[str, ...]:
        return self.args if self.trace_args is None else self.trace_args

    @property
    def checked_args(self) -> tuple[str, ...]:
        return self.args if self.run_args is None else self.run_args

    @property
    def module(self) -> str | None:
        return self.entry[1] if self.entry[0] == "-m" else None

    @property
    def script(self) -> str | None:
        """A console script's name (``["--script", NAME]``), before the build resolves it."""
        return self.entry[1] if self.entry[0] == "--script" else None

    @classmethod
    def from_json(cls, fields: Fields) -> AppSpec:
        """From case.json, ``[tool.pyfarm-docker]``, a spec file or a label."""
        port = fields.opt_integer("port")
        kind = fields.opt_text("kind")
        if kind is not None and kind not in KINDS:
            raise UsageError(f"{fields.where}: kind must be one of {', '.join(KINDS)}, "
                             f"not {kind!r}")
        if kind == "server" and port is None:
            raise UsageError(f"{fields.where}: a server needs a port", "set port (or --port)")
        if kind == "script" and port is not None:
            raise UsageError(f"{fields.where}: a script has no port",
                             "drop kind (a port makes the app a server) or the port")
        return cls(entry=fields.texts("entry", ("app.py",)), args=fields.texts("args", ()),
                   trace_args=_opt_texts(fields, "trace_args"),
                   run_args=_opt_texts(fields, "run_args"), port=port,
                   probes=tuple(Probe.from_json(p) for p in fields.objects("probes", False)))

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "entry": list(self.entry), "args": list(self.args),
                "trace_args": _opt_list(self.trace_args), "run_args": _opt_list(self.run_args),
                "port": self.port, "probes": [p.to_json() for p in self.probes]}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def loads(cls, text: str, where: str) -> AppSpec:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"{where} is not JSON: {exc}") from None
        return cls.from_json(Fields(data, where).only(KEYS))

    def check_files(self, app_dir: Path) -> AppSpec:
        """Check a script entry against the project; returns itself. A module is found as
        Python finds it once the app is installed: in the project, in its ``src/`` layout,
        or in a distribution the project installs (its own or a dependency: any module is
        accepted then, and the traced run fails clearly when it does not import)."""
        if self.entry[0] in ("-c", "--script"):
            return self
        if self.module is None:
            script = app_dir / self.entry[0]
            if not script.exists():
                raise UsageError(f"entry file {script} does not exist",
                                 "name the app's script, or use -m package")
            if script.is_dir():
                raise UsageError(f"entry {script} is a directory",
                                 "name a .py file, or run a package with -m NAME")
        elif not any(_has_module(root, self.module) for root in (app_dir, app_dir / "src")) \
                and not any((app_dir / name).is_file() for name in INSTALL_FILES):
            raise UsageError(f"module {self.module!r} is not in {app_dir} and the project "
                             "installs nothing that could provide it",
                             "declare the distribution that provides it in pyproject.toml or "
                             "requirements.txt, or name a module of the project")
        return self


ENTRY_OPTIONS = ("-m", "-c", "--script")
# Files that make the project install distributions (its own, its dependencies).
INSTALL_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "uv.lock",
                 "poetry.lock", "pdm.lock", "pylock.toml")


def _has_module(root: Path, module: str) -> bool:
    path = root / module.replace(".", "/")
    return path.is_dir() or path.with_name(path.name + ".py").is_file()


def script_entry(name: str) -> tuple[str, ...]:
    """``python -c`` code that finds the console script ``name`` by importlib.metadata when
    the interpreter starts and runs it (for when no wheel was at hand to resolve it)."""
    code = ("import sys; from importlib import metadata as m; e = m.entry_points(); "
            f"e = list(e.select(group='console_scripts', name={name!r}) if hasattr(e, 'select')"
            f" else [x for x in e.get('console_scripts', ()) if x.name == {name!r}]); "
            f"sys.argv[0] = {name!r}; sys.exit(e[0].load()())")
    return ("-c", code)


def _opt_texts(fields: Fields, key: str) -> tuple[str, ...] | None:
    return fields.texts(key) if fields.data.get(key) is not None else None


def _opt_list(value: tuple[str, ...] | None) -> list[str] | None:
    return None if value is None else list(value)
