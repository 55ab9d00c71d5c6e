"""The bench's instruction counts (its start-up tie-breaker) in real containers: callgrind,
mounted into an image, counts the same for the same command twice, more for more work,
and for a server stops at the open port."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from tests.support.baseimages import DEBIAN
from tests.support.bench import bench_module

pytestmark = pytest.mark.docker

BENCH = bench_module()
PYTHON = "/usr/bin/python3"


def _count(client: Any, code: str, port: int | None = None) -> int:
    count: int = BENCH.instructions(client, DEBIAN, [PYTHON, "-c", code], port, {})
    return count


def test_the_count_is_the_same_twice_and_grows_with_the_work(
        client: Any, base_images: list[str]) -> None:
    little = _count(client, "sum(range(1000))")
    assert little == _count(client, "sum(range(1000))")
    assert _count(client, "sum(range(100000))") > little + 1_000_000


def test_a_server_is_counted_up_to_its_open_port(client: Any, base_images: list[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve = ("import socket, time; s = socket.socket(); "
             f"s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(1e9)")
    # It never ends by itself: a count means it was stopped at its open port.
    assert _count(client, serve, port) > _count(client, "pass")
