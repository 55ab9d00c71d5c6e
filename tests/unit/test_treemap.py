from __future__ import annotations

import itertools

import pytest

from pyfarm_docker.driver.treemap import Rect, layout


@pytest.mark.parametrize("sizes", [[5], [6, 6, 4, 3, 2, 2, 1], [100, 1, 1, 1], [3, 3, 3, 3]])
def test_rectangles_tile_the_box_in_proportion(sizes: list[float]) -> None:
    box = Rect(0, 0, 600, 400)
    rects = layout(sizes, box)
    total = sum(sizes)
    for size, r in zip(sizes, rects):
        assert r.w * r.h == pytest.approx(size / total * 600 * 400)
        assert r.x >= -1e-6 and r.x + r.w <= 600 + 1e-6
        assert r.y >= -1e-6 and r.y + r.h <= 400 + 1e-6
    for a, b in itertools.combinations(rects, 2):
        overlap_w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
        overlap_h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
        assert overlap_w <= 1e-6 or overlap_h <= 1e-6


def test_nothing_to_lay_out() -> None:
    assert layout([0, 0], Rect(0, 0, 10, 10)) == [Rect(0, 0, 0, 0), Rect(0, 0, 0, 0)]
