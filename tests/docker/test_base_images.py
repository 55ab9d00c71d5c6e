"""Builder base images made by scripts/make-base-image (debootstrap + docker import)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tests.support.baseimages import IMAGES, MAKE_BASE_IMAGE

pytestmark = pytest.mark.docker


def _run(client: Any, image: str, script: str) -> str:
    out: bytes = client.containers.run(
        image, ["sh", "-c", script], network_mode="none", remove=True
    )
    return out.decode()


@pytest.mark.parametrize("image", list(IMAGES))
def test_python_version_and_prefix(client: Any, base_images: list[str], image: str) -> None:
    version, prefix = IMAGES[image]
    out: bytes = client.containers.run(
        image,
        ["python3", "-c", "import sys; print(*sys.version_info[:2], sys.prefix)"],
        network_mode="none",
        remove=True,
    )
    major, minor, got_prefix = out.decode().split()
    assert (int(major), int(minor)) == version
    assert got_prefix == prefix


@pytest.mark.parametrize("image", list(IMAGES))
def test_venv_with_ssl(client: Any, base_images: list[str], image: str) -> None:
    out = _run(
        client,
        image,
        "python3 -m venv /tmp/v && /tmp/v/bin/python -c "
        "'import ssl, sys; print(sys.prefix, ssl.OPENSSL_VERSION)'",
    )
    assert out.startswith("/tmp/v OpenSSL "), out


@pytest.mark.parametrize("image", list(IMAGES))
def test_image_config(client: Any, base_images: list[str], image: str) -> None:
    config = client.images.get(image).attrs["Config"]
    assert config["Cmd"] == ["python3"]
    assert "LANG=C.UTF-8" in config["Env"]
    assert any(e.startswith("PATH=/usr/local/bin:") for e in config["Env"])


def test_slim_runtime_layout(client: Any, base_images: list[str]) -> None:
    out = _run(
        client,
        "local/python:3.12-slim",
        "set -e; test -f /usr/local/bin/python3.12 -a ! -L /usr/local/bin/python3.12; "
        "readlink /usr/local/bin/python3; test -e /usr/local/lib/libpython3.12.so.1.0; "
        "test ! -e /usr/local/lib/python3.12/test; test -d /usr/local/lib/python3.12/ensurepip; "
        "ls /usr/local/lib/python3.12/site-packages; "
        "python3 -c 'import sqlite3, ctypes, lzma, bz2, zlib, readline, uuid, decimal'; "
        "pip --version",
    )
    assert out.splitlines()[0] == "python3.12"
    # Only pip's own files: nothing the host added to its site-packages.
    assert not [ln for ln in out.splitlines() if ln.endswith(".pth")]
    assert "/usr/local/lib/python3.12/site-packages/pip" in out


def test_rerun_is_cached(base_images: list[str]) -> None:
    proc = subprocess.run(
        [str(MAKE_BASE_IMAGE), *base_images], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.splitlines() == [f"{name}: cached" for name in base_images]


def test_unknown_name_is_a_usage_error() -> None:
    proc = subprocess.run(
        [str(MAKE_BASE_IMAGE), "local/python:2.7-nope"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "local/python:3.12-slim" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
