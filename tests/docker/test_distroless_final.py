"""Farms on a distroless final base (scripts/make-base-image's local/distroless-*:debian12):
every corpus case builds offline and verifies on it, leaves out what the base provides
byte-identical, still resolves every library to the file it was traced with, and is
smaller on top of the base than its FROM-scratch farm; the debug variant works on top of
it; a base that cannot run the farm is refused before the build."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any, Iterator, List, Tuple, Union

import docker
import pytest

from pyfarm_docker import cli, runtime
from pyfarm_docker.builder.essentials import GROUP, PASSWD
from pyfarm_docker.documents.manifest import Manifest
from pyfarm_docker.driver import engine
from pyfarm_docker.driver.imagebuild import BuildResult, build_image
from pyfarm_docker.errors import UsageError
from tests.support.baseimages import DEBIAN, MAKE_BASE_IMAGE
from tests.support.cases import build_options
from tests.support.images import image_files
from tests.support.leftovers import Own
from tests.support.paths import corpus_case, corpus_cases

pytestmark = pytest.mark.docker

DISTROLESS = "local/distroless-base:debian12"
DISTROLESS_CC = "local/distroless-cc:debian12"
# Cases whose extensions are C++ (numpy, pandas, Pillow): libstdc++ and libgcc_s come from
# the -cc base, as with gcr.io/distroless/cc.
CC_CASES = frozenset({"numpy_linalg", "pandas_frame", "pillow_image"})
CASES = corpus_cases()
RUNTIME = runtime.Runtime()
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
LOADER = "/lib64/ld-linux-x86-64.so.2"

# Run by the image's own python: every object of the farm (and every library the base
# provides for it) is listed by the loader; each dependency must resolve into the farm or
# to a file the manifest says the base provides, never to anything else of the base.
LDD_CHECK = """
import json, os, subprocess, sys
m = json.load(open(sys.argv[1]))
provided = {f["path"] for f in m.get("provided", [])}
objects = [m["python"]] + [f["path"] for f in m["files"] if "/reals/r/" in f["path"]]
objects += [p for p in provided if ".so" in p and "/gconv/" not in p and "/ld-linux" not in p]
bad = []
for obj in objects:
    out = subprocess.run([sys.argv[2], "--list", obj], capture_output=True, text=True)
    if out.returncode != 0:
        bad.append(obj + ": " + out.stderr.strip())
    for line in out.stdout.splitlines():
        if "=>" not in line:
            continue
        dest = line.split("=>")[1].split()[0]
        if dest == "not" or not (dest.startswith(m["prefix"] + "/")
                                 or os.path.realpath(dest) in provided):
            bad.append(obj + ": " + line.strip())
print(json.dumps({"objects": len(objects), "bad": bad}))
"""


@pytest.fixture(scope="session")
def distroless(client: Any, base_images: list[str]) -> list[str]:
    names = [DISTROLESS, DISTROLESS_CC]
    proc = subprocess.run([str(MAKE_BASE_IMAGE), *names], capture_output=True, text=True,
                          timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return names


@contextlib.contextmanager
def _removed_after(client: Any, *tags: str) -> Iterator[None]:
    """The images this test tags go when it ends (the build cache stays)."""
    try:
        yield
    finally:
        for tag in tags:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(tag)


def test_distroless_bases_are_made_like_distroless(client: Any, distroless: list[str]) -> None:
    """Packages unpacked into an empty root: no shell, no package manager; the users, CA
    bundle and status.d entries distroless has; the farm's own passwd and group."""
    builder_bundle = engine.read_file(client, DEBIAN, str(runtime.CA_BUNDLE))
    for name in distroless:
        files = image_files(client, name)
        assert not {"bin/sh", "bin/bash", "bin/dash", "usr/bin/apt", "usr/bin/dpkg"} & set(files)
        assert files["home/nonroot"][:4] == ("dir", 0o700, 65532, 65532)
        assert files["tmp"][:2] == ("dir", 0o1777)
        assert {"var/lib/dpkg/status.d/libc6", "var/lib/dpkg/status.d/libssl3",
                "var/lib/dpkg/status.d/tzdata", "etc/os-release"} <= set(files)
        assert engine.read_file(client, name, str(runtime.CA_BUNDLE)) == builder_bundle
        assert engine.read_file(client, name, "/etc/passwd").decode() == PASSWD
        assert engine.read_file(client, name, "/etc/group").decode() == GROUP
        config = client.images.get(name).attrs["Config"]
        assert f"SSL_CERT_FILE={runtime.CA_BUNDLE}" in config["Env"]
    assert "usr/lib/x86_64-linux-gnu/libstdc++.so.6" in image_files(client, DISTROLESS_CC)
    assert "usr/lib/x86_64-linux-gnu/libstdc++.so.6" not in image_files(client, DISTROLESS)


