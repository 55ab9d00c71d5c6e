"""Pushing, offline: references, where credentials come from (auth files, credential
helpers), which failures are retried and how, skopeo's messages as one line, and the
artifact manifests that attach an SBOM or a provenance statement to an image."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from pyfarm_docker import cli
from pyfarm_docker.driver import attest, oci, registry
from pyfarm_docker.errors import RegistryError, UsageError


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:5000/app:1", ("127.0.0.1:5000", "app", "1")),
    ("localhost/team/app", ("localhost", "team/app", "latest")),
    ("ghcr.io/org/app:v2", ("ghcr.io", "org/app", "v2")),
    ("app:1", ("docker.io", "library/app", "1")),
    ("org/app", ("docker.io", "org/app", "latest")),
])
def test_reference(text: str, expected: tuple[str, str, str]) -> None:
    ref = registry.Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag) == expected


def test_a_reference_with_a_digest_or_capitals_is_refused() -> None:
    for text in ("127.0.0.1:5000/App:1", "app@sha256:" + "0" * 64, "app:1\n"):
        with pytest.raises(UsageError):
            registry.Reference.parse(text)


def test_loopback_registries_are_insecure_by_default() -> None:
    assert registry.loopback("127.0.0.1:5000")
    assert registry.loopback("127.1.2.3")
    assert registry.loopback("localhost:5000")
    assert not registry.loopback("10.0.0.1:5000")
    assert not registry.loopback("registry.example.org")


def _auth(entries: dict[str, object]) -> str:
    return json.dumps(entries)


def _pair(user: str, secret: str) -> str:
    return base64.b64encode(f"{user}:{secret}".encode()).decode()


def test_credentials_come_from_registry_auth_file_then_docker_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(_auth({"auths": {
        "https://registry.example.org/v1/": {"auth": _pair("docker", "d")},
        "127.0.0.1:5001": {"auth": _pair("docker", "x")}}}))
    authfile = tmp_path / "auth.json"
    authfile.write_text(_auth({"auths": {"127.0.0.1:5001": {"auth": _pair("podman", "p:q")}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(authfile))
    found = registry.credentials("127.0.0.1:5001")
    assert found is not None
    assert (found.username, found.secret, found.source) == ("podman", "p:q", str(authfile))
    assert "p:q" not in repr(found)  # a secret never reaches a message or a log
    other = registry.credentials("registry.example.org")
    assert other is not None and other.username == "docker"
    assert registry.credentials("127.0.0.1:5000") is None
    monkeypatch.delenv("REGISTRY_AUTH_FILE")
    monkeypatch.delenv("DOCKER_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert registry.auth_files() == [tmp_path / ".docker" / "config.json"]


def _helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, body: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    helper = bin_dir / f"docker-credential-{name}"
    helper.write_text(f"#!/bin/sh\n{body}\n")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_credential_helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _helper(tmp_path, monkeypatch, "fake",
            'read server; echo "{\\"ServerURL\\": \\"$server\\", \\"Username\\": '
            '\\"helped\\", \\"Secret\\": \\"s3cret-$server\\"}"')
    _helper(tmp_path, monkeypatch, "empty",
            "echo 'credentials not found in native keychain'; exit 1")
    config = tmp_path / "config.json"
    config.write_text(_auth({"credHelpers": {"127.0.0.1:5001": "fake"},
                             "credsStore": "empty", "auths": {"127.0.0.1:5002": {}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(config))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "none"))
    found = registry.credentials("127.0.0.1:5001")
    assert found is not None
    assert (found.username, found.secret) == ("helped", "s3cret-127.0.0.1:5001")
    assert found.source == "docker-credential-fake"
    assert registry.credentials("127.0.0.1:5002") is None  # the store has none for it
    config.write_text(_auth({"credsStore": "missing-helper"}))
    with pytest.raises(UsageError, match="docker-credential-missing-helper"):
        registry.credentials("127.0.0.1:5002")


def test_a_broken_auth_file_is_a_usage_error(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.json"
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(config))
    for text in ("{", '{"auths": {"h:1": {"auth": "not base64!"}}}', "[]"):
        config.write_text(text)
        with pytest.raises(UsageError, match=str(config)):
            registry.credentials("h:1")


def test_skopeo_gets_a_private_auth_file(tmp_path: Path) -> None:
    creds = registry.Credentials("u", "p")
    with registry.skopeo_auth_file("h:1", creds) as path:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert json.loads(path.read_text()) == {"auths": {"h:1": {"auth": _pair("u", "p")}}}
    assert not path.exists()


def test_transient_failures_are_retried_with_backoff() -> None:
    waits: list[float] = []
    said: list[str] = []
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise registry.Transient("connection refused")
        return "done"

    retry = registry.Retry(attempts=4, delay=0.5)
    assert registry.retrying(flaky, retry, "pushing x", said.append, waits.append) == "done"
    assert waits == [0.5, 1.0] and len(said) == 2

    def down() -> str:
        raise registry.Transient("dial tcp 127.0.0.1:5009: connect: connection refused")

    with pytest.raises(RegistryError, match="failed 4 times"):
        registry.retrying(down, retry, "pushing x", said.append, waits.append)
    assert waits[2:] == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(("message", "expected"), [
    ("dial tcp 127.0.0.1:5000: connect: connection refused", True),
    ("received unexpected HTTP status: 503 Service Unavailable", True),
    ("toomanyrequests: rate limit", True),
    ("unauthorized: authentication required", False),
    ("denied: requested access to the resource is denied", False),
    ("manifest invalid: manifest invalid", False),
])
def test_which_failures_are_transient(message: str, expected: bool) -> None:
    assert registry.transient(message) is expected


def test_skopeo_message_is_its_cause_on_one_line() -> None:
    stderr = ('Getting image source signatures\ntime="2026-11-27T16:46:42Z" level=fatal '
              'msg="trying to reuse blob sha256:2f at destination: checking whether a blob '
              'exists in 127.0.0.1:5001/app: unauthorized: authentication required"\n')
    message = registry._skopeo_message(stderr)
    assert message == "unauthorized: authentication required"
    error = registry.refused(registry.Reference.parse("127.0.0.1:5001/app:1"),
                             "the push", message + "\nsecond line", None)
    assert "\n" not in error.message and error.exit_code == 8
    assert "docker login 127.0.0.1:5001" in error.hint


def test_artifact_manifest_refers_to_the_image() -> None:
    subject: dict[str, object] = {"mediaType": oci.MANIFEST,
                                  "digest": "sha256:" + "a" * 64, "size": 874}
    config = {"mediaType": registry.EMPTY, "digest": "sha256:" + "4" * 64, "size": 2}
    layer = {"mediaType": attest.SBOM_TYPE, "digest": "sha256:" + "b" * 64, "size": 10}
    data = registry.artifact_manifest(attest.sbom_attachment(b"{}"), subject, config, layer,
                                      "1970-01-01T00:00:00Z")
    manifest = json.loads(data)
    assert manifest["artifactType"] == attest.SBOM_TYPE
    assert manifest["subject"] == subject
    assert manifest["config"]["mediaType"] == registry.EMPTY
    assert manifest["layers"][0]["annotations"] == {
        "org.opencontainers.image.title": "sbom.spdx.json"}
    assert registry.fallback_tag("sha256:" + "a" * 64) == "sha256-" + "a" * 64


def test_provenance_statement() -> None:
    predicate = attest.provenance(
        parameters={"tag": "a:1"}, base={"name": "base image", "digest": {"sha256": "1"}},
        inputs={"app.py": "2"}, trace=b"{}", builder_image="sha256:" + "3" * 64,
        engine_name="docker", engine_version="20.10", started=0, finished=1)
    statement = attest.statement("127.0.0.1:5000/a", "sha256:" + "f" * 64, predicate)
    assert statement["subject"] == [{"name": "127.0.0.1:5000/a", "digest": {"sha256": "f" * 64}}]
    assert attest.subject_digest(statement) == "sha256:" + "f" * 64
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert deps[1] == {"name": "context/app.py", "digest": {"sha256": "2"}}
    attachment = attest.provenance_attachment(statement)
    assert dict(attachment.annotations) == {attest.PREDICATE_ANNOTATION: attest.SLSA_PROVENANCE}


def test_context_digests_hash_files_and_links(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"x")
    (tmp_path / "link").symlink_to("d/f")
    digests = attest.context_digests(tmp_path)
    assert list(digests) == ["d/f", "link"]
    assert digests["d/f"] != digests["link"]


def test_push_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["push", f"oci:{tmp_path}/none", "Bad/Ref"]) == UsageError.exit_code
    assert "is not a valid image reference" in capsys.readouterr().err
    statement = tmp_path / "p.json"
    statement.write_text("{}")
    assert cli.main(["push", f"oci:{tmp_path}", "h:1/a:1", "--provenance",
                     str(statement)]) == UsageError.exit_code
    assert "is not an in-toto statement" in capsys.readouterr().err


def test_platforms_other_than_amd64_are_refused(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "app.py").write_text("print(1)\n")
    code = cli.main(["build", str(tmp_path / "app.py"), "-t", "a:1", "--platform",
                     "linux/arm64"])
    err = capsys.readouterr().err
    assert code == UsageError.exit_code
    assert err.splitlines()[0] == ("ERROR: --platform linux/arm64 is not supported: only "
                                   "linux/amd64 builds so far")
    assert "QEMU" in err
