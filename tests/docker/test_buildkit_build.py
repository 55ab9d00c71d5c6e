"""build --syntax buildkit: the build goes through the daemon's BuildKit (the docker
client, --progress=plain) with the same guarantees as the legacy builder: progress,
verify, tagging only on success, nothing left behind on failure; the same layers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from pyfarm_docker.driver.dockerfile import DockerfileOptions
from pyfarm_docker.driver.imagebuild import BuildOptions, build_image
from pyfarm_docker.errors import BuildError
from tests.support.baseimages import DEBIAN
from tests.support.cases import build_options, case_settings
from tests.support.interrupt import interrupt_while_tracing
from tests.support.leftovers import Own
from tests.support.paths import corpus_case

pytestmark = pytest.mark.docker
HOSTILE = 'a "quoted" $HOME \\ value, ${PATH} and `ticks`'


def _options(project: Path, tag: str, **options: Any) -> BuildOptions:
    dockerfile = DockerfileOptions(case_settings(project, DEBIAN), syntax="buildkit",
                                   labels=(("org.example.note", HOSTILE),),
                                   build_args=("PYFARM_TEST_ARG",))
    return BuildOptions(dockerfile=dockerfile, tag=tag, network="none", engine="docker",
                        build_args=(("PYFARM_TEST_ARG", "reached"),), **options)


def test_buildkit_build_verifies_like_a_legacy_one(client: Any, base_images: list[str],
                                                   own: Own) -> None:
    tag = f"pyfarm-test/{own.marker()}:1"
    said: list[str] = []
    built = build_image(_options(corpus_case("stdlib_tour"), tag, verify=True,
                                 platform="linux/amd64"), report=said.append)
    assert built.verdict is not None and built.verdict.ok
    assert own.tags() == [tag, f"{tag}-builder"]
    assert any("(builder): RUN" in line for line in said), said  # BuildKit's steps
    image = client.images.get(tag)
    assert image.attrs["Config"]["Labels"]["org.example.note"] == HOSTILE
    assert image.attrs["Architecture"] == "amd64"
    history = " ".join(h["CreatedBy"] for h in client.api.history(f"{tag}-builder"))
    assert "PYFARM_TEST_ARG=reached" in history  # the build argument reached the builder
    cache = client.containers.run(f"{tag}-builder", ["sh", "-c", "ls -A /root/.cache/pip "
                                                     "2>/dev/null | wc -l"], entrypoint=[],
                                  network_mode="none", remove=True)
    assert cache.strip() == b"0"  # pip's cache lives in a cache mount, not in a layer

    legacy_tag = f"pyfarm-test/{own.marker()}:legacy"
    legacy = build_image(build_options(corpus_case("stdlib_tour"), legacy_tag, DEBIAN,
                                       network="none", engine="docker"), report=lambda _: None)
    layers = image.attrs["RootFS"]["Layers"]
    legacy_layers = client.images.get(legacy.image_id).attrs["RootFS"]["Layers"]
    # The farm's four layers are the same bytes; BuildKit 0.8 adds an empty WORKDIR layer
    # and records its own history and times, so the image ids differ (see README).
    assert layers[:4] == legacy_layers
    assert built.image_id != legacy.image_id


def test_a_failing_buildkit_build_tags_nothing_and_leaves_nothing(
        client: Any, base_images: list[str], own: Own) -> None:
    project = own.project("raise SystemExit('the app fails on purpose')\n")
    tag = project.tag
    started = time.monotonic()
    with pytest.raises(BuildError) as failed:
        build_image(_options(project.path, tag, verify=True), report=lambda _: None)
    assert "stage builder" in failed.value.message
    assert "the app fails on purpose" in failed.value.message
    assert own.tags() == []
    assert own.wait_for_containers() == []
    assert own.temporary() == []
    assert time.monotonic() - started < 600


def test_an_interrupted_buildkit_build_leaves_nothing(base_images: list[str],
                                                      own: Own) -> None:
    """Ctrl-C while BuildKit traces the app: exit 130, the client is stopped (BuildKit
    cancels the step), nothing tagged, no temporary files."""
    project = own.project("import time\ntime.sleep(60)\nprint(1)\n")
    started = time.monotonic()
    interrupt_while_tracing(project.path, project.tag, "--syntax", "buildkit")
    assert time.monotonic() - started < 60  # not after the app's minute
    assert own.tags() == []
    assert own.wait_for_containers() == []
    assert own.temporary() == []
