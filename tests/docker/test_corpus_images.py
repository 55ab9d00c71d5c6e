"""Every corpus case, built into a FROM-scratch image offline and verified against its
builder with testcontainers; two cases also on the /usr/local and 3.13 bases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pyfarm_docker.driver.imagebuild import BuildResult
from tests.support.baseimages import DEBIAN, OTHER_BASES
from tests.support.cases import build_case
from tests.support.paths import corpus_case, corpus_cases

pytestmark = pytest.mark.docker

CASES = corpus_cases()


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
    _assert_packed(build_case(corpus_case(name), base), client)
