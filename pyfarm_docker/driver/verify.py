"""Show that a packed image behaves like its builder: run both the same way with
testcontainers and compare output and exit status, or the answers to HTTP probes; with
``import_all``, also import every top-level module the image ships, in both."""

from __future__ import annotations

import contextlib
import difflib
import importlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Callable, Iterator, Mapping, Sequence

from .. import defaults, runtime, serve
from ..documents.spec import AppSpec
from ..errors import VerifyError
from .engine import Engine, image_label

# Ryuk (testcontainers' reaper) is an image no registry here can give: we clean up ourselves.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
from testcontainers.core.container import DockerContainer

_RUN_TIMEOUT = 300


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Verdict:
    checks: tuple[Check, ...]
    builder_ms: float
    final_ms: float
    imports: ImportAll | None = None  # with import_all

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


@dataclass(frozen=True)
class RunResult:
    """One container's run: its exit status (for a server: 0 when it came up), output,
    time to exit or to its open port, and its answers to the probes."""

    status: int
    stdout: str
    stderr: str
    ms: float
    answers: tuple[serve.Answer, ...] = ()


def spec_from_image(client: Any, image: str) -> AppSpec:
    return AppSpec.loads(image_label(client, image, runtime.LABEL_SPEC), f"label of {image}")


@contextlib.contextmanager
def _container(eng: Engine, image: str, network: str, command: list[str] | None = None,
               **kwargs: Any) -> Iterator[DockerContainer]:
    container = DockerContainer(image, docker_client_kw=eng.client_kw())
    container = container.with_kwargs(network_mode=network, **kwargs)
    if command:
        container = container.with_command(command)
    try:
        container.start()
        yield container
    finally:
        with contextlib.suppress(Exception):
            container.get_wrapped_container().remove(force=True, v=True)


def _run_script(eng: Engine, image: str, **kwargs: Any) -> RunResult:
    started = time.monotonic()
    with _container(eng, image, "none", **kwargs) as c:
        status = c.get_wrapped_container().wait(timeout=_RUN_TIMEOUT)["StatusCode"]
        ms = (time.monotonic() - started) * 1000
        out, err = c.get_logs()
    return RunResult(int(status), out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                     ms)


# Runs in a second container, from the builder image (it has the tool), inside the server
# container's network namespace: waits for the port, sends the probes, prints the answers.
_PROBER = """
import json, sys, time
from pyfarm_docker import serve
from pyfarm_docker.documents.spec import AppSpec
spec = AppSpec.loads(sys.argv[1], "spec")
served = serve.probe_server(spec.port, spec.probes, lambda: True, time.monotonic())
print(json.dumps({"ready": served.ready, "ms": served.ready_ms,
                  "answers": [[a.status, a.body] for a in served.answers]}))
"""


def _run_server(eng: Engine, image: str, spec: AppSpec, prober: str, **kwargs: Any
                ) -> RunResult:
    """The server runs with only its own loopback; the probes come from a container that
    shares its network namespace, so nothing of the image reaches the host's network."""
    with _container(eng, image, "none", **kwargs) as server:
        wrapped = server.get_wrapped_container()
        with _container(eng, prober, f"container:{wrapped.id}",
                        ["-c", _PROBER, spec.dumps()],
                        entrypoint=[str(runtime.BUILDER_TOOL_PYTHON)]) as probing:
            found = _prober_answer(probing.get_wrapped_container(), wrapped)
        out, err = server.get_logs()
    answers = tuple(serve.Answer(int(s), str(b)) for s, b in found.get("answers", []))
    return RunResult(0 if found.get("ready") else 1, out.decode("utf-8", "replace"),
                     err.decode("utf-8", "replace"), float(found.get("ms", 0.0)), answers)


def _prober_answer(prober: Any, server: Any) -> dict[str, Any]:
    """The prober's JSON, once it exits; it is stopped early when the server dies."""
    deadline = time.monotonic() + defaults.READY_TIMEOUT + 30
    while time.monotonic() < deadline:
        prober.reload()
        if prober.status == "exited":
            break
        server.reload()
        if server.status != "running":
            prober.kill()
            return {}
        time.sleep(0.2)
    lines = prober.logs(stderr=False).decode("utf-8", "replace").splitlines()
    try:
        found: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    except ValueError:
        return {}
    return found


def _diff(expected: str, got: str) -> str:
    lines = difflib.unified_diff(expected.splitlines(), got.splitlines(), "builder", "final",
                                 lineterm="")
    return "\n".join(list(lines)[:40])


def _script_checks(builder: RunResult, final: RunResult) -> list[Check]:
    stderr = f"\nfinal stderr:\n{final.stderr[-1500:]}" if final.stderr else ""
    return [
        Check("exit status", builder.status == final.status,
              f"builder {builder.status}, final {final.status}{stderr}"),
        Check("stdout", builder.stdout == final.stdout,
              _diff(builder.stdout, final.stdout) + stderr),
    ]


