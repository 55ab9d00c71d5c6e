"""Run the app under the trace shim and write ``trace.json`` (see docs/trace-json.md)."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable

from .. import defaults, serve
from ..documents._read import Fields
from ..documents.interpreter import Interpreter
from ..documents.spec import AppSpec, Probe
from ..documents.trace import (
    Distribution,
    ImpliedFile,
    Module,
    NativeAccess,
    ProbeAnswer,
    Process,
    SysPathEntry,
    Trace,
)
from ..errors import TraceError, UsageError
from . import leftovers, nativelog
from .dists import Owners, scan, top_level
from .tracelog import ProcessRecord, parse_lines

SHIM_DIR = Path(__file__).resolve().parent / "shim"
_SAMPLE_S = 0.02
_STDERR_TAIL = 15


@dataclass(frozen=True)
class TraceOptions:
    """How to run the app while tracing it."""

    command: tuple[str, ...]
    output: Path
    cwd: Path | None = None
    timeout: float = 600.0
    port: int | None = None
    probes: tuple[Probe, ...] = ()
    ready_timeout: float = defaults.READY_TIMEOUT
    grace: float = 10.0
    native: bool = True  # also record what native code opens (pyfarm-fstrace, ptrace)
    allowed_exit_codes: frozenset[int] = field(default_factory=lambda: frozenset({0}))


def spec_command(spec: AppSpec, interpreter: tuple[str, ...]) -> tuple[str, ...]:
    """The traced command line for an app spec: the interpreter, the entry, the args."""
    return (*interpreter, *spec.entry, *spec.traced_args)


def describe_interpreter(python: str, cwd: Path | None = None) -> Interpreter:
    """Ask the app's interpreter where its pieces live (without the shim)."""
    try:
        done = subprocess.run(
            [python, str(SHIM_DIR / "interp_info.py")],
            capture_output=True, text=True, cwd=cwd, timeout=60, check=False,
        )
    except OSError as exc:
        raise UsageError(f"cannot run interpreter {python!r}: {exc.strerror}",
                         "the command after -- must start with a Python interpreter") from exc
    try:
        described = json.loads(done.stdout) if done.returncode == 0 else None
    except ValueError:
        described = None
    if described is None:
        last = (done.stderr.strip().splitlines() or ["it printed no description"])[-1]
        raise UsageError(f"{python!r} is not a working Python interpreter: {last}",
                         "the command after -- must start with a Python interpreter")
    return Interpreter.from_json(Fields(described, f"{python} description"))


