"""OCI layouts handed to `report` and `verify` are not trusted: digests are well-formed and
match their blobs, sizes and entry counts are bounded, only referenced blobs are read, and
nothing outside the layout gets into the archive `verify` loads. Layouts here are written
by hand, byte for byte, then damaged the way a hostile one would be."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from pyfarm_docker import cli, runtime
from pyfarm_docker.documents.manifest import SCHEMA_VERSION
from pyfarm_docker.driver import oci
from pyfarm_docker.errors import UsageError

MANIFEST_PATH = "app/.pyfarm/manifest.json"
FARM_MANIFEST = json.dumps({
    "schema_version": SCHEMA_VERSION, "prefix": "/app", "python": "3.11", "env": {},
    "files": [{"path": "/app/app/app.py", "size": 9, "sha256": "0" * 64, "origin": "app",
               "layer": "4-app"}],
}).encode()


def _tar_bytes(files: dict[str, bytes], compress: bool = True) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0) if compress else raw.getvalue()


def _put(layout: Path, data: bytes, media_type: str) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def _layout(path: Path, layers: list[dict[str, bytes]] | None = None,
            label: str = f"/{MANIFEST_PATH}") -> Path:
    """A single-image OCI layout: a config with the manifest label, the given layers."""
    if layers is None:
        layers = [{"app/app/app.py": b"print(1)\n"}, {MANIFEST_PATH: FARM_MANIFEST}]
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Labels": {runtime.LABEL_MANIFEST: label}}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": oci.MANIFEST,
                "config": _put(path, config, oci.CONFIG),
                "layers": [_put(path, _tar_bytes(files), oci.LAYER) for files in layers]}
    _write_index(path, _put(path, json.dumps(manifest).encode(), oci.MANIFEST))
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return path


def _write_index(path: Path, descriptor: dict[str, Any]) -> None:
    index = {"schemaVersion": 2, "mediaType": oci.INDEX, "manifests": [descriptor]}
    (path / "index.json").write_text(json.dumps(index))


def _image_manifest(path: Path) -> tuple[dict[str, Any], Path]:
    digest = json.loads((path / "index.json").read_text())["manifests"][0]["digest"]
    blob = path / "blobs" / "sha256" / digest[7:]
    return json.loads(blob.read_bytes()), blob


def _rewrite_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Replace the image manifest by ``manifest``, correctly digested: only what the test
    changed inside it is wrong."""
    _write_index(path, _put(path, json.dumps(manifest).encode(), oci.MANIFEST))


def _blob(path: Path, digest: str) -> Path:
    return path / "blobs" / "sha256" / digest[7:]


def _flip_a_byte(blob: Path) -> None:
    """Same size, other content."""
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))