def _server_checks(spec: AppSpec, builder: RunResult, final: RunResult) -> list[Check]:
    checks = [Check("server ready", final.status == 0 and builder.status == 0,
                    f"builder ready: {builder.status == 0}, final ready: {final.status == 0}"
                    f"\nfinal stderr:\n{final.stderr[-1500:]}")]
    for probe, b, f in zip(spec.probes, builder.answers, final.answers):
        checks.append(Check(probe.label(), b.same_as(f) and not serve.mismatch(probe, f),
                            f"builder {b.status} {b.body[:200]!r}, final {f.status} "
                            f"{f.body[:200]!r}"))
    return checks


def compare(eng: Engine, image: str, builder: str, spec: AppSpec,
            import_all: bool = False) -> Verdict:
    """Run the builder (its venv python in /src) and the final image; compare. With
    ``import_all``, also import every shipped top-level module in both (see ImportAll)."""
    command = [str(runtime.BUILDER_PYTHON), *spec.entry, *spec.checked_args]
    as_builder = {"entrypoint": command[:1], "command": command[1:],
                  "working_dir": str(runtime.BUILDER_SOURCE)}
    if spec.kind == "server":
        b = _run_server(eng, builder, spec, builder, **as_builder)
        f = _run_server(eng, image, spec, builder)
        checks = _server_checks(spec, b, f)
    else:
        b = _run_script(eng, builder, **as_builder)
        f = _run_script(eng, image)
        checks = _script_checks(b, f)
    imports = None
    if import_all:
        imports = import_all_modules(eng, image, builder)
        checks.append(imports.check())
    return Verdict(tuple(checks), b.ms, f.ms, imports)


def check_or_raise(eng: Engine, image: str, builder: str, spec: AppSpec,
                   report: Callable[[str], None], import_all: bool = False) -> Verdict:
    verdict = compare(eng, image, builder, spec, import_all)
    for check in verdict.checks:
        report(f"{'pass' if check.ok else 'FAIL'}: {check.name}")
    failed = [c for c in verdict.checks if not c.ok]
    if failed:
        details = "\n".join(f"{c.name}: {c.detail}" for c in failed)
        raise VerifyError(f"the image does not behave like its builder\n{details}",
                          "the farm misses something the app needs; see the details above")
    return verdict


# --- import-all ---------------------------------------------------------------------------
# Modules never imported by the check, because importing them has effects of its own
# (antigravity opens a browser, this and __hello__ print) or they are not meant to work in
# an image (GUI, IDE, test suite, installers); the farm's documented exclusions come on top.
IMPORT_ALL_SKIPPED = ("__main__", "__hello__", "__phello__", "antigravity", "this", "idlelib",
                      "tkinter", "turtle", "turtledemo", "ensurepip", "test", "lib2to3",
                      "pydoc_data")
# Until pyfarm_docker.builder.stdlib.EXCLUDED exists: the stdlib modules the farm leaves out.
_EXCLUDED_FALLBACK = ("idlelib", "tkinter", "turtle", "turtledemo", "ensurepip", "test",
                      "lib2to3", "pydoc_data")
_MAX_CRASHES = 10
_CRASHED = "crashed the interpreter"

# Runs in the image with its own python (``python -c SCRIPT REQUEST``): standard library
# only, Python 3.8 syntax. REQUEST is JSON: ``names`` to import (or null: list the top-level
# modules of sys.path's entries, less '' and the working directory and ``skip_paths``, or of
# ``paths`` when given, plus the built-in modules when ``builtins``), less ``exclude``;
# ``known`` results are taken as they are (modules that crashed an earlier run). It writes
# one JSON line {"names": [...]} once it knows the list, then {"modules": {name: "ok" or
# "ErrorType: message"}}, to the stdout it started with; while importing, fds 1 and 2 go
# to /dev/null so that nothing a module prints (even from C) mixes with them. Before each
# import it writes "importing NAME" to the original stderr: after a crash, the last one
# names the module that crashed it.
IMPORT_ALL_SCRIPT = r"""
import contextlib, importlib, io, json, os, signal, sys, warnings
request = json.loads(sys.argv[1])
out, err = os.dup(1), os.dup(2)
def emit(doc):
    os.write(out, (json.dumps(doc, sort_keys=True) + "\n").encode())
names = request.get("names")
if names is None:
    import pkgutil
    here = os.getcwd()
    skip = set(os.path.abspath(p) for p in [here] + list(request.get("skip_paths", [])))
    paths = request.get("paths")
    if paths is None:
        paths = [p for p in sys.path if p not in ("", ".") and os.path.abspath(p) not in skip]
    found = set(sys.builtin_module_names) if request.get("builtins", True) else set()
    found.update(m.name for m in pkgutil.iter_modules(paths))
    names = sorted(found - set(request.get("exclude", [])))
    emit({"names": names})
limit = int(request.get("timeout", 60))
def too_long(signum, frame):
    raise TimeoutError("import took more than %d s" % limit)
signal.signal(signal.SIGALRM, too_long)
warnings.simplefilter("ignore")
results = dict(request.get("known", {}))
null = os.open(os.devnull, os.O_WRONLY)
os.dup2(null, 1)
os.dup2(null, 2)
sink = io.StringIO()
for name in names:
    if name in results:
        continue
    os.write(err, ("importing %s\n" % name).encode())
    signal.alarm(limit)
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            importlib.import_module(name)
        results[name] = "ok"
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        message = " ".join(str(exc).split())[:300]
        results[name] = type(exc).__name__ + (": " + message if message else "")
    finally:
        signal.alarm(0)
    sink.seek(0)
    sink.truncate()
emit({"modules": results})
os._exit(0)
"""
# Runs the interpreter with these arguments (after the python) in some container.
Runner = Callable[[Sequence[str]], RunResult]