class TracedRun:
    """One traced process tree: output tee, maps sampling, log reading."""

    def __init__(self, options: TraceOptions, log: Path, stderr: IO[bytes] | None) -> None:
        self.options = options
        self.log = log
        self.native_log = log.with_name("native.log")
        self.wrapped = options.native and nativelog.available()
        command = (nativelog.wrap(options.command, self.native_log) if self.wrapped
                   else options.command)
        self.records: dict[int, ProcessRecord] = {}
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL)
        self._log_offset = 0
        self._stop = threading.Event()
        env = dict(os.environ)
        env["PYFARM_TRACE_LOG"] = str(log)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SHIM_DIR), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            command, cwd=options.cwd, env=env, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._sink = stderr
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Tee the app's stderr and sample its maps (called inside the caller's cleanup)."""
        self._threads = [
            threading.Thread(target=self._tee, args=(self._sink,), daemon=True),
            threading.Thread(target=self._sample, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _tee(self, sink: IO[bytes] | None) -> None:
        assert self.proc.stderr is not None
        for line in iter(self.proc.stderr.readline, b""):
            self.stderr_tail.append(line.decode("utf-8", "replace").rstrip())
            if sink is not None:
                sink.write(line)
                sink.flush()

    def _read_log(self) -> None:
        if not self.log.exists():
            return
        with self.log.open("rb") as f:
            f.seek(self._log_offset)
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._log_offset += len(complete)
        text = complete.decode("utf-8", "surrogateescape")
        parse_lines(text.splitlines(keepends=True), self.records)

    def _sample(self) -> None:
        """Read /proc/PID/maps of live traced processes: killed ones report nothing at exit."""
        while not self._stop.is_set():
            self._read_log()
            for pid, rec in list(self.records.items()):
                if not rec.exited:
                    rec.mapped.update(_maps_of(pid))
            self._stop.wait(_SAMPLE_S)

    def stop_tree(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def finish(self) -> dict[int, ProcessRecord]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._read_log()
        return self.records

    def main_pid(self) -> int:
        """The app's process: ours, or the native tracer's child when it runs the app."""
        if self.wrapped:
            children = [r.pid for r in self.records.values() if r.ppid == self.proc.pid]
            return min(children, default=-1)
        return self.proc.pid

    def native(self, interp: Interpreter) -> NativeAccess:
        if not self.options.native:
            return NativeAccess(False, "turned off (--no-native)")
        if not self.wrapped:
            return NativeAccess(False, nativelog.NOT_INSTALLED)
        pythons = {os.path.realpath(r.executable) for r in self.records.values()}
        pythons.add(os.path.realpath(interp.executable))
        return nativelog.read_log(self.native_log, pythons, (str(self.log.parent),))

    def failure(self, what: str) -> TraceError:
        tail = "\n".join(self.stderr_tail)
        return TraceError(f"{what}; last stderr lines:\n{tail}" if tail else what,
                          "run the app by hand in the builder image to see why")


def _maps_of(pid: int) -> set[str]:
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="surrogateescape") as maps:
            lines = maps.read().splitlines()
    except OSError:
        return set()
    fields = (line.split(None, 5) for line in lines)
    return {f[5] for f in fields if len(f) == 6 and f[5].startswith("/")
            and not f[5].endswith(" (deleted)")}


def _run_script(run: TracedRun) -> int:
    try:
        return run.proc.wait(timeout=run.options.timeout)
    except subprocess.TimeoutExpired:
        run.stop_tree(signal.SIGKILL)
        run.proc.wait()
        raise run.failure(f"the app did not finish within {run.options.timeout:g}s") from None


def _run_server(run: TracedRun, started: float) -> list[ProbeAnswer]:
    options = run.options
    assert options.port is not None
    served = serve.probe_server(options.port, options.probes, lambda: run.proc.poll() is None,
                                started, options.ready_timeout)
    if not served.ready:
        state = "exited" if run.proc.poll() is not None else "is still starting"
        raise run.failure(f"the server never opened 127.0.0.1:{options.port} "
                          f"within {options.ready_timeout:g}s (it {state})")
    for probe, answer in zip(options.probes, served.answers):
        problem = serve.mismatch(probe, answer)
        if problem:
            raise run.failure(f"probe failed: {problem}")
    return [ProbeAnswer(p.label(), a.status, a.body)
            for p, a in zip(options.probes, served.answers)]


def _stop_server(run: TracedRun) -> None:
    run.stop_tree(signal.SIGTERM)
    try:
        run.proc.wait(timeout=run.options.grace)
    except subprocess.TimeoutExpired:
        run.stop_tree(signal.SIGKILL)
        run.proc.wait()


@dataclass
class RunOutcome:
    """What one traced run of the app gave, before it is folded into trace.json."""

    records: dict[int, ProcessRecord]
    main_pid: int
    status: int
    answers: list[ProbeAnswer]
    native: NativeAccess


def _execute(options: TraceOptions, interp: Interpreter, log: Path,
             stderr: IO[bytes] | None) -> RunOutcome:
    started = time.monotonic()
    run = TracedRun(options, log, stderr)
    answers: list[ProbeAnswer] = []
    try:
        run.start()
        if options.port is None:
            status = _run_script(run)
        else:
            answers = _run_server(run, started)
    finally:
        if run.proc.poll() is None:
            _stop_server(run)
        # Children that outlive the app are not part of its run, and would hold its
        # stderr open: the trace does not wait for them.
        run.stop_tree(signal.SIGKILL)
        records = run.finish()
    if options.port is None and status not in options.allowed_exit_codes:
        how = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
        raise run.failure(f"the app {how} while traced")
    return RunOutcome(records, run.main_pid(), run.proc.returncode, answers, run.native(interp))


def run_trace(options: TraceOptions, stderr: IO[bytes] | None = None) -> Trace:
    """Run ``options.command``, write the merged trace to ``options.output`` and return it."""
    if not options.command:
        raise UsageError("no command to trace", "give it after --, e.g. -- python app.py")
    if options.port is not None and serve.port_in_use(options.port):
        raise TraceError(f"127.0.0.1:{options.port} is already in use before the app started",
                         "stop whatever listens there, or trace with another --port")
    interpreter = describe_interpreter(options.command[0], options.cwd)
    with leftovers.removed_after(options.cwd, options.output), \
            tempfile.TemporaryDirectory(prefix="pyfarm-trace-") as tmp:
        outcome = _execute(options, interpreter, Path(tmp) / "events.log", stderr)
    trace = merge(options, interpreter, outcome)
    trace.write(options.output)
    return trace


def _main_record(records: dict[int, ProcessRecord], pid: int) -> ProcessRecord:
    if pid in records:
        return records[pid]
    raise TraceError("the traced command never started Python with the trace shim",
                     "the command after -- must run a Python interpreter directly")


def _classify(entry: str, interp: Interpreter, app_dir: str) -> str:
    if entry == app_dir:
        return "app"
    if entry == interp.lib_dynload:
        return "dynload"
    if entry in (interp.stdlib, interp.platstdlib):
        return "stdlib"
    if entry.endswith(".zip"):
        return "stdlib-zip"
    return "site"


def merge(options: TraceOptions, interp: Interpreter, outcome: RunOutcome) -> Trace:
    """Fold every process's record into the trace document."""
    records = outcome.records
    main = _main_record(records, outcome.main_pid)
    cwd = str((options.cwd or Path.cwd()).resolve())
    sys_path = [os.path.join(cwd, e) if not os.path.isabs(e) else e for e in main.sys_path]
    app_dir = sys_path[0] if sys_path else cwd
    entries = tuple(SysPathEntry(e, _classify(e, interp, app_dir)) for e in sys_path)
    modules: dict[str, Module] = {}
    used: set[str] = set()
    for rec in records.values():
        for name, (origin, locations) in rec.modules.items():
            modules[name] = Module(origin, tuple(locations))
        used |= rec.opened | rec.mapped | {o for o, _ in rec.modules.values() if o.startswith("/")}
    dists = _used_distributions(entries, used)
    return Trace(
        command=options.command, cwd=cwd, kind="script" if options.port is None else "server",
        port=options.port, interpreter=interp, app_dir=app_dir, sys_path=entries,
        modules=dict(sorted(modules.items())),
        imports=_union(r.imports for r in records.values()),
        files_opened=_union(r.opened for r in records.values()),
        mapped=_union(r.mapped for r in records.values()),
        dlopen=tuple(n for n in _union(r.dlopen for r in records.values()) if n),
        files_implied=_implied_files(interp, modules),
        distributions=tuple(dists), unowned=tuple(_unowned(entries, used, dists)),
        processes=tuple(Process(r.pid, r.ppid, r.executable, tuple(r.argv), r.exited)
                        for r in sorted(records.values(), key=lambda r: r.pid)),
        exit_status=outcome.status, probes=tuple(outcome.answers), native=outcome.native,
    )


