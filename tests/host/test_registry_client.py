"""The distribution API client against a fake registry on loopback that wants a bearer
token (as Docker Hub, GHCR and Harbor do) and answers 503 now and then: tokens are
fetched with the basic credentials, transient failures retried, HTTP used when HTTPS
fails on an insecure registry, and the referrers tag schema's index kept without
duplicates. Registry 2.8 (the Docker tier) has only basic auth and no 503s."""

from __future__ import annotations

import base64
import http.server
import json
import threading
import uuid
from typing import Any, ClassVar, Iterator

import pytest

from pyfarm_docker.driver import oci, registry
from pyfarm_docker.errors import RegistryError

pytestmark = pytest.mark.host
TOKEN = "fake-token"


class _Registry(http.server.BaseHTTPRequestHandler):
    store: ClassVar[dict[str, tuple[str, bytes]]] = {}  # path -> (content type, body)
    failures: ClassVar[list[str]] = []  # paths that answered 503 once
    tokens_asked: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
              ) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {TOKEN}":
            return True
        realm = f"http://{self.headers['Host']}/token"
        self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token needed"}]}',
                   {"WWW-Authenticate": f'Bearer realm="{realm}",service="fake"'})
        return False

    def _route(self) -> None:
        path = self.path.split("?")[0]
        if path == "/token":
            self.tokens_asked.append(self.path)
            basic = "Basic " + base64.b64encode(b"user:right").decode()
            if self.headers.get("Authorization") != basic:
                return self._send(401)
            return self._send(200, json.dumps({"token": TOKEN}).encode())
        if not self._authorized():
            return None
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.command == "POST" and path.endswith("/blobs/uploads/"):
            if path not in self.failures:
                self.failures.append(path)
                return self._send(503)
            return self._send(202, headers={"Location": f"/upload/{uuid.uuid4().hex}"})
        if self.command == "PUT" and path.startswith("/upload/"):
            digest = self.path.split("digest=")[1].replace("%3A", ":")
            self.store[f"/v2/app/blobs/{digest}"] = ("application/octet-stream", body)
            return self._send(201)
        if self.command == "PUT" and "/manifests/" in path:
            self.store[path] = (self.headers["Content-Type"], body)
            return self._send(201)
        if self.command in ("GET", "HEAD") and path in self.store:
            kind, data = self.store[path]
            return self._send(200, data, {"Content-Type": kind})
        return self._send(404, b'{"errors":[{"code":"NOT_FOUND","message":"unknown"}]}')

    do_GET = do_HEAD = do_POST = do_PUT = _route


@pytest.fixture
def fake() -> Iterator[str]:
    _Registry.store, _Registry.failures, _Registry.tokens_asked = {}, [], []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _client(host: str, secret: str) -> registry.Client:
    return registry.Client(registry.Reference.parse(f"{host}/app:1"),
                           registry.Credentials("user", secret), True,
                           registry.Retry(3, 0.01), lambda _: None)


def test_bearer_token_retries_and_the_fallback_index(fake: str) -> None:
    api = _client(fake, "right")
    digest = "sha256:" + "a" * 64
    subject = {"mediaType": oci.MANIFEST, "digest": digest, "size": 1}
    sbom = registry.Attachment("application/spdx+json", b'{"spdxVersion": "SPDX-2.3"}',
                               "sbom.spdx.json")
    other = registry.Attachment("application/vnd.in-toto+json", b"{}", "p.json")
    first = registry.attach(api, subject, sbom, "1970-01-01T00:00:00Z")
    registry.attach(api, subject, other, "1970-01-01T00:00:00Z")
    assert registry.attach(api, subject, sbom, "1970-01-01T00:00:00Z") == first
    assert api.base == f"http://{fake}"  # HTTPS failed, the registry is insecure
    assert _Registry.failures == ["/v2/app/blobs/uploads/"]  # the 503, retried
    assert "scope=repository%3Aapp%3Apull%2Cpush" in _Registry.tokens_asked[0]
    index = json.loads(_Registry.store[f"/v2/app/manifests/sha256-{'a' * 64}"][1])
    assert [m["artifactType"] for m in index["manifests"]] == [
        "application/spdx+json", "application/vnd.in-toto+json"]
    assert [m["digest"] for m in api.referrers(digest)][:1] == [first]


def test_a_wrong_password_is_a_refusal(fake: str) -> None:
    api = _client(fake, "wrong")
    with pytest.raises(RegistryError, match="refused") as refused:
        api.put_blob(b"x", "application/octet-stream")
    assert "\n" not in refused.value.message and "401" in refused.value.message
