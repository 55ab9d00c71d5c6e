"""Run a corpus case normally and from its farm, the same way, and collect what it did."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from pyfarm_docker import serve
from pyfarm_docker.documents.spec import AppSpec


@dataclass(frozen=True)
class Outcome:
    """What a run showed: exit status and stdout, or the answers of a server."""

    status: int
    stdout: str
    stderr: str
    answers: tuple[tuple[int, str], ...] = ()


def copy_app(case_dir: Path, dest: Path) -> Path:
    shutil.copytree(case_dir, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def run_script(argv: Sequence[str], cwd: Path) -> Outcome:
    done = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=300,
                          check=False)
    return Outcome(done.returncode, done.stdout, done.stderr)


def run_server(argv: Sequence[str], spec: AppSpec, cwd: Path | None = None) -> Outcome:
    """Start, wait for the port, probe, stop: the answers are the outcome."""
    assert spec.port is not None
    started = time.monotonic()
    proc = subprocess.Popen(list(argv), cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        served = serve.probe_server(spec.port, spec.probes, lambda: proc.poll() is None,
                                    started)
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have exited already
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            # unshare --fork ignores SIGTERM, and a PID 1 ignores it without a handler;
            # the whole group goes, since setuid cleared unshare's --kill-child.
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate(timeout=30)
    answers = tuple((a.status, a.body) for a in served.answers)
    return Outcome(0 if served.ready else 1, out, err, answers)


def comparable(outcome: Outcome) -> tuple[int, str, tuple[tuple[int, str], ...]]:
    """JSON answers compare as JSON, like verify does."""
    answers = tuple((s, json.dumps(_maybe_json(b), sort_keys=True)) for s, b in outcome.answers)
    return outcome.status, outcome.stdout, answers


def _maybe_json(body: str) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return body
