"""Push to real registries (scripts/registry-up: open on 127.0.0.1:5000, basic auth on
:5001): the image goes up without the daemon, its SBOM and provenance are found from its
digest as a scanner finds them, and after the local image is deleted it pulls back
through the engine and runs. A refusing registry is a one-line error, exit 8."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from pyfarm_docker import cli
from pyfarm_docker.driver import attest, oci, registry
from pyfarm_docker.driver.imagebuild import BuildResult, build_image
from pyfarm_docker.errors import RegistryError, VerifyError
from pyfarm_docker.runtime import BUILDER_TRACE
from tests.support import registries, spdx
from tests.support.baseimages import DEBIAN
from tests.support.cases import build_options
from tests.support.leftovers import Own
from tests.support.paths import corpus_case

pytestmark = pytest.mark.docker
DOCKER = "/usr/bin/docker"


@pytest.fixture(scope="module")
def registries_up() -> None:
    registries.up()


@pytest.fixture
def forget() -> Iterator[list[registry.Client]]:
    """Repositories the test pushed to, emptied afterwards."""
    made: list[registry.Client] = []
    yield made
    for api in made:
        registries.forget(api)


def _build(tag: str, **options: Any) -> BuildResult:
    built = build_options(corpus_case("stdlib_tour"), tag, DEBIAN, network="none",
                          engine="docker", **options)
    return build_image(built, report=lambda _: None)


def _pull_and_run(reference: str, config: Path | None = None) -> str:
    flags = ["--config", str(config)] if config else []
    for argv in ([DOCKER, *flags, "pull", "-q", reference],
                 [DOCKER, "run", "--rm", "--network", "none", reference]):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _check_attachments(api: registry.Client, digest: str, client: Any, builder: str,
                       tmp_path: Path) -> None:
    found = registries.artifacts(api, digest)
    assert set(found) == {attest.SBOM_TYPE, attest.INTOTO_TYPE}
    sbom = registries.blob(api, found[attest.SBOM_TYPE]["layers"][0]["digest"])
    assert spdx.problems(sbom, tmp_path) == ""
    assert "pkg:generic/python@3.11" in sbom.decode()
    statement = json.loads(registries.blob(api, found[attest.INTOTO_TYPE]["layers"][0]
                                           ["digest"]))
    assert statement["_type"] == attest.STATEMENT_TYPE
    assert statement["predicateType"] == attest.SLSA_PROVENANCE
    assert statement["subject"][0]["digest"]["sha256"] == digest.split(":")[1]
    predicate = statement["predicate"]
    base, *inputs = predicate["buildDefinition"]["resolvedDependencies"]
    assert base["uri"] == f"docker-image://{DEBIAN}"
    assert f"sha256:{base['digest']['sha256']}" == client.images.get(DEBIAN).id
    names = {i["name"] for i in inputs}
    assert {"context/app.py", "context/requirements.txt", "context/.pyfarm/Dockerfile"} <= names
    app = (corpus_case("stdlib_tour") / "app.py").read_bytes()
    assert {"name": "context/app.py", "digest": {"sha256": hashlib.sha256(app).hexdigest()}
            } in inputs
    trace = subprocess.run([DOCKER, "run", "--rm", "--network", "none", "--entrypoint", "cat",
                            builder, str(BUILDER_TRACE)], capture_output=True, check=True)
    byproducts = {b["name"]: b for b in predicate["runDetails"]["byproducts"]}
    assert byproducts["trace.json"]["digest"]["sha256"] == hashlib.sha256(
        trace.stdout).hexdigest()
    assert predicate["runDetails"]["builder"]["version"]["pyfarm-docker"]


def test_build_push_pull_back_and_run(tmp_path: Path, client: Any, base_images: list[str],
                                      registries_up: None, own: Own,
                                      forget: list[registry.Client]) -> None:
    """build --verify --push to the open registry: pushed once verified, attestations
    found from the digest, pulled back by the engine after the local image is gone."""
    tag = f"{registries.OPEN}/pyfarm-test/{own.marker()}:1"
    api = registries.client(tag)
    forget.append(api)
    built = _build(tag, verify=True, push=True)
    assert built.pushed is not None
    digest = built.pushed.digest
    assert digest == oci.image_descriptor(oci.Layout("oci", _export(client, tag, tmp_path)))[
        "digest"]
    _check_attachments(api, digest, client, f"{tag}-builder", tmp_path)
    client.images.remove(tag)
    assert '"sqlite": [1, 42]' in _pull_and_run(tag)
    assert client.images.get(tag).id == built.image_id  # the same image came back


def _export(client: Any, tag: str, tmp_path: Path) -> Path:
    layout = tmp_path / "layout"
    oci.write(client, tag, tag, oci.Layout("oci", layout))
    return layout


def test_push_command_with_login_and_a_wrong_password(
        tmp_path: Path, client: Any, base_images: list[str], registries_up: None, own: Own,
        forget: list[registry.Client], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """push IMAGE REF to the auth registry with REGISTRY_AUTH_FILE; a wrong password is a
    one-line error with exit 8 and nothing is pushed."""
    local = f"pyfarm-test/{own.marker()}:1"
    built = _build(local)
    dest = f"{registries.AUTH}/pyfarm-test/{own.marker()}:1"
    api = registries.client(dest, registries.PASSWORD)
    forget.append(api)

    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(registries.auth_file(tmp_path / "bad.json",
                                                                      "wrong")))
    assert cli.main(["push", local, dest]) == RegistryError.exit_code
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "unauthorized" in errors[0], err
    assert "Traceback" not in err and out == ""
    assert api.get_manifest("1") is None

    config = tmp_path / "docker-config"
    config.mkdir()
    good = registries.auth_file(config / "config.json")
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(good))
    assert cli.main(["push", local, dest]) == 0
    out, err = capsys.readouterr()
    reference = out.strip()
    assert reference.startswith(f"{registries.AUTH}/pyfarm-test/") and "@sha256:" in reference
    digest = reference.split("@", 1)[1]
    found = registries.artifacts(api, digest)
    assert set(found) == {attest.SBOM_TYPE}  # no provenance without a build
    sbom = registries.blob(api, found[attest.SBOM_TYPE]["layers"][0]["digest"])
    assert spdx.problems(sbom, tmp_path) == ""

    client.images.remove(local)
    assert '"sqlite": [1, 42]' in _pull_and_run(dest, config)
    assert client.images.get(dest).id == built.image_id


def test_push_a_layout_with_its_provenance(tmp_path: Path, client: Any,
                                           base_images: list[str], registries_up: None,
                                           own: Own, forget: list[registry.Client],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """build --output tar:FILE --provenance FILE, then push tar:FILE REF --provenance FILE:
    the statement names the digest the registry stores; another image's is refused."""
    tag = f"{registries.OPEN}/pyfarm-test/{own.marker()}:1"
    archive, statement = tmp_path / "image.tar", tmp_path / "provenance.json"
    _build(tag, output=oci.Layout("tar", archive), provenance=statement)
    expected = oci.image_descriptor(oci.Layout("tar", archive))["digest"]
    assert attest.subject_digest(json.loads(statement.read_text())) == expected
    api = registries.client(tag)
    forget.append(api)

    wrong = tmp_path / "wrong.json"
    wrong.write_text(statement.read_text().replace(expected.split(":")[1], "0" * 64))
    assert cli.main(["push", f"tar:{archive}", tag, "--provenance", str(wrong)]) == 2
    assert api.get_manifest("1") is None
    capsys.readouterr()

    assert cli.main(["push", f"tar:{archive}", tag, "--provenance", str(statement)]) == 0
    assert capsys.readouterr().out.strip() == f"{tag.rsplit(':', 1)[0]}@{expected}"
    found = registries.artifacts(api, expected)
    assert set(found) == {attest.SBOM_TYPE, attest.INTOTO_TYPE}


def test_nothing_is_pushed_when_verify_fails(client: Any, base_images: list[str],
                                             registries_up: None, own: Own,
                                             forget: list[registry.Client]) -> None:
    """An app whose output differs on each run fails --verify: no tag, no push."""
    project = own.project("import uuid\nprint(uuid.uuid4())\n")
    tag = f"{registries.OPEN}/{project.tag}"
    api = registries.client(tag)
    forget.append(api)
    options = build_options(project.path, tag, DEBIAN, network="none", engine="docker",
                            verify=True, push=True)
    with pytest.raises(VerifyError):
        build_image(options, report=lambda _: None)
    assert api.get_manifest("1") is None
    assert own.tags() == []
