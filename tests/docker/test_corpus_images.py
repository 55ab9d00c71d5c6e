"""Every corpus case, built into a FROM-scratch image offline and verified against its
builder with testcontainers; two cases also on the /usr/local and 3.13 bases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pyfarm_docker.driver.imagebuild import BuildResult, build_image
from tests.support.cases import build_options
from tests.support.paths import corpus_cases

pytestmark = pytest.mark.docker

DEBIAN = "local/python:3.11-bookworm"
OTHER_BASES = ["local/python:3.12-slim", "local/python:3.13-trixie"]
CASES = corpus_cases()


def build_case(case: Path, base: str, engine: str = "docker") -> BuildResult:
    suffix = "" if engine == "docker" else f"-{engine}"
    tag = f"pyfarm-test/{case.name.replace('_', '-')}:{base.split(':')[1]}{suffix}"
    options = build_options(case, tag, base, verify=True, network="none", engine=engine)
    return build_image(options, report=lambda _: None)


def _assert_packed(result: BuildResult, client: Any) -> None:
    assert result.verdict is not None and result.verdict.ok
    assert result.builder_bytes is not None
    assert result.final_bytes < result.builder_bytes
    config = client.images.get(result.tag).attrs["Config"]
    assert config["User"] == "65532:65532"
    assert client.images.get(result.tag).attrs["RootFS"]["Type"] == "layers"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_image_behaves_like_its_builder(case: Path, client: Any,
                                             base_images: list[str]) -> None:
    _assert_packed(build_case(case, DEBIAN), client)


@pytest.mark.parametrize("base", OTHER_BASES)
@pytest.mark.parametrize("name", ["stdlib_tour", "numpy_linalg"])
def test_other_bases(name: str, base: str, client: Any, base_images: list[str]) -> None:
    (case,) = [c for c in CASES if c.name == name]
    _assert_packed(build_case(case, base), client)
