"""The farm writer hashes files as it copies them and splits layers by moving whole
directories where it can: the manifest must hold every file's own sha256, and the split
tree must be the one moving each path on its own gives (modes, links, leftovers)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path, PurePosixPath

from pyfarm_docker.builder import farm
from pyfarm_docker.builder.plan import Entry, Plan
from pyfarm_docker.documents.manifest import Manifest, file_sha256
from pyfarm_docker.runtime import LAYERS, layer_dirs

P = PurePosixPath


def _plan(source: Path) -> Plan:
    def file(dest: str, layer: str, mode: int = 0o644) -> Entry:
        return Entry(P(dest), "file", layer, "test", source=str(source), mode=mode)

    def text(dest: str, layer: str) -> Entry:
        return Entry(P(dest), "text", layer, "test", content=dest.encode())

    def directory(dest: str, layer: str, mode: int = 0o755) -> Entry:
        return Entry(P(dest), "dir", layer, "essential", mode=mode)

    entries = (
        directory("app", "runtime"), directory("tmp", "runtime", 0o1777),
        file("app/python/bin/python", "runtime", 0o755), text("app/python/lib/os.py", "runtime"),
        text("etc/ld.so.conf", "runtime"), file("app/reals/r/libx.so", "runtime", 0o755),
        file("app/site-packages/p1/pandas/__init__.py", "big"),
        file("app/site-packages/p1/pandas/core/frame.py", "big"),
        directory("app/site-packages/p1/pandas/tests", "packages"),  # inside a big directory
        file("app/site-packages/p1/pandas/tests/test_frame.py", "big"),
        directory("app/site-packages/p1/numpy", "big", 0o750),
        file("app/site-packages/p1/numpy/x.py", "big"),
        Entry(P("app/site-packages/p1/numpy/libx.so"), "link", "big", "library",
              target="../../../reals/r/libx.so"),
        file("app/site-packages/p1/numpy-1.0.dist-info/RECORD", "big"),
        file("app/site-packages/p1/dateutil/a.py", "packages"),
        text("app/app/main.py", "app"), text("app/app-data/x", "app"),
    )
    return Plan(P("/app"), P("app/python/bin/python"), entries, (), (), ())


def _written(tmp_path: Path) -> tuple[Path, Plan, Manifest]:
    source = tmp_path / "source.bin"
    source.write_bytes(bytes(range(256)) * 5000)  # more than one copy block
    plan = _plan(source)
    root = tmp_path / "root"
    root.mkdir()
    digests = farm.write_entries(plan, root)
    # What later steps leave: a .pyc (not planned), an empty directory, a directory of
    # another mode than a new one, a link no entry made.
    (root / "app/app/__pycache__").mkdir()
    (root / "app/app/__pycache__/main.cpython-311.pyc").write_bytes(b"pyc")
    (root / "app/site-packages/p1/numpy-1.0.dist-info/empty").mkdir()
    os.chmod(root / "app/site-packages/p1/dateutil", 0o700)
    (root / "app/app-data/stray").symlink_to("x")
    doc = farm.manifest(plan, root, digests)
    target = root / "app/.pyfarm/manifest.json"
    target.parent.mkdir()
    target.write_text(doc.dumps())
    return root, plan, doc


def test_the_manifest_holds_each_file_as_it_is_on_disk(tmp_path: Path) -> None:
    root, _, doc = _written(tmp_path)
    paths = [f.path for f in doc.files]
    assert paths == sorted(paths, key=lambda p: P(p).parts)  # app/app/... before app/app-data
    assert paths.index("/app/app/main.py") < paths.index("/app/app-data/x")
    for record in doc.files:
        on_disk = root / record.path[1:]
        assert (record.size, record.sha256) == (on_disk.stat().st_size, file_sha256(on_disk))
    assert {f.path: f.layer for f in doc.files}["/app/app/__pycache__/main.cpython-311.pyc"] \
        == "app"


def _split_path_by_path(root: Path, doc: Manifest, plan: Plan) -> None:
    """The split as it was: every file and link moved on its own."""
    dirs = dict(zip(LAYERS, layer_dirs()))
    layer_of = {e.dest: e.layer for e in plan.entries}
    layer_of.update({P(f.path[1:]): f.layer for f in doc.files})
    layer_of[P("app/.pyfarm/manifest.json")] = "app"
    staging = root.parent / (root.name + ".layers")
    listing: dict[str, list[str]] = {name: [] for name in LAYERS}
    for rel, layer in sorted(layer_of.items(), key=lambda kv: str(kv[0])):
        source = root / rel
        if source.is_dir() and not source.is_symlink():
            continue
        if not source.exists() and not source.is_symlink():
            continue
        dest = staging / dirs[layer] / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(source, dest)
        listing[layer].append("/" + str(rel))
    farm._write_layer_lists(staging, P("app"), listing)
    for entry in plan.entries:
        if entry.kind == "dir":
            farm._write(entry, str(staging / dirs[entry.layer] / entry.dest), set())
    shutil.rmtree(root)
    os.rename(staging, root)


def _tree(root: Path) -> list[tuple[str, str, int, str]]:
    found = []
    for path in sorted(root.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            content = os.readlink(path)
        elif stat.S_ISDIR(mode):
            content = ""
        else:
            content = path.read_bytes().hex()
        found.append((str(path.relative_to(root)), stat.filemode(mode), stat.S_IMODE(mode),
                      content))
    return found


def test_moving_whole_directories_gives_the_tree_moving_each_path_gives(
        tmp_path: Path) -> None:
    root, plan, doc = _written(tmp_path)
    expected_root = tmp_path / "expected"
    shutil.copytree(root, expected_root, symlinks=True)
    _split_path_by_path(expected_root, doc, plan)
    farm.split_layers(root, doc, plan)
    assert _tree(root) == _tree(expected_root)
    assert (root / "2-big/app/site-packages/p1/numpy").stat().st_mode & 0o777 == 0o750
    assert (root / "3-packages/app/site-packages/p1/pandas/tests").is_dir()
    assert not (root / "2-big/app/site-packages/p1/numpy-1.0.dist-info/empty").exists()
    listed = (root / "2-big/app/.pyfarm/layer-2-big.txt").read_text().splitlines()
    assert listed == sorted(listed) and "/app/site-packages/p1/numpy/libx.so" in listed
