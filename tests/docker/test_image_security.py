"""The final image: locked-down runs, nothing from the builder, reproducible layers."""

from __future__ import annotations

import io
import tarfile
from typing import Any

import pytest

from pyfarm_docker.driver.imagebuild import build_image
from tests.support.baseimages import DEBIAN
from tests.support.cases import build_case, build_options
from tests.support.paths import corpus_case

pytestmark = pytest.mark.docker


def _paths(client: Any, image: str) -> list[str]:
    container = client.containers.create(image)
    try:
        data = b"".join(container.export())
    finally:
        container.remove(force=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return archive.getnames()


def test_runs_read_only_without_capabilities(client: Any, base_images: list[str]) -> None:
    built = build_case(corpus_case("stdlib_tour"), DEBIAN)
    assert built.builder_tag is not None
    kwargs = {"network_mode": "none", "remove": True}
    normal = client.containers.run(built.builder_tag, ["/opt/venv/bin/python", "app.py"],
                                   working_dir="/src", **kwargs)
    locked = client.containers.run(built.tag, read_only=True, cap_drop=["ALL"],
                                   tmpfs={"/tmp": "", "/dev/shm": ""},
                                   security_opt=["no-new-privileges"], **kwargs)
    assert locked == normal
    assert client.images.get(built.tag).attrs["Config"]["User"] == "65532:65532"


def test_home_is_writable_by_the_user(client: Any, base_images: list[str]) -> None:
    built = build_case(corpus_case("stdlib_tour"), DEBIAN)
    code = "import pathlib; p = pathlib.Path.home() / 'n'; p.write_text('ok'); print(p)"
    out = client.containers.run(built.tag, ["-c", code], entrypoint=["/app/python/bin/python"],
                                network_mode="none", remove=True)
    assert out == b"/home/nonroot/n\n"


def test_nothing_from_the_builder_reaches_the_image(client: Any, base_images: list[str]) -> None:
    built = build_case(corpus_case("flask_server"), DEBIAN)
    paths = _paths(client, built.tag)
    roots = ("pyfarm/", "opt/", "src/", "root/", "etc/pip.conf", "etc/xdg/", "usr/bin/pip")
    anywhere = ("wheelhouse", ".git/", "patchelf", "elftools", "site-packages/p1/pip/")
    leaks = [p for p in paths
             if p.startswith(roots) or any(word in p for word in anywhere)]
    assert leaks == []
    assert any(p.endswith("site-packages/p1/flask/app.py") for p in paths)


def test_same_input_same_layers(client: Any, base_images: list[str]) -> None:
    case = corpus_case("module_entry")

    def layers(tag: str) -> list[str]:
        options = build_options(case, tag, DEBIAN, network="none", no_cache=True,
                                source_date_epoch=1700000000)
        result = build_image(options, report=lambda _: None)
        return list(client.images.get(result.image_id).attrs["RootFS"]["Layers"])

    first, second = layers("pyfarm-test/repro:a"), layers("pyfarm-test/repro:b")
    assert len(first) == 4  # runtime, big, packages, app
    assert first == second


def test_debug_variant_adds_a_shell_on_top(client: Any, base_images: list[str]) -> None:
    case = corpus_case("module_entry")
    options = build_options(case, "pyfarm-test/debugged:1", DEBIAN, {"debug": True},
                            network="none")
    result = build_image(options, report=lambda _: None)
    final = client.images.get(result.image_id).attrs["RootFS"]["Layers"]
    debug = client.images.get("pyfarm-test/debugged:1-debug").attrs["RootFS"]["Layers"]
    assert debug[:len(final)] == final and len(debug) == len(final) + 2
    out = client.containers.run("pyfarm-test/debugged:1-debug", ["-c", "id -u; ls /app/python/bin"],
                                entrypoint=["/busybox/sh"], network_mode="none", remove=True)
    assert out.decode().split() == ["65532", "python"]
    assert not any(p.startswith("busybox") for p in _paths(client, result.image_id))