def _manifest(client: Any, image: str) -> Manifest:
    return Manifest.loads(engine.read_file(client, image, str(RUNTIME.manifest)), image)


def _ldd_check(client: Any, image: str) -> dict[str, Any]:
    out = client.containers.run(image, [str(RUNTIME.manifest), LOADER], remove=True,
                                entrypoint=[str(RUNTIME.python), "-c", LDD_CHECK],
                                network_mode="none")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def _build(case: Path, tag: str, **settings: Any) -> BuildResult:
    return build_image(build_options(case, tag, DEBIAN, settings=settings, verify=bool(
        settings), network="none"), report=lambda _: None)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_on_distroless(case: Path, client: Any, distroless: list[str]) -> None:
    final = DISTROLESS_CC if case.name in CC_CASES else DISTROLESS
    name = case.name.replace("_", "-")
    tag = f"pyfarm-test/{name}:on-{final.split('/')[1].split(':')[0]}"
    scratch_tag = f"pyfarm-test/{name}:scratch-beside-distroless"
    with _removed_after(client, tag, f"{tag}-builder", scratch_tag):
        built = _build(case, tag, final=final)
        scratch = _build(case, scratch_tag)
        assert built.verdict is not None and built.verdict.ok
        image = client.images.get(tag)
        assert image.attrs["Config"]["User"] == "65532:65532"
        base = client.images.get(final)
        manifest = _manifest(client, tag)
        provided = {f.path: f for f in manifest.provided}
        assert {LIBC, LOADER, "/etc/passwd", "/etc/group",
                "/etc/ssl/certs/ca-certificates.crt"} <= set(provided)
        assert any(p.startswith("/usr/share/zoneinfo/") for p in provided)
        if final == DISTROLESS_CC:
            assert "/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30" in provided
        assert {f.provided_by for f in manifest.provided} == {f"{final}@{base.id}"}
        assert {f.layer for f in manifest.provided} == {"base"}
        assert not set(provided) & {f.path for f in manifest.files}
        checked = _ldd_check(client, tag)
        assert checked["bad"] == [] and checked["objects"] > 10, checked
        on_top = built.final_bytes - engine.image_size(client, final)
        print(f"\n{case.name}: on {final} {built.final_bytes / 1e6:.1f} MB "
              f"({on_top / 1e6:.1f} MB on top of the base), FROM scratch "
              f"{scratch.final_bytes / 1e6:.1f} MB; the base provides "
              f"{manifest.provided_bytes / 1e6:.1f} MB")
        assert on_top < scratch.final_bytes


