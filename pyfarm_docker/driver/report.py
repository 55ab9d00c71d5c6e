"""Where an image's bytes go, from the farm's manifest: by origin, the largest files,
what --prune would save, soname conflicts; as a table, JSON or an HTML treemap."""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from .. import runtime
from ..builder import stdlib
from ..documents.manifest import FileRecord, Manifest
from ..errors import UsageError
from . import engine, oci
from .treemap import Rect, layout

TOP = 20


def load_manifest(target: str, engine_choice: str = "auto") -> Manifest:
    """From a farm directory (assemble's output, layered or not), an OCI layout
    (``oci:DIR``, ``tar:FILE``) or an image in the engine."""
    if oci.is_layout(target):
        data = oci.labeled_file(oci.Layout.parse(target), runtime.LABEL_MANIFEST)
        return Manifest.loads(data, f"manifest in {target}")
    path = Path(target)
    if path.is_dir():
        found = sorted(path.glob("*/.pyfarm/manifest.json")) + sorted(
            path.glob("*/*/.pyfarm/manifest.json"))
        if not found:
            raise UsageError(f"no .pyfarm/manifest.json below {path}",
                             "give the output directory of 'pyfarm-docker assemble'")
        return Manifest.read(found[0])
    return _image_manifest(target, engine_choice)


def _image_manifest(image: str, engine_choice: str) -> Manifest:
    with engine.session(engine_choice) as eng:
        engine.require_image(eng.client, image, "image")
        path = engine.image_label(eng.client, image, runtime.LABEL_MANIFEST)
        return Manifest.loads(engine.read_file(eng.client, image, path),
                              f"manifest of {image}")


def _group(origin: str, path: str) -> str:
    """Native libraries are shown one by one; everything else by its origin."""
    if origin == "library":
        return "lib:" + path.rsplit("/", 1)[-1]
    return origin


def _totals(manifest: Manifest, key: str, group_of: Callable[[FileRecord], str]
            ) -> list[dict[str, Any]]:
    """Bytes and files per group, largest first."""
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for f in manifest.files:
        group = groups[group_of(f)]
        group[0] += f.size
        group[1] += 1
    return [{key: k, "bytes": v[0], "files": v[1]}
            for k, v in sorted(groups.items(), key=lambda kv: (-kv[1][0], kv[0]))]


def summarize(manifest: Manifest) -> dict[str, Any]:
    """The report as JSON-ready data (``report --json`` prints it)."""
    prunable = set(manifest.prunable)
    files = sorted(manifest.files, key=lambda f: -f.size)
    return {
        "total_bytes": manifest.total_bytes,
        "files": len(manifest.files),
        "by_origin": _totals(manifest, "origin", lambda f: _group(f.origin, f.path)),
        "by_reason": _totals(manifest, "reason", lambda f: f.reason),
        "stdlib_excluded": list(stdlib.EXCLUDED),
        "top_files": [{"path": f.path, "bytes": f.size, "origin": f.origin}
                      for f in files[:TOP]],
        "prune_saves_bytes": sum(f.size for f in manifest.files if f.path in prunable),
        "conflicts": [c.to_json() for c in manifest.conflicts],
        "base": _base(manifest),
    }


def _base(manifest: Manifest) -> dict[str, Any] | None:
    """What the final base provides that the farm would otherwise ship (None on scratch)."""
    if not manifest.provided:
        return None
    return {"image": manifest.provided[0].provided_by, "saves_bytes": manifest.provided_bytes,
            "files": len(manifest.provided),
            "by_origin": _totals(replace(manifest, files=manifest.provided), "origin",
                                 lambda f: _group(f.origin, f.path))}


def _mb(n: int) -> str:
    return f"{n / 1e6:8.2f} MB"


def table(summary: dict[str, Any]) -> str:
    lines = [f"{_mb(summary['total_bytes'])}  {summary['files']} files in all", "",
             "by origin:"]
    lines += [f"{_mb(g['bytes'])}  {g['files']:6d}  {g['origin']}" for g in summary["by_origin"]]
    lines += ["", "by reason (traced: the run used it; closure of X: X needs it; complete: so "
              "that every shipped module imports):"]
    lines += [f"{_mb(g['bytes'])}  {g['files']:6d}  {g['reason']}" for g in summary["by_reason"]]
    lines += ["", f"left out of the stdlib unless imported: {', '.join(summary['stdlib_excluded'])}"
              " and CPython's own test modules"]
    lines += ["", f"largest {TOP} files:"]
    lines += [f"{_mb(f['bytes'])}  {f['path']}" for f in summary["top_files"]]
    lines += ["", f"--prune would save {_mb(summary['prune_saves_bytes']).strip()}"]
    base = summary.get("base")
    if base:
        lines += ["", f"the final base {base['image']} provides {base['files']} files the "
                  f"farm needs, byte-identical: {_mb(base['saves_bytes']).strip()} not shipped "
                  "again"]
        lines += [f"{_mb(g['bytes'])}  {g['files']:6d}  {g['origin']}" for g in base["by_origin"]]
    for c in summary["conflicts"]:
        lines.append(f"soname conflict {c['soname']}: {', '.join(sorted(c['files']))}")
    return "\n".join(lines)


_PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
            "#ff9da7", "#9c755f", "#bab0ac")
_WIDTH, _HEIGHT = 1200, 700
# Runs in the browser: counts what was laid out, so a headless browser can prove it rendered.
_SCRIPT = """
const boxes = [...document.querySelectorAll('#treemap rect')];
const area = boxes.reduce((a, r) => a + r.getBBox().width * r.getBBox().height, 0);
document.body.dataset.rendered = boxes.length + ':' + Math.round(area);
"""


def _cell(rect: Rect, group: dict[str, Any], colour: str) -> str:
    label = html.escape(group["origin"])
    title = f"{label}: {group['bytes'] / 1e6:.2f} MB, {group['files']} files"
    text = (f'<text x="{rect.x + 4:.1f}" y="{rect.y + 14:.1f}">{label}</text>'
            if rect.w > 60 and rect.h > 18 else "")
    return (f'<g><title>{title}</title><rect x="{rect.x:.1f}" y="{rect.y:.1f}" '
            f'width="{rect.w:.1f}" height="{rect.h:.1f}" fill="{colour}"/>{text}</g>')


def to_html(summary: dict[str, Any], title: str) -> str:
    groups = [g for g in summary["by_origin"] if g["bytes"] > 0]
    rects = layout([g["bytes"] for g in groups], Rect(0, 0, _WIDTH, _HEIGHT))
    cells = "\n".join(_cell(r, g, _PALETTE[i % len(_PALETTE)])
                      for i, (r, g) in enumerate(zip(rects, groups)))
    rows = "\n".join(f"<tr><td>{html.escape(g['origin'])}</td><td>{g['bytes'] / 1e6:.2f}</td>"
                     f"<td>{g['files']}</td></tr>" for g in groups)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}: where the bytes go</title>
<style>body{{font:14px sans-serif;margin:1em}} rect{{stroke:#fff}}
text{{font-size:11px;fill:#fff;pointer-events:none}} td{{padding:0 1em}}</style></head>
<body><h1>{html.escape(title)}: {summary['total_bytes'] / 1e6:.1f} MB in
{summary['files']} files</h1>
<svg id="treemap" width="{_WIDTH}" height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}">
{cells}
</svg>
<table><tr><th>origin</th><th>MB</th><th>files</th></tr>
{rows}
</table>
<script>{_SCRIPT}</script>
</body></html>
"""
