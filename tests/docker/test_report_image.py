"""report reads the manifest straight from an image built by pyfarm-docker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pyfarm_docker import cli
from tests.support.baseimages import DEBIAN
from tests.support.cases import build_case
from tests.support.paths import corpus_case

pytestmark = pytest.mark.docker


def test_report_of_an_image(client: Any, base_images: list[str],
                            capsys: pytest.CaptureFixture[str]) -> None:
    built = build_case(corpus_case("pillow_image"), DEBIAN)
    assert cli.main(["report", built.tag, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    origins = {g["origin"] for g in summary["by_origin"]}
    assert "dist:pillow" in origins
    # The farm is what the image holds: its bytes are most of the image.
    assert 0.8 * built.final_bytes < summary["total_bytes"] <= built.final_bytes


def test_report_of_something_else(capsys: pytest.CaptureFixture[str], client: Any,
                                  base_images: list[str]) -> None:
    assert cli.main(["report", DEBIAN]) == 2
    assert "has no io.pyfarm-docker.manifest label" in capsys.readouterr().err


def test_build_writes_the_sbom(tmp_path: Path, client: Any, base_images: list[str]) -> None:
    sbom = tmp_path / "sbom.json"
    case = corpus_case("lxml_xpath")
    assert cli.main(["build", str(case), "-t", "pyfarm-test/sbom:1", "--base", DEBIAN,
                     "--network", "none", "--sbom", str(sbom)]) == 0
    document = json.loads(sbom.read_text())
    names = {p["name"] for p in document["packages"]}
    assert {"lxml", "libc6"} <= names
