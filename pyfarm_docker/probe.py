"""HTTP probes: what a server must answer, sent to 127.0.0.1 only."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .errors import UsageError


@dataclass(frozen=True)
class Probe:
    """One request and, optionally, what must come back."""

    method: str
    path: str
    body_json: Any = None
    expect_status: int | None = None
    expect_body: str | None = None
    expect_json: Any = None

    @classmethod
    def parse(cls, spec: str) -> Probe:
        """``'GET /health'``, ``'GET /missing 404'`` or ``'POST /sum 200 {"numbers": [1]}'``:
        method, path, optional expected status, optional JSON body."""
        parts = spec.strip().split(None, 2)
        if len(parts) < 2 or not parts[1].startswith("/"):
            raise UsageError(f"bad probe {spec!r}",
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
                raise UsageError(f"probe {spec!r} has a body that is not JSON: {exc}") from exc
        return cls(parts[0].upper(), parts[1], body, status)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Probe:
        """The corpus ``case.json`` form: method, path, json, expect_*."""
        try:
            return cls(
                str(data.get("method", "GET")).upper(),
                str(data["path"]),
                data.get("json", None),
                data.get("expect_status"),
                data.get("expect_body"),
                data.get("expect_json", None),
            )
        except KeyError as exc:
            raise UsageError(f"probe {dict(data)!r} has no 'path'") from exc

    def label(self) -> str:
        return f"{self.method} {self.path}"


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


def mismatch(probe: Probe, answer: Answer) -> str:
    """Why ``answer`` does not meet the probe's expectations ('' when it does)."""
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
