"""The two local registries scripts/registry-up starts (distribution 2.8, plain HTTP on
loopback), their test credentials, and reading back what a push left there."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

from pyfarm_docker.driver import registry

from .baseimages import SCRIPTS

OPEN = "127.0.0.1:5000"
AUTH = "127.0.0.1:5001"
USER = "pyfarm"  # scripts/registry-up's defaults
PASSWORD = "pyfarm-test-password"


def up() -> None:
    """Start both registries unless they answer (installs docker-registry when missing)."""
    done = subprocess.run([str(SCRIPTS / "registry-up")], capture_output=True, text=True,
                          timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]


def auth_file(path: Path, password: str = PASSWORD) -> Path:
    """A Docker config.json (also an auth file for skopeo and podman) with a login to the
    auth registry."""
    pair = base64.b64encode(f"{USER}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {AUTH: {"auth": pair}}}))
    return path


def client(reference: str, password: str | None = None) -> registry.Client:
    """The API of the reference's repository, logged in when a password is given."""
    ref = registry.Reference.parse(reference)
    creds = registry.Credentials(USER, password) if password is not None else None
    return registry.Client(ref, creds, True, registry.Retry(2, 0.1), lambda _: None)


def blob(api: registry.Client, digest: str) -> bytes:
    reply = api.request("GET", f"blobs/{digest}")
    assert reply.status == 200, reply.status
    return reply.body


def artifacts(api: registry.Client, digest: str) -> dict[str, dict[str, Any]]:
    """artifactType -> manifest of the artifacts that refer to ``digest``, found as a
    scanner finds them (the referrers API, else the referrers tag schema)."""
    found = {}
    for descriptor in api.referrers(digest):
        reply = api.get_manifest(descriptor["digest"])
        assert reply is not None
        manifest = json.loads(reply.body)
        assert manifest["subject"]["digest"] == digest
        found[manifest["artifactType"]] = manifest
    return found


def forget(api: registry.Client) -> None:
    """Delete every manifest of the repository (the registry's garbage collection would
    remove the blobs)."""
    reply = api.request("GET", "tags/list")
    tags = (json.loads(reply.body).get("tags") or []) if reply.status == 200 else []
    digests = set()
    for tag in tags:
        head = api.request("HEAD", f"manifests/{tag}", headers={"Accept": registry.ACCEPT})
        for key, value in head.headers.items():
            if key.lower() == "docker-content-digest":
                digests.add(value)
    for digest in sorted(digests):
        for referrer in api.referrers(digest):
            api.request("DELETE", f"manifests/{referrer['digest']}")
        api.request("DELETE", f"manifests/{digest}")
