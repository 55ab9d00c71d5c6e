"""Squarified treemap layout (Bruls, Huizing, van Wijk): sizes in, rectangles out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float


def _worst(row: Sequence[float], side: float) -> float:
    total = sum(row)
    return max(max(side * side * r / (total * total), total * total / (side * side * r))
               for r in row)


def _place(row: Sequence[float], box: Rect) -> tuple[list[Rect], Rect]:
    """Lay ``row`` (areas) along the shorter side of ``box``; returns them and what is left."""
    total = sum(row)
    rects = []
    if box.w >= box.h:
        width = total / box.h
        y = box.y
        for area in row:
            rects.append(Rect(box.x, y, width, area / width))
            y += area / width
        return rects, Rect(box.x + width, box.y, box.w - width, box.h)
    height = total / box.w
    x = box.x
    for area in row:
        rects.append(Rect(x, box.y, area / height, height))
        x += area / height
    return rects, Rect(box.x, box.y + height, box.w, box.h - height)


def layout(sizes: Sequence[float], box: Rect) -> list[Rect]:
    """Rectangles for ``sizes`` (sorted largest first by the caller) filling ``box``."""
    total = sum(sizes)
    if total <= 0:
        return [Rect(box.x, box.y, 0, 0) for _ in sizes]
    areas = [s * box.w * box.h / total for s in sizes]
    out: list[Rect] = []
    row: list[float] = []
    for area in areas:
        side = min(box.w, box.h)
        if row and _worst([*row, area], side) > _worst(row, side):
            placed, box = _place(row, box)
            out += placed
            row = []
        row.append(area)
    if row:
        out += _place(row, box)[0]
    return out
