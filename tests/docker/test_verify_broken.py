"""verify catches a broken image: the numpy farm with its OpenBLAS removed."""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

import pytest

from pyfarm_docker import cli
from pyfarm_docker.driver import verify
from pyfarm_docker.driver.engine import Engine
from pyfarm_docker.errors import VerifyError
from tests.support.baseimages import DEBIAN
from tests.support.cases import build_case
from tests.support.leftovers import Own
from tests.support.paths import corpus_case

pytestmark = pytest.mark.docker


def _without(client: Any, image: str, drop: str, reference: str) -> str:
    """``image`` re-imported without the files whose path contains ``drop``."""
    container = client.containers.create(image)
    try:
        exported = b"".join(container.export())
    finally:
        container.remove(force=True)
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(exported)) as source, \
            tarfile.open(fileobj=out, mode="w") as target:
        for member in source.getmembers():
            if drop not in member.name:
                target.addfile(member, source.extractfile(member) if member.isfile() else None)
    config = client.images.get(image).attrs["Config"]
    changes = [f"ENTRYPOINT {json.dumps(config['Entrypoint'])}", f"USER {config['User']}",
               f"WORKDIR {config['WorkingDir']}",
               *(f"ENV {e}" for e in config["Env"]),
               *(f"LABEL {k}={json.dumps(v)}" for k, v in config["Labels"].items())]
    repo, tag = reference.split(":")
    client.api.import_image_from_data(out.getvalue(), repository=repo, tag=tag,
                                      changes=changes)
    return reference


def test_verify_names_the_missing_library(client: Any, base_images: list[str], own: Own,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    built = build_case(corpus_case("numpy_linalg"), DEBIAN)
    assert built.builder_tag is not None
    broken = _without(client, built.tag, "reals/r/libscipy_openblas",
                      f"pyfarm-test/{own.marker()}:broken")
    try:
        with pytest.raises(VerifyError, match="libscipy_openblas"):
            spec = verify.spec_from_image(client, broken)
            verify.check_or_raise(Engine("docker", client), broken, built.builder_tag, spec,
                                  lambda _: None)
        assert cli.main(["verify", broken, "--like", built.builder_tag]) == VerifyError.exit_code
        err = capsys.readouterr().err
        assert "FAIL: stdout" in err and "libscipy_openblas" in err
    finally:
        client.images.remove(broken, force=True)


def test_verify_passes_for_the_real_image(base_images: list[str], own: Own,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    built = build_case(corpus_case("numpy_linalg"), DEBIAN)
    assert built.builder_tag is not None
    assert cli.main(["verify", built.tag, "--like", built.builder_tag]) == 0
    assert "behaves like" in capsys.readouterr().err
    # verify's containers (testcontainers labels them with this session) are all gone.
    assert own.containers() == []


