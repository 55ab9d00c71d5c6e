"""Start a server, wait for its port, send the probes: one loop for the traced run, verify
and the tests. Standard library only (it runs in the builder stage too); requests go to
127.0.0.1 only."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .defaults import READY_TIMEOUT
from .documents.spec import Probe

NO_ANSWER = 0  # the status of an Answer when the server sent no HTTP response


@dataclass(frozen=True)
class Answer:
    """What a server answered to one probe."""

    status: int
    body: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def same_as(self, other: Answer) -> bool:
        """Equal status and body, comparing bodies as JSON when both are JSON."""
        if self.status != other.status:
            return False
        mine, theirs = self.json(), other.json()
        if mine is not None and theirs is not None:
            return bool(mine == theirs)
        return self.body == other.body


@dataclass(frozen=True)
class Served:
    """Whether the server came up (and how fast), and its answers in probe order."""

    ready: bool
    ready_ms: float
    answers: tuple[Answer, ...] = ()


def send(probe: Probe, port: int, timeout: float = 10.0) -> Answer:
    """Send one probe to 127.0.0.1:port; HTTP errors are answers too."""
    data = None
    headers = {}
    if probe.body_json is not None:
        data = json.dumps(probe.body_json).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{probe.path}", data=data, headers=headers, method=probe.method
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return Answer(response.status, response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read().decode("utf-8", "replace"))
    except (OSError, http.client.HTTPException) as exc:  # reset, refused, timed out, garbled
        return Answer(NO_ANSWER, f"no HTTP answer: {exc}")


def mismatch(probe: Probe, answer: Answer) -> str:
    """Why ``answer`` does not meet the probe's expectations ('' when it does)."""
    if answer.status == NO_ANSWER:
        return f"{probe.label()}: {answer.body}"
    if probe.expect_status is not None and answer.status != probe.expect_status:
        return f"{probe.label()}: status {answer.status}, expected {probe.expect_status}"
    if probe.expect_status is None and answer.status >= 400:
        return (f"{probe.label()}: status {answer.status}, expected success "
                f"(name the status in the probe if it is meant: '{probe.label()} 404')")
    if probe.expect_body is not None and answer.body != probe.expect_body:
        return f"{probe.label()}: body {answer.body[:200]!r}, expected {probe.expect_body!r}"
    if probe.expect_json is not None and answer.json() != probe.expect_json:
        return f"{probe.label()}: body {answer.body[:200]!r}, expected JSON {probe.expect_json!r}"
    return ""


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, deadline: float, alive: Callable[[], bool]) -> bool:
    """Poll 127.0.0.1:port until it accepts, the deadline passes or ``alive()`` is false."""
    while time.monotonic() < deadline and alive():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def probe_server(port: int, probes: Sequence[Probe], alive: Callable[[], bool],
                 started: float, ready_timeout: float = READY_TIMEOUT) -> Served:
    """Wait (from ``started``, a monotonic time) for a started server's port, then send
    every probe. ``alive()`` says whether the server still runs."""
    ready = wait_for_port(port, started + ready_timeout, alive)
    ready_ms = (time.monotonic() - started) * 1000
    if not ready:
        return Served(False, ready_ms)
    return Served(True, ready_ms, tuple(send(p, port) for p in probes))