@dataclass(frozen=True)
class ImportAll:
    """Every top-level module shipped in the final image, imported there and in the builder:
    module -> "ok" or "ErrorType: message"."""

    final: Mapping[str, str]
    builder: Mapping[str, str]

    @property
    def broken(self) -> dict[str, str]:
        """Modules that import in the builder but not in the image, with the image's error."""
        return {name: result for name, result in sorted(self.final.items())
                if result != "ok" and self.builder.get(name) == "ok"}

    def check(self) -> Check:
        broken = self.broken
        ok = sum(1 for r in self.final.values() if r == "ok")
        if not broken:
            both = sorted(n for n, r in self.final.items() if r != "ok")
            also = f"; {len(both)} fail in the builder too: {', '.join(both)}" if both else ""
            return Check("import-all", True,
                         f"{ok} of {len(self.final)} modules import in both{also}")
        lines = [f"  {name}: {error}" for name, error in list(broken.items())[:40]]
        more = [f"  ... and {len(broken) - 40} more"] if len(broken) > 40 else []
        return Check("import-all", False,
                     f"{len(broken)} of {len(self.final)} modules import in the builder but "
                     f"not in the image: {', '.join(broken)}\n" + "\n".join(lines + more))


def import_all_excluded() -> tuple[str, ...]:
    """What the check never imports: the farm's documented exclusions and IMPORT_ALL_SKIPPED."""
    try:
        excluded = tuple(importlib.import_module("pyfarm_docker.builder.stdlib").EXCLUDED)
    except (ImportError, AttributeError):
        excluded = _EXCLUDED_FALLBACK
    return tuple(sorted({*excluded, *IMPORT_ALL_SKIPPED}))


def import_modules(run: Runner, names: Sequence[str] | None = None,
                   **request: Any) -> dict[str, str]:
    """Run IMPORT_ALL_SCRIPT through ``run`` (see its comment for ``request``): import
    ``names``, or list the interpreter's modules and import them. A module that crashes the
    interpreter is recorded as such and the run starts again without it."""
    listed = list(names) if names is not None else None
    known: dict[str, str] = {}
    for _ in range(_MAX_CRASHES + 1):
        result = run(["-c", IMPORT_ALL_SCRIPT,
                      json.dumps({**request, "names": listed, "known": known})])
        for doc in _json_lines(result.stdout):
            if "modules" in doc:
                return {str(k): str(v) for k, v in doc["modules"].items()}
            if "names" in doc:
                listed = [str(n) for n in doc["names"]]
        started = [line[len("importing "):] for line in result.stderr.splitlines()
                   if line.startswith("importing ")]
        if listed is None or not started or started[-1] in known:
            raise VerifyError(f"the import-all check did not run (exit status {result.status})"
                              f"\n{result.stderr[-1500:]}")
        known[started[-1]] = f"{_CRASHED} (exit status {result.status})"
    raise VerifyError(f"the import-all check crashed {_MAX_CRASHES} times: {', '.join(known)}")


def _json_lines(text: str) -> list[dict[str, Any]]:
    docs = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            doc = json.loads(line)
            if isinstance(doc, dict):
                docs.append(doc)
    return docs


def farm_runtime(client: Any, image: str) -> runtime.Runtime:
    """The runtime contract of an image built here: its prefix, from the manifest label."""
    manifest = PurePosixPath(image_label(client, image, runtime.LABEL_MANIFEST))
    contract = runtime.Runtime(manifest.parent.parent)
    if contract.manifest != manifest:
        raise VerifyError(f"{image}: unexpected manifest label {manifest}")
    return contract


def import_all_modules(eng: Engine, image: str, builder: str) -> ImportAll:
    """List the top-level modules on the image's sys.path (the stdlib, the site-packages
    dirs and the built-in modules, not the app's own directory), import each there, and the
    same list in the builder (its venv python, in /src)."""
    contract = farm_runtime(eng.client, image)

    def in_image(args: Sequence[str]) -> RunResult:
        # Not read-only: the app's own run may write (/tmp, caches), and so may an import.
        return _run_script(eng, image, entrypoint=[str(contract.python)], command=list(args))

    def in_builder(args: Sequence[str]) -> RunResult:
        return _run_script(eng, builder, entrypoint=[str(runtime.BUILDER_PYTHON)],
                           command=list(args), working_dir=str(runtime.BUILDER_SOURCE))

    final = import_modules(in_image, exclude=list(import_all_excluded()),
                           skip_paths=[str(contract.app_dir)])
    return ImportAll(final, import_modules(in_builder, sorted(final)))
