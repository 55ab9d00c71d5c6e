"""Trace shim, imported as ``sitecustomize`` by every process of a traced run.

It runs inside the app's own interpreter, so it uses only the standard
library, supports CPython 3.8+ and must not change what the app does: it
writes nothing to stdout/stderr, never raises into the app, removes its own
directory from ``sys.path`` and hands over to any real ``sitecustomize``.

Events go to one shared log (``$PYFARM_TRACE_LOG``) as tab-separated lines
written with a single ``os.write`` on an O_APPEND descriptor, so lines of
concurrent processes never interleave and nothing is lost when a process is
killed or leaves through ``os._exit``.
"""

from __future__ import annotations

import itertools
import os
import sys

_LOG_ENV = "PYFARM_TRACE_LOG"
_SKIP_PREFIXES = ("/proc/", "/sys/", "/dev/")
# Set by pyfarm-fstrace in what it traces: it records every file any process opens.
_NATIVE_TRACER = os.environ.get("PYFARM_TRACE_NATIVE") == "1"
_MAPS_EVERY_S = 0.1
# The audit hook runs for every event (matplotlib raises "builtins.id" tens of thousands of
# times): a set test in a plain function is a third of a method's if-chain.
_EVENTS = frozenset(("open", "import", "exec", "ctypes.dlopen"))


def _escape(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return value


class _Recorder:
    def __init__(self, log_path: str) -> None:
        self._fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._seen: set[tuple[str, str]] = set()
        self._last_path: list[str] = []
        self._modules_seen = 0
        self._dlopened = False
        self._maps_due = False
        self._maps_read = -_MAPS_EVERY_S
        self._pid = str(os.getpid())

    def emit(self, event: str, *fields: str) -> None:
        line = "\t".join((self._pid, event, *map(_escape, fields))) + "\n"
        os.write(self._fd, line.encode("utf-8", "surrogateescape"))

    def emit_once(self, event: str, value: str) -> None:
        key = (event, value)
        if key not in self._seen:
            self._seen.add(key)
            self.emit(event, value)

    def audit(self, event: str, args: tuple[object, ...]) -> None:
        try:
            if event == "open":
                self._on_open(args[0])
            elif event == "import":
                self.emit_once("import", str(args[0]))
                self._on_sys_path(args[2])
                self._after_import()
            elif event == "exec":
                # A module's code starts running once it is in sys.modules: the last import
                # of a worker that is killed (never reaching atexit) is recorded too.
                self._after_import()
            else:  # ctypes.dlopen
                self._dlopened = True
                self.emit_once("dlopen", "" if args[0] is None else os.fsdecode(args[0]))  # type: ignore[arg-type]
        except Exception:
            pass

    def _after_import(self) -> None:
        """Record the new modules. Read the maps when native code came in: at the first
        import after ctypes loaded a library, else at most every _MAPS_EVERY_S (the driver
        samples them too). Under the native tracer, which sees every library opened, only
        at exit."""
        native = self.catch_up()
        if _NATIVE_TRACER:
            return
        self._maps_due = self._maps_due or native
        if self._dlopened or (self._maps_due and self._maps_wait_over()):
            self._maps_due = self._dlopened = False
            self._on_maps()

    def _maps_wait_over(self) -> bool:
        now = os.times().elapsed
        if now - self._maps_read < _MAPS_EVERY_S:
            return False
        self._maps_read = now
        return True

    def catch_up(self) -> bool:
        """Record the modules loaded since the last call, as a process killed by a signal
        never reaches atexit. True when one of them is native code."""
        count = len(sys.modules)
        if count == self._modules_seen:
            return False
        # Only the newest entries (dicts keep insertion order and reverse without a copy).
        new = list(itertools.islice(reversed(sys.modules.items()),
                                    max(count - self._modules_seen, 0)))
        self._modules_seen = count
        return any([".so" in self._emit_module(name, module) for name, module in reversed(new)])

    def _on_maps(self) -> None:
        # What the previous import mapped: a pool worker killed by terminate() between the
        # driver's samples would lose it, as it never reaches atexit.
        for path in _mapped_files():
            if ".so" in path:
                self.emit_once("map", path)

    def _on_sys_path(self, path: object) -> None:
        # A server killed by SIGTERM never reaches atexit: keep sys.path as it changes.
        if isinstance(path, list) and path != self._last_path:
            self._last_path = list(path)
            self.emit("sys_path", *[str(p) for p in path])

    def _on_open(self, path: object) -> None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if isinstance(path, str) and not path.startswith(_SKIP_PREFIXES):
            self.emit_once("open", os.path.abspath(path))

    def started(self) -> None:
        self._pid = str(os.getpid())  # again in a forked child
        self.emit("start", str(os.getppid()), sys.executable, *getattr(sys, "orig_argv", sys.argv))

    def finished(self) -> None:
        self.emit("argv", *sys.argv)
        self.emit("sys_path", *sys.path)
        for name, module in list(sys.modules.items()):
            self._emit_module(name, module)
        for path in _mapped_files():
            self.emit_once("map", path)
        self.emit("exit")

    def _emit_module(self, name: str, module: object) -> str:
        # __dict__, not getattr: a module's own __getattr__ must never run for us.
        namespace = getattr(module, "__dict__", None) or {}
        spec = namespace.get("__spec__")
        origin = str(getattr(spec, "origin", None) or namespace.get("__file__") or "")
        locations = getattr(spec, "submodule_search_locations", None) or []
        self.emit("module", name, origin, *[str(p) for p in locations])
        return origin


def _mapped_files() -> list[str]:
    """Files mapped into this process. A line's path is the field that starts with "/"
    after the address, mode, offset, device and inode (which hold none). One read and a
    find per line: a large app's maps run to thousands of lines."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="surrogateescape") as maps:
            lines = maps.read().splitlines()
    except OSError:
        return []
    return list(dict.fromkeys(line[line.find(" /") + 1:] for line in lines if " /" in line))


def _chain_real_sitecustomize(own_dir: str) -> None:
    """Drop the shim from sys.path and import the sitecustomize it shadowed, if any."""
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != own_dir]
    shim = sys.modules.pop(__name__)
    try:
        import sitecustomize  # type: ignore[import-not-found]  # noqa: F401
    except ImportError as exc:
        # site.py expects a module under this name once the import returns.
        sys.modules[__name__] = shim
        if exc.name != "sitecustomize":
            raise


def _install() -> None:
    log_path = os.environ.get(_LOG_ENV)
    if not log_path:
        return
    import atexit

    recorder = _Recorder(log_path)
    recorder.started()
    recorder.catch_up()  # what the interpreter imported before us: encodings, site, ...
    audit = recorder.audit

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event in _EVENTS:
            audit(event, args)

    sys.addaudithook(hook)
    atexit.register(recorder.finished)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=recorder.started)


_install()
_chain_real_sitecustomize(os.path.dirname(os.path.abspath(__file__)))
