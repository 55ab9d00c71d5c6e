"""Verify runs a server image on its own loopback only: the probes come from a container
joined to its network namespace, so a host service on the same port neither disturbs the
check nor ever sees a probe."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from pyfarm_docker.driver.imagebuild import build_image
from tests.support.baseimages import DEBIAN
from tests.support.cases import build_options

pytestmark = pytest.mark.docker
PORT = 18093

APP = """import http.server, json

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"who": "image", "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
""".replace("PORT", str(PORT))


@pytest.fixture
def host_service() -> Iterator[list[str]]:
    """Something else on the host's 127.0.0.1:PORT, recording every request it gets."""
    seen: list[str] = []

    class Host(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", PORT), Host)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield seen
    server.shutdown()
    server.server_close()


def test_a_server_is_verified_on_its_own_loopback(tmp_path: Path, client: Any,
                                                  base_images: list[str],
                                                  host_service: list[str]) -> None:
    marker = f"isolated-{uuid.uuid4().hex[:8]}"
    project = tmp_path / marker
    project.mkdir()
    (project / "app.py").write_text(APP)
    (project / "case.json").write_text(json.dumps(
        {"port": PORT, "probes": [{"path": "/health", "expect_json":
                                   {"who": "image", "path": "/health"}}]}))
    tag = f"pyfarm-test/{marker}:1"
    try:
        result = build_image(build_options(project, tag, DEBIAN, verify=True,
                                           network="none"), report=lambda _: None)
        assert result.verdict is not None and result.verdict.ok
        assert [c.name for c in result.verdict.checks] == ["server ready", "GET /health"]
        assert host_service == []  # no probe reached the host's port
    finally:
        for name in (tag, f"{tag}-builder"):
            if client.images.list(name=name):
                client.images.remove(name, force=True)
