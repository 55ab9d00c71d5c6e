"""A final base image (``--final``): its files read from saved layers, refused when it cannot
run the farm, and the builder's rule for which farm files it provides (a fake base-files
document; no Docker)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path, PurePosixPath

import pytest

from pyfarm_docker import cli
from pyfarm_docker.builder import basefiles, elf, ldso
from pyfarm_docker.builder.assemble import AssembleOptions, assemble, make_plan
from pyfarm_docker.builder.essentials import GROUP, PASSWD
from pyfarm_docker.builder.native import NativePlan
from pyfarm_docker.builder.plan import Planner, Usage
from pyfarm_docker.builder.tracer import TraceOptions, run_trace
from pyfarm_docker.documents.basefiles import BaseFile, BaseFiles
from pyfarm_docker.documents.manifest import FileRecord, Manifest
from pyfarm_docker.documents.trace import Trace
from pyfarm_docker.driver import finalbase
from pyfarm_docker.driver.dockerfile import DockerfileOptions, render
from pyfarm_docker.driver.settings import Settings
from pyfarm_docker.driver.target import Target
from pyfarm_docker.errors import UsageError
from tests.support.paths import REPO

DIGEST = "sha256:" + "ab" * 32
BUILDER = Target("3.11", (2, 36), "", "x86_64")
HADOLINT = Path(sys.executable).parent / "hadolint"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file(path: str) -> BaseFile:
    data = Path(path).read_bytes()
    return BaseFile(len(data), _sha(data))


# --- the document ---------------------------------------------------------------------

def test_resolve_follows_links_like_the_kernel() -> None:
    doc = BaseFiles("img", DIGEST, files={"/usr/lib/x/libc.so.6": BaseFile(1, "a")},
                    links={"/lib": "usr/lib", "/lib64/ld.so": "/lib/x/libc.so.6",
                           "/usr/lib/x/libc.so": "../x/./libc.so.6", "/loop": "/loop",
                           "/dangling": "nowhere"})
    assert doc.resolve("/lib/x/libc.so.6") == "/usr/lib/x/libc.so.6"
    assert doc.resolve("/lib64/ld.so") == "/usr/lib/x/libc.so.6"
    assert doc.resolve("/usr/lib/x/libc.so") == "/usr/lib/x/libc.so.6"
    assert doc.resolve("/usr/../lib/x/libc.so.6") == "/usr/lib/x/libc.so.6"
    assert doc.resolve("/loop") is None
    assert doc.resolve("/dangling") is None
    assert doc.resolve("/lib") is None  # a directory, not a file
    assert doc.provides("/lib/x/libc.so.6", 1, "a") == "/usr/lib/x/libc.so.6"
    assert doc.provides("/lib/x/libc.so.6", 1, "b") is None
    assert doc.reference == f"img@{DIGEST}"
    assert replace(doc, image=f"img@{DIGEST}").reference == f"img@{DIGEST}"


def test_document_round_trips_and_refuses_bad_input(tmp_path: Path) -> None:
    doc = BaseFiles("img:1", DIGEST, "amd64", "glibc", (2, 36), "x86_64",
                    {"/etc/passwd": BaseFile(3, "c" * 64)}, {"/lib": "usr/lib"})
    assert BaseFiles.loads(doc.dumps(), "doc") == doc
    path = tmp_path / "provided.json"
    data = doc.to_json()
    data["files"] = [{"path": "/x", "size": "big", "sha256": "c"}]
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="size must be an integer"):
        BaseFiles.read(path)
    path.write_text(json.dumps({**doc.to_json(), "schema_version": 9}))
    with pytest.raises(UsageError, match="schema 9"):
        BaseFiles.read(path)


def test_manifest_stays_as_it_was_without_a_base() -> None:
    record = FileRecord("/etc/passwd", 3, "c" * 64, "essential", "runtime", "essential")
    doc = Manifest("/app", "/app/python/bin/python", (), (record,), (), (), (), ())
    data = doc.to_json()
    assert "provided" not in data and "provided_by" not in data["files"][0]
    old = {k: v for k, v in data.items()}  # a manifest written before bases were inspected
    assert Manifest.loads(json.dumps(old), "m").provided == ()
    given = replace(record, layer="base", provided_by=f"img@{DIGEST}")
    with_base = replace(doc, provided=(given,))
    assert Manifest.loads(with_base.dumps(), "m") == with_base
    assert with_base.provided_bytes == 3 and with_base.total_bytes == 3


# --- reading the image's layers ---------------------------------------------------------

def _elf_head(machine: int, text: bytes = b"") -> bytes:
    """An ELF header that says little-endian 64-bit ``machine``, then ``text``."""
    head = bytearray(64)
    head[:4], head[4], head[5] = b"\x7fELF", 2, 1
    head[18:20] = machine.to_bytes(2, "little")
    return bytes(head) + text


GLIBC_236 = _elf_head(62, b"\0GNU C Library (Debian GLIBC 2.36-9+deb12u14) stable release "
                          b"version 2.36.\n")


def _layer(entries: list[tuple[str, str, bytes | str]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for kind, name, data in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                assert isinstance(data, bytes)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "link": tarfile.SYMTYPE,
                         "hard": tarfile.LNKTYPE}[kind]
            info.linkname = data if isinstance(data, str) else ""
            tar.addfile(info)
    return out.getvalue()


def _saved(*layers: bytes) -> io.BytesIO:
    """What the engine's save API gives for an image of these layers."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        names = []
        for n, layer in enumerate(layers):
            name = f"{n}/layer.tar"
            info = tarfile.TarInfo(name)
            info.size = len(layer)
            tar.addfile(info, io.BytesIO(layer))
            names.append(name)
        manifest = json.dumps([{"Config": "c.json", "Layers": names}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    out.seek(0)
    return out


def test_layers_stack_with_whiteouts_links_and_hardlinks() -> None:
    lower = _layer([("dir", "etc", ""), ("file", "etc/passwd", b"old\n"),
                    ("file", "etc/gone", b"x"), ("dir", "opt/d", ""),
                    ("file", "opt/d/a", b"a"), ("file", "lib/x86_64-linux-gnu/libc.so.6",
                                                GLIBC_236),
                    ("link", "lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld.so")])
    upper = _layer([("file", "./etc/passwd", b"new\n"), ("file", "etc/.wh.gone", b""),
                    ("file", "opt/d/.wh..wh..opq", b""), ("file", "opt/d/b", b"b"),
                    ("hard", "opt/b2", "opt/d/b")])
    doc = finalbase.read_saved(_saved(lower, upper), "img:1", DIGEST, "amd64")
    assert doc.files["/etc/passwd"] == BaseFile(4, _sha(b"new\n"))
    assert "/etc/gone" not in doc.files
    assert "/opt/d/a" not in doc.files and doc.files["/opt/d/b"] == BaseFile(1, _sha(b"b"))
    assert doc.files["/opt/b2"] == doc.files["/opt/d/b"]
    assert doc.links["/lib64/ld-linux-x86-64.so.2"] == "/lib/x86_64-linux-gnu/ld.so"
    assert (doc.libc, doc.glibc, doc.machine) == ("glibc", (2, 36), "x86_64")
    finalbase.check_runs_farm(doc, BUILDER, "builder:1")


def _base(*entries: tuple[str, str, bytes | str], architecture: str = "amd64") -> BaseFiles:
    return finalbase.read_saved(_saved(_layer(list(entries))), "final:1", DIGEST,
                                architecture)


def _refusal(doc: BaseFiles) -> str:
    with pytest.raises(UsageError) as caught:
        finalbase.check_runs_farm(doc, BUILDER, "builder:1")
    assert caught.value.exit_code == 2
    assert "\n" not in caught.value.message
    return caught.value.message


def test_a_base_that_cannot_run_the_farm_is_refused_in_one_line() -> None:
    musl = _base(("file", "lib/ld-musl-x86_64.so.1", _elf_head(62)),
                 ("link", "lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1"))
    assert "uses musl, not glibc" in _refusal(musl)
    arm = _base(("file", "lib/aarch64-linux-gnu/libc.so.6",
                 _elf_head(183, b"GNU C Library (Debian GLIBC 2.36-9) release version 2.36.")),
                architecture="arm64")
    assert "'final:1' is for aarch64, but the builder 'builder:1' is x86_64" in _refusal(arm)
    assert "is for aarch64" in _refusal(replace(arm, architecture="amd64"))  # its libc says
    assert "is for aarch64" in _refusal(replace(arm, machine=""))  # its config says
    old = _base(("file", "lib/x86_64-linux-gnu/libc-2.31.so", _elf_head(62)),
                ("link", "lib/x86_64-linux-gnu/libc.so.6", "libc-2.31.so"))
    assert old.glibc == (2, 31)  # from the file name, without a version string
    assert "has glibc 2.31, older than the builder's 2.36" in _refusal(old)
    newer = _base(("file", "lib/x86_64-linux-gnu/libc.so.6", _elf_head(
        62, b"GNU C Library (Debian GLIBC 2.41-12) stable release version 2.41.")))
    finalbase.check_runs_farm(newer, BUILDER, "builder:1")
    static = _base(("file", "etc/passwd", b"root:x:0:0::/:/none\n"))  # no C library at all
    assert static.libc == "" and static.glibc is None
    finalbase.check_runs_farm(static, BUILDER, "builder:1")


def test_the_dockerfile_copies_the_document_only_when_there_is_one(tmp_path: Path) -> None:
    settings = Settings(Path("/demo"), base="local/python:3.11-bookworm",
                        final="local/distroless-base:debian12")
    plain = render(DockerfileOptions(settings))
    given = render(finalbase.provide_final_base(DockerfileOptions(settings), _base()))
    assert "provided.json" not in plain
    assert f"COPY .pyfarm/{finalbase.FILE} /pyfarm/provided.json" in given
    assert '"--provided", "/pyfarm/provided.json"' in given
    assert given.replace(given[given.index("# What local"):given.index("# Lay the farm")],
                         "").replace(', "--provided", "/pyfarm/provided.json"', "") == plain
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(given)
    done = subprocess.run([str(HADOLINT), "--no-color", str(dockerfile)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout


def test_the_distroless_base_has_the_farms_users() -> None:
    """make-base-image writes the farm's own passwd and group, so they are provided."""
    script = (REPO / "scripts" / "make-base-image").read_text()
    assert f"NONROOT_PASSWD='{PASSWD.rstrip()}'" in script
    assert f"NONROOT_GROUP='{GROUP.rstrip()}'" in script


# --- the builder's rule, on a fake graph ----------------------------------------------

def _info(path: str, soname: str = "", needed: tuple[str, ...] = (),
          runpath: tuple[str, ...] = ()) -> elf.ElfInfo:
    return elf.ElfInfo(path, soname, needed, (), runpath, "", "EM_X86_64", 64)


@pytest.fixture
def fake_objects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                 ) -> tuple[dict[str, str], dict[str, elf.ElfInfo]]:
    """Files standing for ELF objects (their ELF facts faked): name -> path."""
    paths, infos = {}, {}
    for name, needed, runpath in [("libc.so.6", (), ()), ("libm.so.6", ("libc.so.6",), ()),
                                  ("libz.so.1", ("libc.so.6",), ()),
                                  ("libssl.so.3", ("libcrypto.so.3", "libc.so.6"), ()),
                                  ("libcrypto.so.3", ("libc.so.6",), ()),
                                  ("libown.so.1", ("libc.so.6",), ("/opt/own",)),
                                  ("libother.so.1", ("libc.so.6",), ())]:
        path = tmp_path / "lib" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(name.encode() * 10)
        paths[name] = str(path)
        infos[str(path)] = _info(str(path), name, needed, runpath)
    monkeypatch.setattr(elf, "read", lambda p: infos[p])
    return paths, infos


def _natives(tmp_path: Path, paths: dict[str, str], infos: dict[str, elf.ElfInfo]
             ) -> NativePlan:
    planner = Planner(PurePosixPath("/app"), Usage(frozenset(), frozenset(), frozenset(),
                                                   frozenset()))
    natives = NativePlan(planner, ldso.Resolver(cache={}), PurePosixPath("app/python/bin/python"))
    by_soname = {i.soname: p for p, i in infos.items()}
    for path, info in infos.items():
        natives.names[path] = info.soname
        natives.graph[path] = ldso.Node(path, {n: by_soname[n] for n in info.needed})
    return natives


def _base_of(paths: dict[str, str], names: list[str], differ: tuple[str, ...] = ()
             ) -> BaseFiles:
    files = {}
    for name in names:
        f = _file(paths[name])
        files[paths[name]] = replace(f, sha256="0" * 64) if name in differ else f
    return BaseFiles("final:1", DIGEST, files=files)


def test_provided_objects_follow_the_rule(tmp_path: Path, fake_objects: tuple[
        dict[str, str], dict[str, elf.ElfInfo]]) -> None:
    paths, infos = fake_objects
    natives = _natives(tmp_path, paths, infos)
    everything = _base_of(paths, list(paths))
    got = set(basefiles.provided_objects(natives, everything))
    # libown has a RUNPATH of its own: the loader would search it first, unpatched.
    assert got == {paths[n] for n in paths if n != "libown.so.1"}
    # A base file that differs is not used; what needs it stays in the farm too.
    differs = _base_of(paths, list(paths), differ=("libcrypto.so.3",))
    assert paths["libssl.so.3"] not in basefiles.provided_objects(natives, differs)
    # Without glibc in the base, nothing that needs it can come from there.
    assert basefiles.provided_objects(natives, _base_of(paths, ["libm.so.6", "libz.so.1"])) == {}
    # A name that reaches two files: the loader may take either, so both stay.
    natives.by_name["libz.so.1"] = paths["libother.so.1"]
    got = set(basefiles.provided_objects(natives, everything))
    assert paths["libz.so.1"] not in got and paths["libother.so.1"] not in got
    assert paths["libc.so.6"] in got


# --- the builder's rule, on a real trace ----------------------------------------------

APP = "import json, ssl\nprint(json.dumps({'ssl': ssl.OPENSSL_VERSION_INFO[0]}))\n"


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("traced")
    (work / "src").mkdir()
    (work / "src" / "app.py").write_text(APP)
    run_trace(TraceOptions((sys.executable, "app.py"), work / "trace.json", cwd=work / "src"))
    return work / "trace.json"


def _needed_by(obj: str, name: str) -> str:
    found = ldso.Resolver().resolve(name, elf.read(obj))
    assert found is not None, f"{obj} needs {name}"
    return os.path.realpath(found)


def _unmerged(real: str) -> str:
    """Where an unmerged base (like distroless) holds a library of the builder's."""
    return basefiles.aliases(real)[-1]


def _target(dest: PurePosixPath, link: str) -> PurePosixPath:
    return PurePosixPath(os.path.normpath(os.path.join(str(dest.parent), link)))


def test_a_farm_on_a_base_uses_its_identical_files(traced: Path, tmp_path: Path) -> None:
    trace = Trace.read(traced)
    ssl_module = next(m for m in trace.mapped if "/_ssl." in m)
    libc = _needed_by(ssl_module, "libc.so.6")
    libssl, libcrypto = _needed_by(ssl_module, "libssl.so.3"), _needed_by(ssl_module,
                                                                            "libcrypto.so.3")
    libm = _needed_by(libcrypto, "libc.so.6").replace("libc.so.6", "libm.so.6")
    loader = elf.read(os.path.realpath(trace.interpreter.executable)).interpreter
    base = BaseFiles(
        "final:1", DIGEST,
        files={**{_unmerged(p): _file(p) for p in (libc, libm, libssl)},
               _unmerged(os.path.realpath(loader)): _file(os.path.realpath(loader)),
               _unmerged(libcrypto): BaseFile(1, "0" * 64),  # a different libcrypto
               "/etc/passwd": BaseFile(len(PASSWD), _sha(PASSWD.encode())),
               "/etc/group": BaseFile(3, _sha(b"no\n"))},
        links={loader: _unmerged(os.path.realpath(loader))})
    doc = tmp_path / "provided.json"
    doc.write_text(base.dumps())
    options = AssembleOptions(traced, tmp_path / "out", provided=doc)
    plan = make_plan(trace, options)
    assert plan.base is not None and plan.base.reference == f"final:1@{DIGEST}"
    provided = {f.path for f in plan.base.files}
    assert {_unmerged(libc), "/etc/passwd", loader} <= provided
    assert _unmerged(libssl) not in provided  # it needs the libcrypto the base lacks
    assert "/etc/group" not in provided  # not the same bytes
    entries = {e.dest: e for e in plan.entries}
    shipped = {os.path.realpath(e.source) for e in plan.entries if e.kind == "file"}
    assert libc not in shipped and libssl in shipped and libcrypto in shipped
    assert PurePosixPath("etc/passwd") not in entries
    assert PurePosixPath(loader.lstrip("/")) not in entries
    python_libc = entries[PurePosixPath("app/symlinks/python/libc.so.6")]
    assert _target(python_libc.dest, python_libc.target) == PurePosixPath(
        _unmerged(libc).lstrip("/"))
    assert not any(e.dest.name == "libc.so.6" for e in plan.rpaths)
    manifest = assemble(options)
    records = {f.path: f for f in manifest.provided}
    assert records[_unmerged(libc)].provided_by == f"final:1@{DIGEST}"
    assert records[_unmerged(libc)].layer == "base"
    assert not any(f.path == _unmerged(libc) for f in manifest.files)
    out = tmp_path / "out"
    assert not (out / _unmerged(libc).lstrip("/")).exists()  # the stand-in went again
    cache = subprocess.run(["ldconfig", "-p", "-C", str(out / "etc" / "ld.so.cache")],
                           capture_output=True, text=True, check=False).stdout
    assert f"=> {_unmerged(libc)}" in cache or "ld_library_paths/l/libc.so.6" in cache


def test_assemble_reads_the_document_from_the_command_line(
        traced: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    passwd = BaseFiles("final:1", DIGEST, files={
        "/etc/passwd": BaseFile(len(PASSWD), _sha(PASSWD.encode()))})
    doc = tmp_path / "provided.json"
    doc.write_text(passwd.dumps())
    out = tmp_path / "out"
    assert cli.main(["assemble", str(traced), "-o", str(out), "--provided", str(doc)]) == 0
    assert "provides 1 more files" in capsys.readouterr().err
    assert not (out / "etc" / "passwd").exists() and (out / "etc" / "group").exists()
    doc.write_text("{}")
    code = cli.main(["assemble", str(traced), "-o", str(tmp_path / "o2"), "--provided",
                     str(doc)])
    assert code == UsageError.exit_code