def _union(sets: Iterable[set[str]]) -> tuple[str, ...]:
    return tuple(sorted(set().union(*sets)))


def _implied_files(interp: Interpreter, modules: dict[str, Module]) -> tuple[ImpliedFile, ...]:
    """Files C code opens where the audit hook cannot see: OpenSSL's CA bundle."""
    cafile = interp.ssl_cafile_resolved or interp.ssl_cafile
    if "_ssl" in modules and cafile and os.path.isfile(cafile):
        return (ImpliedFile(cafile, "OpenSSL's default CA bundle (_ssl loaded)"),)
    return ()


def _site_dirs(entries: Iterable[SysPathEntry]) -> list[str]:
    return [e.path for e in entries if e.kind == "site"]


def _site_of(path: str, site_dirs: list[str]) -> str | None:
    matches = [s for s in site_dirs if path.startswith(s.rstrip("/") + "/")]
    return max(matches, key=len) if matches else None


def _used_distributions(entries: tuple[SysPathEntry, ...], used: set[str]
                        ) -> list[Distribution]:
    site_dirs = _site_dirs(entries)
    owners = Owners([d for s in site_dirs for d in scan(Path(s))])
    found: dict[tuple[str, str], Distribution] = {}
    for path in sorted(used):
        site = _site_of(path, site_dirs)
        dist = owners.owner(site, path) if site else None
        if dist is not None:
            found[(dist.site_dir, dist.dist_info)] = dist
    return [found[k] for k in sorted(found)]


def _unowned(entries: tuple[SysPathEntry, ...], used: set[str],
             dists: list[Distribution]) -> list[str]:
    """Top-level names used from a site dir that no ``*.dist-info`` claims."""
    site_dirs = _site_dirs(entries)
    claimed = {(d.site_dir, top_level(f)) for d in dists for f in d.files}
    out = set()
    for path in used:
        site = _site_of(path, site_dirs)
        if site is not None:
            name = top_level(os.path.relpath(path, site))
            if (site, name) not in claimed:
                out.add(os.path.join(site, name))
    return sorted(out)
