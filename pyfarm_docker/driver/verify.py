"""Show that a packed image behaves like its builder: run both the same way with
testcontainers and compare output and exit status, or the answers to HTTP probes."""

from __future__ import annotations

import contextlib
import difflib
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .. import runtime, serve
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


def _run_server(eng: Engine, image: str, spec: AppSpec, **kwargs: Any) -> RunResult:
    assert spec.port is not None
    if serve.port_in_use(spec.port):
        raise VerifyError(f"127.0.0.1:{spec.port} is busy before the server started",
                          "stop whatever listens there")
    started = time.monotonic()
    with _container(eng, image, "host", **kwargs) as c:
        wrapped = c.get_wrapped_container()

        def alive() -> bool:
            wrapped.reload()
            return bool(wrapped.status in ("created", "running"))

        served = serve.probe_server(spec.port, spec.probes, alive, started)
        out, err = c.get_logs()
    return RunResult(0 if served.ready else 1, out.decode("utf-8", "replace"),
                     err.decode("utf-8", "replace"), served.ready_ms, served.answers)


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


def compare(eng: Engine, image: str, builder: str, spec: AppSpec) -> Verdict:
    """Run the builder (its venv python in /src) and the final image; compare."""
    command = [str(runtime.BUILDER_PYTHON), *spec.entry, *spec.checked_args]
    as_builder = {"entrypoint": command[:1], "command": command[1:],
                  "working_dir": str(runtime.BUILDER_SOURCE)}
    if spec.kind == "server":
        b = _run_server(eng, builder, spec, **as_builder)
        f = _run_server(eng, image, spec)
        checks = _server_checks(spec, b, f)
    else:
        b = _run_script(eng, builder, **as_builder)
        f = _run_script(eng, image)
        checks = _script_checks(b, f)
    return Verdict(tuple(checks), b.ms, f.ms)


def check_or_raise(eng: Engine, image: str, builder: str, spec: AppSpec,
                   report: Callable[[str], None]) -> Verdict:
    verdict = compare(eng, image, builder, spec)
    for check in verdict.checks:
        report(f"{'pass' if check.ok else 'FAIL'}: {check.name}")
    failed = [c for c in verdict.checks if not c.ok]
    if failed:
        details = "\n".join(f"{c.name}: {c.detail}" for c in failed)
        raise VerifyError(f"the image does not behave like its builder\n{details}",
                          "the farm misses something the app needs; see the details above")
    return verdict