def _as_tar(layout: Path, archive: Path, extra: dict[str, bytes] | None = None) -> Path:
    with tarfile.open(archive, "w") as tar:
        for item in sorted(layout.rglob("*")):
            tar.add(item, item.relative_to(layout).as_posix(), recursive=False)
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def _report(target: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["report", target, "--json"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _error(err: str) -> str:
    (line,) = [ln for ln in err.splitlines() if ln.startswith("ERROR: ")]
    return line


def test_report_reads_a_sound_layout_and_its_tar(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    layout = _layout(tmp_path / "image")
    code, out, err = _report(f"oci:{layout}", capsys)
    assert code == 0, err
    assert json.loads(out)["files"] == 1
    archive = _as_tar(layout, tmp_path / "image.tar")
    code, out, err = _report(f"tar:{archive}", capsys)
    assert code == 0, err
    assert json.loads(out)["files"] == 1


def test_a_tampered_layer_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = _layout(tmp_path / "image")
    manifest, _ = _image_manifest(layout)
    blob = _blob(layout, manifest["layers"][1]["digest"])
    _flip_a_byte(blob)
    for target in (f"oci:{layout}", f"tar:{_as_tar(layout, tmp_path / 'image.tar')}"):
        code, out, err = _report(target, capsys)
        assert code == UsageError.exit_code
        assert f"{blob.relative_to(layout)} does not match its digest" in _error(err)
        assert out == ""


def test_a_tampered_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = _layout(tmp_path / "image")
    manifest, _ = _image_manifest(layout)
    config = _blob(layout, manifest["config"]["digest"])
    config.write_bytes(config.read_bytes().replace(b"amd64", b"arm64"))
    code, _, err = _report(f"oci:{layout}", capsys)
    assert code == UsageError.exit_code
    assert "does not match its digest" in _error(err)


@pytest.mark.parametrize("digest", ["sha256:../../../../etc/passwd", "sha512:" + "a" * 128,
                                    "sha256:" + "A" * 64, "sha256:abc"])
def test_malformed_digests_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       digest: str) -> None:
    layout = _layout(tmp_path / "image")
    manifest, _ = _image_manifest(layout)
    manifest["layers"][0]["digest"] = digest
    _rewrite_manifest(layout, manifest)
    code, _, err = _report(f"oci:{layout}", capsys)
    assert code == UsageError.exit_code
    assert f"digest {digest!r} is not sha256:<64 hex>" in _error(err)


def test_a_size_that_disagrees_with_the_blob_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = _layout(tmp_path / "image")
    manifest, _ = _image_manifest(layout)
    manifest["layers"][0]["size"] += 1
    _rewrite_manifest(layout, manifest)
    code, _, err = _report(f"oci:{layout}", capsys)
    assert code == UsageError.exit_code
    assert "its descriptor says" in _error(err)


def test_an_oversized_index_is_not_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = _layout(tmp_path / "image")
    index = json.loads((layout / "index.json").read_text())
    index["padding"] = " " * oci.MAX_JSON
    (layout / "index.json").write_text(json.dumps(index))
    code, _, err = _report(f"oci:{layout}", capsys)
    assert code == UsageError.exit_code
    assert "index.json is" in _error(err) and "more than" in _error(err)


def test_a_layer_that_expands_too_far_is_refused(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A few KB of gzip that expand to 8 MB before the file report looks for; the cap is
    lowered so the test stays small, the check is the same."""
    layout = _layout(tmp_path / "image", [{"zeros": bytes(8 << 20), MANIFEST_PATH: FARM_MANIFEST}])
    manifest, _ = _image_manifest(layout)
    assert manifest["layers"][0]["size"] < 64 << 10
    monkeypatch.setattr(oci, "MAX_EXPANDED", 1 << 20)
    code, _, err = _report(f"oci:{layout}", capsys)
    assert code == UsageError.exit_code
    assert "expands beyond" in _error(err)


def test_a_blob_symlinked_out_of_the_layout_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Even with the right content: the file outside is never read."""
    layout = _layout(tmp_path / "image")
    manifest, _ = _image_manifest(layout)
    blob = _blob(layout, manifest["layers"][0]["digest"])
    outside = tmp_path / "outside"
    outside.write_bytes(blob.read_bytes())
    blob.unlink()
    blob.symlink_to(outside)
    code, _, err = _report(f"oci:{layout}", capsys)
    assert code == UsageError.exit_code
    assert "is not a regular file inside the layout" in _error(err)
    with pytest.raises(UsageError, match="not a regular file inside the layout"):
        oci.loadable(oci.Layout("oci", layout), "x:1", tmp_path / "load.tar")


@pytest.mark.parametrize("entry", ["../evil", "/etc/evil", "blobs/../../evil"])
def test_archive_entries_outside_the_layout_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: str) -> None:
    archive = _as_tar(_layout(tmp_path / "image"), tmp_path / "image.tar", {entry: b"x"})
    code, _, err = _report(f"tar:{archive}", capsys)
    assert code == UsageError.exit_code
    assert f"unexpected entry {entry!r}" in _error(err)
    assert not (tmp_path / "evil").exists()


def test_archive_symlinks_and_too_many_entries_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    layout = _layout(tmp_path / "image")
    (layout / "link").symlink_to("/etc/passwd")
    code, _, err = _report(f"tar:{_as_tar(layout, tmp_path / 'a.tar')}", capsys)
    assert code == UsageError.exit_code
    assert "unexpected entry 'link'" in _error(err)
    (layout / "link").unlink()
    monkeypatch.setattr(oci, "MAX_ENTRIES", 3)
    code, _, err = _report(f"tar:{_as_tar(layout, tmp_path / 'b.tar')}", capsys)
    assert code == UsageError.exit_code
    assert "more than 3 entries" in _error(err)


def test_a_compressed_archive_is_refused(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    archive = _as_tar(_layout(tmp_path / "image"), tmp_path / "image.tar")
    squeezed = tmp_path / "image.tar.gz"
    squeezed.write_bytes(gzip.compress(archive.read_bytes()))
    code, _, err = _report(f"tar:{squeezed}", capsys)
    assert code == UsageError.exit_code
    assert "is not an uncompressed tar" in _error(err)


def _names(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return sorted(tar.getnames())


def test_verify_loads_only_the_referenced_blobs(tmp_path: Path) -> None:
    """The archive verify hands the engine: the config, the layers and a manifest.json,
    nothing else of the layout (an unreferenced blob, a stray file)."""
    layout = _layout(tmp_path / "image")
    stray = _put(layout, b"not referenced", oci.LAYER)
    (layout / "notes.txt").write_text("stray")
    manifest, _ = _image_manifest(layout)
    expected = sorted(["manifest.json", f"blobs/sha256/{manifest['config']['digest'][7:]}",
                       *(f"blobs/sha256/{d['digest'][7:]}" for d in manifest["layers"])])
    for source in (oci.Layout("oci", layout),
                   oci.Layout("tar", _as_tar(layout, tmp_path / "image.tar"))):
        out = tmp_path / f"load-{source.kind}.tar"
        oci.loadable(source, "pyfarm-load/x:verify", out)
        assert _names(out) == expected
        assert stray["digest"][7:] not in str(_names(out))
        with tarfile.open(out) as tar:
            docker_manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
            for name in expected[:-1]:
                data = tar.extractfile(name).read()  # type: ignore[union-attr]
                assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
        assert docker_manifest[0]["RepoTags"] == ["pyfarm-load/x:verify"]


def test_verify_refuses_a_tampered_blob_before_loading(tmp_path: Path) -> None:
    layout = _layout(tmp_path / "image")
    manifest, _ = _image_manifest(layout)
    _flip_a_byte(_blob(layout, manifest["layers"][0]["digest"]))
    with pytest.raises(UsageError, match="does not match its digest"):
        oci.loadable(oci.Layout("oci", layout), "pyfarm-load/x:verify", tmp_path / "load.tar")