def test_report_shows_what_the_base_saves(client: Any, distroless: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    case = corpus_case("stdlib_tour")
    tag = "pyfarm-test/stdlib-tour:report-on-distroless"
    with _removed_after(client, tag, f"{tag}-builder"):
        _build(case, tag, final=DISTROLESS)
        capsys.readouterr()
        assert cli.main(["report", tag]) == 0
        table = capsys.readouterr().out
        assert f"the final base {DISTROLESS}@sha256:" in table
        assert "lib:libc.so.6" in table.split("the final base", 1)[1]
        assert cli.main(["report", tag, "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["base"]["saves_bytes"] > 5_000_000  # glibc, libssl, tzdata, certificates
        assert summary["total_bytes"] < engine.image_size(client, tag)


def test_debug_variant_on_distroless(client: Any, distroless: list[str]) -> None:
    case = corpus_case("stdlib_tour")
    tag = "pyfarm-test/stdlib-tour:debug-on-distroless"
    with _removed_after(client, tag, f"{tag}-debug", f"{tag}-builder"):
        built = _build(case, tag, final=DISTROLESS, debug=True)
        assert built.verdict is not None and built.verdict.ok
        script = (f"test -f {LIBC} && ls {RUNTIME.prefix}/python/bin/python && "
                  "python -c 'import ssl, zoneinfo; "
                  "print(ssl.OPENSSL_VERSION, zoneinfo.ZoneInfo(\"Europe/Paris\"))'")
        out = client.containers.run(f"{tag}-debug", ["-c", script], entrypoint=["/busybox/sh"],
                                    remove=True, network_mode="none").decode()
        assert "OpenSSL 3.0" in out and "Europe/Paris" in out
        shells = {"bin/sh", "usr/bin/sh", "bin/bash", "busybox/sh"}
        assert not shells & set(image_files(client, tag))  # the image itself has none
        assert "busybox/sh" in image_files(client, f"{tag}-debug")


# --- bases that cannot run the farm -----------------------------------------------------

def _elf(machine: int, text: bytes = b"") -> bytes:
    head = bytearray(64)
    head[:4], head[4], head[5] = b"\x7fELF", 2, 1
    head[18:20] = machine.to_bytes(2, "little")
    return bytes(head) + text


def _tar(entries: list[tuple[str, bytes | str]]) -> bytes:
    """Files (bytes) and symlinks (str targets)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _import(client: Any, reference: str, entries: list[tuple[str, bytes | str]]) -> None:
    repository, tag = reference.rsplit(":", 1)
    client.api.import_image_from_data(_tar(entries), repository=repository, tag=tag)


def _load_arm64(client: Any, reference: str, entries: list[tuple[str, bytes | str]]) -> None:
    """`docker import --platform` is ignored by this daemon: an image saved as arm64 is
    loaded instead."""
    layer = _tar(entries)
    config = json.dumps({"architecture": "arm64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [
                             "sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode()
    name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": name, "RepoTags": [reference],
                            "Layers": ["layer/layer.tar"]}]).encode()
    client.images.load(_tar([("layer/layer.tar", layer), (name, config),
                             ("manifest.json", manifest)]))


GLIBC = b"GNU C Library (Debian GLIBC %s) stable release version %s.\n"
Entries = List[Tuple[str, Union[bytes, str]]]
REFUSED: dict[str, tuple[str, Entries]] = {
    "musl": ("uses musl, not glibc", [("lib/ld-musl-x86_64.so.1", _elf(62)),
                                      ("lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1")]),
    "arm64": ("is for aarch64, but the builder", [
        ("lib/aarch64-linux-gnu/libc.so.6", _elf(183, GLIBC % (b"2.36-9", b"2.36"))),
        ("lib/ld-linux-aarch64.so.1", "aarch64-linux-gnu/ld-linux-aarch64.so.1")]),
    "old-glibc": ("has glibc 2.31, older than the builder's 2.36", [
        ("lib/x86_64-linux-gnu/libc-2.31.so", _elf(62, GLIBC % (b"2.31-13", b"2.31"))),
        ("lib/x86_64-linux-gnu/libc.so.6", "libc-2.31.so"),
        ("lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-2.31.so")]),
}


@pytest.mark.parametrize("kind", list(REFUSED))
def test_a_base_that_cannot_run_the_farm_is_refused(kind: str, client: Any, own: Own,
                                                     base_images: list[str],
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    words, entries = REFUSED[kind]
    final = f"pyfarm-test/{own.marker()}:{kind}"
    (_load_arm64 if kind == "arm64" else _import)(client, final, entries)
    project = own.project("print(1)\n")
    try:
        code = cli.main(["build", str(project.path), "--base", DEBIAN, "--final", final,
                         "-t", project.tag, "--network", "none"])
    finally:
        client.images.remove(final, force=True)
    err = capsys.readouterr().err
    assert code == UsageError.exit_code, err
    errors = [line for line in err.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and words in errors[0] and final in errors[0], err
    assert "step 1/" not in err  # refused before anything was built
    assert own.wait_for_containers() == [] and own.tags() == []
    assert own.temporary() == []
