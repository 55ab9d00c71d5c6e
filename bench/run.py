"""Benchmark (issue 14): image size against the touched set, --prune, the builder, a
hand-written slim multi-stage image and PyInstaller; compressed sizes; start-up; trace,
assemble and build times; the tracer's overhead; incremental rebuilds; verify --import-all.

"Touched" is measured by strace inside the builder image, not by the tool's tracer: the
bytes of the regular files a run of the app (the traced command: entry and trace args, in
/src with the builder's venv python) opened successfully or executed, with the ELF
interpreter of every executed program. strace comes from the host's apt (with its own
libraries, loader and libc, run through that loader, so it works on any base) and is
bind-mounted read-only into the container.

Prints two tables and writes them to bench/RESULTS.md (or --output). Targets are printed
next to each figure as pass/FAIL; nothing here is tuned to meet them.
Usage: python bench/run.py [--cases NAME,...] [--runs N] [--output FILE] [CASE_DIR...]
       (default: the corpus and bench/scale)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import zlib
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import IO, Any, Callable, Iterator, Sequence

import docker.errors

from pyfarm_docker import runtime
from pyfarm_docker.documents.manifest import FileRecord, Manifest
from pyfarm_docker.documents.spec import AppSpec
from pyfarm_docker.driver import engine, report, verify, wheelhouse
from pyfarm_docker.driver.dockerfile import DockerfileOptions
from pyfarm_docker.driver.imagebuild import BuildOptions, BuildResult, build_image
from pyfarm_docker.driver.settings import Flags, Settings, resolve
from pyfarm_docker.driver.target import Target
from pyfarm_docker.errors import PyfarmError
from pyfarm_docker.runtime import BUILDER_PYTHON, BUILDER_SOURCE, LAYERS

HERE = Path(__file__).resolve().parent
CORPUS = Path(os.environ.get("PYFARM_CORPUS", HERE.parent.parent / "shared" / "corpus"))
BASE = "local/python:3.11-bookworm"
STARTUP_MIN_RUNS = 10  # of each image, interleaved, for a verdict (issue 14)
# More by default: on 2 shared cores `docker run` alone varies by a few hundred ms.
STARTUP_RUNS = 20
# plain, traced, shim and native runs in the builder, interleaved: with 9 (5 before), a case's
# plain median moved by a quarter between bench runs. A multiple of 4: see _IN_BUILDER's order.
OVERHEAD_RUNS = 16
MB = 1e6

# Targets (issue 14). The default farm's ratio to the touched set applies where the
# touched set is over 20 MB, and where the fixed runtime dominates with its own figure.
FARM_TARGET = 1.5
FARM_TARGET_MIN_TOUCHED = 20e6
FARM_TARGET_BY_CASE = {"ctypes_dlopen": 1.75, "module_entry": 1.75}
PRUNE_TARGET = 1.2
PRUNE_TARGET_BY_CASE = {"ctypes_dlopen": 1.3}
TRACE_ASSEMBLE_TARGET_BY_CASE = {"pandas_frame": 8.0, "scale": 25.0}
OVERHEAD_TARGET = 1.2
NATIVE_TARGET_BY_CASE = {"pandas_frame": 2.0}  # issue 15: shim + native tracer / plain
STARTUP_TARGET = 1.0
INCREMENTAL_TARGET = 1e6

_STEP = re.compile(r"\[\s*([\d.]+)s\] step \d+/\d+ \((\w+)\): (.*)")
_SLIM = """FROM {base} AS build
COPY wheelhouse/ /wh/
COPY requirements.txt /r.txt
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -q --no-index --find-links /wh -r /r.txt
FROM {base}
COPY --from=build /opt/venv /opt/venv
COPY app/ /src/
"""
# PyInstaller needs objdump and a shared libpython (Debian's python3 is static); the offline
# builder gets them as debs the host fetched (the host may be a security update ahead of the
# base, hence --force-depends).
_BINUTILS = ("binutils", "binutils-common", "binutils-x86-64-linux-gnu", "libbinutils",
             "libctf-nobfd0", "libctf0", "libgprofng0", "libjansson4")
# The frozen apps are only measured (du), never run. Should anyone run one: a frozen app
# with a spawn multiprocessing pool and no freeze_support() re-runs itself in every child
# and forks without end (design.md 8), so each is frozen with a runtime hook that calls it.
_FREEZE_SUPPORT = "import multiprocessing\nmultiprocessing.freeze_support()\n"
_PYI = """FROM {base}
COPY debs/ /debs/
RUN dpkg --force-depends -i /debs/*.deb > /dev/null 2>&1
COPY wheelhouse/ /wh/
COPY requirements.txt /r.txt
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -q --no-index --find-links /wh \\
    -r /r.txt pyinstaller
COPY app/ /src/
COPY freeze_support.py /pyfarm-bench/freeze_support.py
WORKDIR /src
RUN /opt/venv/bin/pyinstaller --log-level WARN --onedir --noconfirm --distpath /out \\
        --runtime-hook /pyfarm-bench/freeze_support.py --name app {script} \\
    && du -sb /out/app | cut -f1 > /out/SIZE
# Its pure-Python modules, zlib-compressed: the archive appended to the executable, and
# base_library.zip.
RUN stat -c %s /out/app/app /out/app/_internal/base_library.zip \
    | awk '{{s += $1}} END {{print s}}' > /out/MODULES
"""
# strace on the host's apt; its libraries (and the host's loader and libc) go with it.
_STRACE_DEBS = ("strace", "libunwind8")
_STRACE_MOUNT = PurePosixPath("/opt/strace")
_STRACE_CACHE = Path.home() / ".cache/pyfarm-docker/bench-strace"

# Functions of the in-builder script, apart so that a unit test can run them on their own.
_STRACE_PARSER = r"""
import struct

def parse_strace(lines):
    # The paths of `strace -f -y` lines: files opened without error (the kernel's own path,
    # from -y's decoration of the returned fd) and programs executed. Opens for writing or
    # creating do not count: what the run writes is not what the image must hold.
    opened, executed, pending = set(), set(), {}
    for line in lines:
        pid, _, call = line.strip().partition(" ")
        call = call.strip()
        if call.startswith("execve("):
            path = call[len('execve("'):].split('"', 1)[0]
            if call.endswith("<unfinished ...>"):
                pending[pid] = path
            elif call.endswith(" = 0"):
                executed.add(path)
        elif call.startswith("<... execve resumed>"):
            if call.endswith(" = 0") and pid in pending:
                executed.add(pending.pop(pid))
        elif call.startswith(("open", "<... open")) and call.endswith(">"):
            head, sep, result = call.rpartition(") = ")
            if not sep or not result[:1].isdigit() or "<" not in result:
                continue
            if any(f in head.rpartition('", ')[2] for f in ("O_WRONLY", "O_CREAT", "O_TRUNC")):
                continue
            opened.add(result.split("<", 1)[1][:-1])
    return opened, executed

def elf_interp(path):
    # PT_INTERP of an ELF executable: the kernel maps the loader, no open() shows it.
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:
                return None
            phoff, = struct.unpack_from("<Q", head, 0x20)
            size, count = struct.unpack_from("<HH", head, 0x36)
            for i in range(count):
                f.seek(phoff + i * size)
                kind, _, offset, _, _, filesz = struct.unpack("<IIQQQQ", f.read(40))
                if kind == 3:
                    f.seek(offset)
                    return f.read(filesz).rstrip(b"\0").decode()
    except OSError:
        return None
    return None
"""
# Runs in the builder image with the tool's own venv python (for pyfarm_docker.serve and the
# app spec): the app's plain run and its run under `pyfarm-docker trace`, interleaved, timed
# from start to exit (a server: to its answers, stopped with SIGTERM as trace stops it);
# then one run under strace, and the sizes of what it touched. Prints JSON.
_IN_BUILDER = _STRACE_PARSER + r"""
import json, os, signal, socket, statistics, subprocess, sys, time
from pyfarm_docker import serve
from pyfarm_docker.documents.spec import AppSpec
req = json.loads(sys.argv[1])
with open(req["spec"]) as f:
    spec = AppSpec.loads(f.read(), req["spec"])
app = [req["python"], *spec.entry, *spec.traced_args]

def wait_for_port(port, deadline, proc):
    # serve.wait_for_port polls every 100 ms: too coarse to time a start-up.
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.01)
    return False

def run(cmd, server, env=None):
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=req["cwd"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True, env=env)
    if server:
        status = 0 if wait_for_port(spec.port, started + 60, proc) else 1
        for probe in spec.probes if status == 0 else ():
            serve.send(probe, spec.port)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
    else:
        _, err = proc.communicate(timeout=900)
        status = proc.returncode
    if status != 0:
        sys.exit("%s failed (%s): %s" % (cmd[:3], status, err.decode()[-2000:]))
    return time.monotonic() - started

server = spec.port is not None
traced = [req["tool"], "trace", "--spec", req["spec"], "-o", "/tmp/bench-trace.json", "--",
          req["python"]]
# The app's own run under the trace shim alone: what tracing adds to the app, without the
# tool's start, the interpreter description and writing trace.json.
from pyfarm_docker.builder.tracer import SHIM_DIR
from pathlib import Path
from pyfarm_docker.builder.nativelog import wrap
shimmed = dict(os.environ, PYFARM_TRACE_LOG="/tmp/bench-shim.log", PYTHONPATH=str(SHIM_DIR))
# The app under the shim and the native file tracer, as `trace` runs it (issue 15).
native = list(wrap(tuple(app), Path("/tmp/bench-native.log")))
plain_s, traced_s, shim_s, native_s = [], [], [], []
run(app, server)  # warm the page cache
# Each kind follows each other kind equally often (a Williams square): a run after the heavy
# traced one is not always the shim's.
ORDERS = ((0, 1, 3, 2), (1, 2, 0, 3), (2, 3, 1, 0), (3, 0, 2, 1))
for n in range(req["runs"]):
    for which in ORDERS[n % 4]:
        if which == 0:
            plain_s.append(run(app, server))
        elif which == 1:
            traced_s.append(run(traced, False))
        elif which == 2:
            shim_s.append(run(app, server, shimmed))
        else:
            native_s.append(run(native, server, shimmed))
log = "/tmp/bench-strace.log"
run(req["strace"] + ["-f", "-qq", "-y", "-e", "trace=open,openat,openat2,execve", "-o", log,
                     "--"] + app, server)

with open(log, errors="replace") as f:
    opened, executed = parse_strace(f)

paths = set(opened)
for path in executed:
    paths.add(os.path.join(req["cwd"], path))
    loader = elf_interp(os.path.join(req["cwd"], path))
    if loader:
        paths.add(loader)
files = {}
for path in paths:
    real = os.path.realpath(path)
    if real.startswith(("/proc/", "/sys/", "/dev/", "/tmp/")) or not os.path.isfile(real):
        continue
    files[real] = os.path.getsize(real)
print(json.dumps({
    "plain_s": statistics.median(plain_s), "traced_s": statistics.median(traced_s),
    "shim_s": statistics.median(shim_s), "native_s": statistics.median(native_s),
    "native_runs": native_s, "plain_runs": plain_s, "traced_runs": traced_s,
    "shim_runs": shim_s,
    "touched": sum(files.values()), "touched_files": len(files),
    "touched_tzdata": sum(s for p, s in files.items() if p.startswith("/usr/share/zoneinfo/")),
    "touched_ca": files.get(os.path.realpath(req["ca"]), 0),
    "touched_floor_paths": [p for p in req["floor_paths"] if os.path.realpath(p) in files],
    "touched_largest": sorted(files.items(), key=lambda f: -f[1])[:8],
}))
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def step_seconds(lines: list[str], word: str) -> float | None:
    """How long the build step whose instruction contains ``word`` ran."""
    steps = [(float(m.group(1)), m.group(3)) for m in map(_STEP.search, lines) if m]
    for (start, text), (end, _) in zip(steps, steps[1:]):
        if word in text:
            return end - start
    return None


def build(settings: Settings, tag: str, no_cache: bool) -> tuple[BuildResult, list[str]]:
    lines: list[str] = []
    options = BuildOptions(DockerfileOptions(settings), tag=tag, network="none", verify=True,
                           no_cache=no_cache)
    return build_image(options, report=lines.append), lines


# --- strace in the builder ------------------------------------------------------------------

def apt_unpack(packages: list[str], cache: Path) -> Path:
    """Debian packages from the host's apt, unpacked afresh into ``cache``/unpacked."""
    shutil.rmtree(cache, ignore_errors=True)
    debs, unpacked = cache / "debs", cache / "unpacked"
    debs.mkdir(parents=True)
    apt_download(packages, debs)
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
    return unpacked


def apt_download(packages: list[str], into: Path) -> None:
    """Debian packages' .deb files from the host's apt, its lists brought up to date first
    where they do not know them (a fresh machine may have none)."""
    download = ["apt-get", "download", "-qq", *packages]
    if subprocess.run(download, cwd=into, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(download, cwd=into, check=True, capture_output=True)


def strace_dir() -> Path:
    """strace with every library it needs, the host's loader and libc among them:
    bin/strace and lib/, cached. Run as ``lib/ld-linux-x86-64.so.2 --library-path lib
    bin/strace``, it does not depend on the image's libc."""
    root = _STRACE_CACHE / "root"
    if (root / "bin" / "strace").exists():
        return root
    unpacked = apt_unpack(list(_STRACE_DEBS), _STRACE_CACHE)
    staging = _STRACE_CACHE / "staging"
    (staging / "lib").mkdir(parents=True)
    (staging / "bin").mkdir()
    shutil.copy(unpacked / "usr/bin/strace", staging / "bin" / "strace")
    libs = sorted({str(p.parent) for p in unpacked.rglob("*.so*")})
    ldd = subprocess.run(["ldd", str(unpacked / "usr/bin/strace")], capture_output=True,
                         text=True, check=True, env={"LD_LIBRARY_PATH": ":".join(libs)})
    for line in ldd.stdout.splitlines():
        words = line.split()
        path = words[2] if "=>" in words and len(words) > 2 else words[0] if words else ""
        if path.startswith(("/", str(unpacked))):
            name = words[0] if "=>" in words else Path(path).name
            shutil.copy(Path(path).resolve(), staging / "lib" / Path(name).name)
    if not list((staging / "lib").glob("ld-linux*")):
        raise RuntimeError(f"no loader in ldd's answer for strace:\n{ldd.stdout}")
    staging.rename(root)
    return root


def measure_in_builder(client: Any, builder: str, strace: Path, runs: int,
                       floor_paths: list[str]) -> dict[str, Any]:
    """Plain and traced run times of the app in its builder image, its touched set, and
    which of ``floor_paths`` it touched."""
    loader = sorted((strace / "lib").glob("ld-linux*"))[0].name
    command = [str(_STRACE_MOUNT / "lib" / loader), "--library-path",
               str(_STRACE_MOUNT / "lib"), str(_STRACE_MOUNT / "bin" / "strace")]
    request = {"spec": str(runtime.BUILDER_SPEC), "python": str(BUILDER_PYTHON),
               "cwd": str(BUILDER_SOURCE), "tool": str(runtime.BUILDER_TOOL),
               "strace": command, "runs": runs, "ca": str(runtime.CA_BUNDLE),
               "floor_paths": floor_paths}
    kwargs: dict[str, Any] = {
        "entrypoint": [str(runtime.BUILDER_TOOL.parent / "python")],
        "command": ["-c", _IN_BUILDER, json.dumps(request)],
        "volumes": {str(strace): {"bind": str(_STRACE_MOUNT), "mode": "ro"}},
        "network_mode": "none", "working_dir": str(BUILDER_SOURCE), "remove": True}
    try:
        out = client.containers.run(builder, **kwargs)
    except docker.errors.ContainerError as exc:
        if b"ptrace" not in (exc.stderr or b"") and b"not permitted" not in (exc.stderr or b""):
            raise
        # Docker's default seccomp profile allows ptrace of one's own children on recent
        # kernels; older ones need the capability.
        out = client.containers.run(builder, cap_add=["SYS_PTRACE"], **kwargs)
    result: dict[str, Any] = json.loads(out)
    return result


# --- sizes ----------------------------------------------------------------------------------

def _layers(client: Any, image: str) -> Iterator[IO[bytes]]:
    """The image's layers, as uncompressed tar streams, bottom first."""
    with tempfile.TemporaryFile() as saved:
        for chunk in client.images.get(image).save(named=False):
            saved.write(chunk)
        saved.seek(0)
        with tarfile.open(fileobj=saved) as archive:
            manifest = _member(archive, "manifest.json")
            for layer in json.load(manifest)[0]["Layers"]:
                yield _member(archive, layer)


def gzip_bytes(client: Any, image: str) -> int:
    """What a registry stores: the image's layers, each gzip-compressed (level 6)."""
    total = 0
    for stream in _layers(client, image):
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
        chunk = stream.read(1 << 20)
        while chunk:
            total += len(compressor.compress(chunk))
            chunk = stream.read(1 << 20)
        total += len(compressor.flush())
    return total


def pyc_zlib_bytes(client: Any, image: str) -> int:
    """The image's .pyc, each zlib-compressed at level 6, as PyInstaller's module archive
    (PYZ) stores modules."""
    total = 0
    for stream in _layers(client, image):
        with tarfile.open(fileobj=stream, mode="r|") as layer:
            for member in layer:
                data = layer.extractfile(member) if member.name.endswith(".pyc") else None
                if data is not None:
                    total += len(zlib.compress(data.read(), 6))
    return total


def _member(archive: tarfile.TarFile, name: str) -> IO[bytes]:
    stream = archive.extractfile(name)
    assert stream is not None, name
    return stream


RUNTIME_FLOOR = ("interpreter", "libc", "loader", "tzdata", "ca")
# What every default farm ships besides the runtime floor, whatever the app: the other
# essential files (ldconfig, NSS, gconv, /etc files, the SBOM), the stdlib modules shipped
# only so that they import (the stdlib zip among them, and untraced lib-dynload modules),
# and the native libraries only those untraced stdlib extension modules need.
COMPLETENESS_FLOOR = ("essentials", "stdlib", "stdlib_closure")


def floor_part(f: FileRecord, reals: dict[str, FileRecord]) -> str | None:
    """Which part of the default farm's floor a manifest file belongs to, if any.
    ``reals``: the farm's native objects by file name, to follow "closure of X" to X. The
    manifest names one X per library: one it names a distribution's module for counts for
    the app even if an untraced stdlib module needs it too, so the floor errs low."""
    name = PurePosixPath(f.path).name
    if f.origin == "interpreter" or name.startswith("libpython"):
        return "interpreter"
    if name.startswith("libc.so"):
        return "libc"
    if name.startswith("ld-linux"):
        return "loader"
    if f.path.startswith("/usr/share/zoneinfo/"):
        return "tzdata"
    if f.path == str(runtime.CA_BUNDLE):
        return "ca"
    if f.reason == "essential":
        return "essentials"
    if f.reason == "complete" and f.origin == "stdlib":
        return "stdlib"
    seen = {f.path}
    while f.reason.startswith("closure of "):
        # The manifest names one object that needs it; follow to the end of that chain.
        user = reals.get(f.reason[len("closure of "):])
        if user is None or user.path in seen:
            return None
        seen.add(user.path)
        f = user
    if f.reason == "essential":
        return "essentials"
    if f.reason == "complete" and f.origin == "stdlib":
        return "stdlib_closure"
    return None


def floor_files(manifest: Manifest) -> dict[str, list[FileRecord]]:
    """The default farm's floor, by part (RUNTIME_FLOOR, then COMPLETENESS_FLOOR)."""
    reals = {PurePosixPath(f.path).name: f for f in manifest.files
             if PurePosixPath(f.path).parent.name == "r"}
    parts: dict[str, list[FileRecord]] = {k: [] for k in RUNTIME_FLOOR + COMPLETENESS_FLOOR}
    for f in manifest.files:
        part = floor_part(f, reals)
        if part is not None:
            parts[part].append(f)
    return parts


def floor_bytes(manifest: Manifest) -> dict[str, int]:
    return {k: sum(f.size for f in files) for k, files in floor_files(manifest).items()}


def kept_sources(manifest: Manifest) -> int:
    """Bytes of the .py files the default farm ships beside their .pyc: the sources of
    imported modules, kept for tracebacks' source lines (issue 14). The run read the .pyc,
    so strace does not count them; they depend on the app, so they are no floor either."""
    compiled = {(PurePosixPath(f.path).parent.parent, PurePosixPath(f.path).name.split(".")[0])
                for f in manifest.files
                if f.path.endswith(".pyc") and PurePosixPath(f.path).parent.name == "__pycache__"}
    return sum(f.size for f in manifest.files if f.path.endswith(".py")
               and (PurePosixPath(f.path).parent, PurePosixPath(f.path).stem) in compiled)


def floor_system_paths(manifest: Manifest) -> list[str]:
    """The floor's essential files outside the prefix (/sbin/ldconfig, /etc/services, ...):
    strace in the builder tells which of them the run touched there too. Those under the
    prefix are the tool's own (SBOM, sitecustomize): no run touches them."""
    prefix = manifest.prefix.rstrip("/") + "/"
    return sorted(f.path for f in floor_files(manifest)["essentials"]
                  if not f.path.startswith(prefix))


# --- start-up -------------------------------------------------------------------------------

PORT_POLL_S = 0.01


def wait_for_port(port: int, deadline: float, alive: Callable[[], bool]) -> bool:
    """serve.wait_for_port polls every 100 ms, which quantised servers' start-up times into
    100 ms steps (flask_server: every run 303, 403 or 503 ms): poll every 10 ms here (and
    in the builder, for the tracer's overhead)."""
    while time.monotonic() < deadline and alive():
        if _port_open(port):
            return True
        time.sleep(PORT_POLL_S)
    return False


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def first_line_ms(argv: list[str], port: int | None) -> float:
    """Time to the first output line, or for a server to its open port."""
    name = f"pyfarm-bench-{time.monotonic_ns()}"
    started = time.monotonic()
    proc = subprocess.Popen([*argv[:2], "--name", name, *argv[2:]], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    try:
        if port is None:
            proc.stdout.readline()
        else:
            wait_for_port(port, started + 60, lambda: proc.poll() is None)
        return (time.monotonic() - started) * 1000
    finally:
        # Killing `docker run` leaves its container running: remove it by name.
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        proc.kill()
        proc.wait()


def startup(image: str, builder: str, spec: AppSpec, runs: int) -> dict[str, Any]:
    """Median start-up of the image and of the app in its builder, over ``runs`` runs of
    each, interleaved (the order alternating), after one untimed run of each."""
    net = ["--network", "host" if spec.kind == "server" else "none"]
    final = ["docker", "run", "--rm", *net, image]
    plain = ["docker", "run", "--rm", *net, "-w", str(BUILDER_SOURCE), "--entrypoint",
             str(BUILDER_PYTHON), builder, *spec.entry, *spec.checked_args]
    first_line_ms(final, spec.port)
    first_line_ms(plain, spec.port)
    load = os.getloadavg()[0]  # the machine's load beside the figures: it is shared
    times: dict[str, list[float]] = {"final": [], "builder": []}
    for n in range(runs):
        order = (("final", final), ("builder", plain))
        for which, argv in order if n % 2 == 0 else order[::-1]:
            times[which].append(first_line_ms(argv, spec.port))
    return {"final_ms": statistics.median(times["final"]),
            "builder_ms": statistics.median(times["builder"]),
            "final_runs_ms": times["final"], "builder_runs_ms": times["builder"],
            "startup_load": [load, os.getloadavg()[0]]}


# The process alone: a container of each image idles on its own python, which times the
# app's command in a child, exec'd once a run. Creating the container (the same work for both
# images) is most of `docker run`'s time and spread, `docker exec` adds 50 ms of its own.
EXEC_RUNS = 60  # of each, or fewer past EXEC_BUDGET_S (scale's runs take 2.6 s)
EXEC_BUDGET_S = 150
_IDLE = ["-c", "import time; time.sleep(1e9)"]
_TIME_ONE_RUN = """
import json, os, signal, socket, subprocess, sys, time
cmd, port = json.loads(sys.argv[1]), json.loads(sys.argv[2])
started = time.monotonic()
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        start_new_session=True)
if port is None:
    proc.stdout.readline()
else:
    while proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:  # a refused connection costs 0.1 ms: 10 ms steps blurred 5% of 200
            time.sleep(0.001)
elapsed = (time.monotonic() - started) * 1000
if port is not None and proc.poll() is None:
    os.killpg(proc.pid, signal.SIGKILL)
proc.communicate()
print(elapsed if port is None or proc.returncode == -signal.SIGKILL else "no port")
"""


def _sides(client: Any, image: str, builder: str,
           spec: AppSpec) -> dict[str, tuple[str, list[str], dict[str, str]]]:
    """Each image's tag, the app's command in it and the container's extra settings: the
    final image's entrypoint and command; in the builder, its venv's python on the same
    arguments, in the source directory."""
    config = client.images.get(image).attrs["Config"]
    final_cmd = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
    return {"final": (image, final_cmd, {}),
            "builder": (builder, [str(BUILDER_PYTHON), *spec.entry, *spec.checked_args],
                        {"working_dir": str(BUILDER_SOURCE)})}


def exec_startup(client: Any, image: str, builder: str, spec: AppSpec,
                 runs: int) -> dict[str, Any]:
    """The app's process start-up in each image, ``runs`` times in one container of each
    (fewer once EXEC_BUDGET_S are spent, never under 2 * STARTUP_MIN_RUNS), interleaved (the
    order alternating), after one untimed run of each."""
    sides = _sides(client, image, builder, spec)
    net = "host" if spec.kind == "server" else "none"
    containers: dict[str, Any] = {}
    times: dict[str, list[float]] = {"final": [], "builder": []}
    try:
        for which, (tag, cmd, extra) in sides.items():
            # No HEALTHCHECK (a server's final image has one): its probe, a python started
            # every 30 s in the final's container only, would land in some timed runs.
            containers[which] = client.containers.run(
                tag, _IDLE, entrypoint=cmd[:1], network_mode=net, detach=True,
                healthcheck={"test": ["NONE"]},
                name=f"pyfarm-bench-exec-{which}-{time.monotonic_ns()}", **extra)
        deadline = time.monotonic() + EXEC_BUDGET_S
        for n in range(runs + 1):
            if n > 2 * STARTUP_MIN_RUNS and time.monotonic() > deadline:
                break
            for which in ("final", "builder") if n % 2 == 0 else ("builder", "final"):
                elapsed = time_in(containers[which], sides[which][1], spec.port)
                if n:
                    times[which].append(elapsed)
    finally:
        for container in containers.values():
            container.remove(force=True)
    return {"exec_final_runs_ms": times["final"], "exec_builder_runs_ms": times["builder"]}


def time_in(container: Any, cmd: list[str], port: int | None) -> float:
    """Time to the first output line of ``cmd`` run in ``container``, or for a server to its
    open port, measured there by the container's own python (the command's first word)."""
    done = container.exec_run([cmd[0], "-c", _TIME_ONE_RUN, json.dumps(cmd), json.dumps(port)])
    try:
        return float(done.output)
    except ValueError:
        raise RuntimeError(f"{cmd}: {done.output.decode(errors='replace')[-500:]}") from None


# Instructions, counted by callgrind: the same image and command give the same count whatever
# the machine's speed is doing, where the times above move by a few per cent. valgrind's tools
# are static programs, so mounted into a container they run the image's own interpreter,
# a scratch image's too. The tools refuse to start unless their launcher's variable is set;
# the launcher would also say which tool's preloads to use, which --tool does here.
_VALGRIND_CACHE = Path.home() / ".cache/pyfarm-docker/bench-valgrind"
_VALGRIND_MOUNT = PurePosixPath("/opt/valgrind")
_VALGRIND_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
_INSTRUCTIONS_TIMEOUT_S = 1200  # scale runs for 2.5 s, about 50 times longer under callgrind
# Hash randomisation moves the count. Under valgrind a process's threads take turns, so a
# thread pool's workers spinning while they wait would count, differently each run (numpy's
# OpenBLAS: 13 to 17 billion): pools of one thread.
_COUNTED_ENV = {"PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1"}


def valgrind_dir() -> Path:
    """valgrind's tool directory (libexec/valgrind) from the host's apt, cached."""
    tools = _VALGRIND_CACHE / "unpacked" / "usr" / "libexec" / "valgrind"
    if not tools.is_dir():
        apt_unpack(["valgrind"], _VALGRIND_CACHE)
    return tools


def startup_instructions(client: Any, image: str, builder: str,
                         spec: AppSpec) -> dict[str, int]:
    """Instructions the app's process runs in each image: the whole run, or for a server up
    to its open port."""
    counts = {}
    for which, (tag, cmd, extra) in _sides(client, image, builder, spec).items():
        counts[f"instructions_{which}"] = instructions(client, tag, cmd, spec.port, extra)
    return counts


def instructions(client: Any, image: str, cmd: list[str], port: int | None,
                 extra: dict[str, str]) -> int:
    """Instructions ``cmd`` runs in a container of ``image`` (its children not counted)."""
    tool = _VALGRIND_MOUNT / f"callgrind-{_VALGRIND_ARCH[platform.machine()]}-linux"
    container = client.containers.run(
        image, ["--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        entrypoint=[str(tool)], detach=True,
        network_mode="host" if port is not None else "none",
        name=f"pyfarm-bench-instructions-{time.monotonic_ns()}",
        volumes={str(valgrind_dir()): {"bind": str(_VALGRIND_MOUNT), "mode": "ro"}},
        environment={"VALGRIND_LIB": str(_VALGRIND_MOUNT), "VALGRIND_LAUNCHER": str(tool),
                     **_COUNTED_ENV}, **extra)
    try:
        if port is not None:
            _await_listening(port, container)
            container.kill(signal="SIGTERM")
        container.wait(timeout=_INSTRUCTIONS_TIMEOUT_S)
        logs = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    found = re.search(r"^==\d+== Collected : (\d+)$", logs, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"callgrind counted nothing for {cmd}: {logs[-500:]}")
    return int(found.group(1))


def _await_listening(port: int, container: Any) -> None:
    """Until the host's network namespace, which the container shares, has a socket listening
    on ``port``. Read from /proc, not by connecting: a connection would be served, and counted."""
    suffix = f":{port:04X}"
    deadline = time.monotonic() + _INSTRUCTIONS_TIMEOUT_S
    while time.monotonic() < deadline:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[1].endswith(suffix) and fields[3] == "0A":  # LISTEN
                    return
        container.reload()
        if container.status != "running":
            raise RuntimeError(f"exited before listening on {port}: "
                               f"{container.logs().decode(errors='replace')[-500:]}")
        time.sleep(0.1)
    raise RuntimeError(f"nothing listened on {port} in {_INSTRUCTIONS_TIMEOUT_S} s")


# --- peers ----------------------------------------------------------------------------------

def peer_context(case: Path, spec: AppSpec, target: Target, extra: list[str]) -> Path:
    ctx = Path(tempfile.mkdtemp(prefix="pyfarm-bench-"))
    shutil.copytree(case, ctx / "app")
    requirements = case / "requirements.txt"
    shutil.copy(requirements, ctx / "requirements.txt")
    (ctx / "freeze_support.py").write_text(_FREEZE_SUPPORT)
    wheels = ctx / "wheelhouse"
    wheels.mkdir()
    cache = Path.home() / ".cache/pyfarm-docker/bench-wheels" / f"{case.name}-{'-'.join(extra)}"
    args = ["-r", str(requirements), *extra] if requirements.read_text().strip() or extra else []
    for wheel in wheelhouse.download(args, cache, target):
        shutil.copy(wheel, wheels / wheel.name)
    (ctx / "debs").mkdir()
    if extra:
        apt_download([*_BINUTILS, f"libpython{target.python}"], ctx / "debs")
    if spec.module:
        (ctx / "app" / "_entry.py").write_text(
            f"import runpy\nrunpy.run_module({spec.module!r}, run_name='__main__')\n")
    return ctx


def peer_image(client: Any, ctx: Path, dockerfile: str, tag: str) -> str:
    (ctx / "Dockerfile").write_text(dockerfile)
    tracker = engine.StepTracker(lambda _: None)
    image = engine.build_stage(client, ctx, "Dockerfile", tracker, network="none")
    engine.tag(client, image, tag)
    return tag


def peers(client: Any, case: Path, spec: AppSpec) -> dict[str, int | None]:
    base = engine.probe_base(client, BASE)
    ctx = peer_context(case, spec, base, [])
    pyi_ctx = peer_context(case, spec, base, ["pyinstaller"])
    try:
        slim = peer_image(client, ctx, _SLIM.format(base=BASE), f"pyfarm-bench/slim-{case.name}")
        script = "_entry.py" if spec.module else spec.entry[0]
        try:
            pyi = peer_image(client, pyi_ctx, _PYI.format(base=BASE, script=script),
                             f"pyfarm-bench/pyi-{case.name}")
            pyi_bytes: int | None = int(engine.read_file(client, pyi, "/out/SIZE"))
            pyi_modules: int | None = int(engine.read_file(client, pyi, "/out/MODULES"))
        except Exception as exc:
            log(f"{case.name}: PyInstaller failed: {str(exc)[:300]}")
            pyi_bytes = pyi_modules = None
        return {"slim_bytes": engine.image_size(client, slim),
                "slim_gzip": gzip_bytes(client, slim), "pyinstaller_bytes": pyi_bytes,
                "pyinstaller_modules": pyi_modules}
    finally:
        shutil.rmtree(ctx)
        shutil.rmtree(pyi_ctx)


def incremental(case: Path, spec: AppSpec, before: BuildResult) -> int:
    """Bytes of the layers that change after editing one line of the app."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / case.name
        shutil.copytree(case, copy)
        target = copy / (spec.entry[0] if not spec.module else f"{spec.module}/__main__.py")
        target.write_text(target.read_text() + "# edited\n")
        after, _ = build(resolve(Flags(path=copy, base=BASE)), "pyfarm-bench/edited",
                         no_cache=False)
    client = engine.connect()
    old = client.images.get(before.image_id).attrs["RootFS"]["Layers"]
    new = client.images.get(after.image_id).attrs["RootFS"]["Layers"]
    manifest = report.load_manifest(after.tag)
    changed = {n for n, (a, b) in enumerate(zip(old, new)) if a != b}
    return sum(f.size for f in manifest.files if LAYERS.index(f.layer) in changed)


# --- one case -------------------------------------------------------------------------------

def bench_case(case: Path, startup_runs: int, overhead_runs: int) -> dict[str, Any]:
    client = engine.connect()
    settings = resolve(Flags(path=case, base=BASE))
    spec = settings.spec
    tag = _tag_of(case)
    log(f"{case.name}: cold build")
    cold, lines = build(settings, tag, no_cache=True)
    log(f"{case.name}: warm build")
    warm_started = time.monotonic()
    build(settings, tag, no_cache=False)
    warm_s = time.monotonic() - warm_started
    assert cold.builder_tag is not None
    manifest = report.load_manifest(tag)
    result: dict[str, Any] = {
        "case": case.name, "final": cold.final_bytes, "builder": cold.builder_bytes,
        "farm": manifest.total_bytes, "floor": floor_bytes(manifest),
        "kept_sources": kept_sources(manifest),
        "trace_s": step_seconds(lines, "pyfarm-docker trace"),
        # The assemble step is a JSON exec-form RUN: its words are quoted.
        "assemble_s": step_seconds(lines, '"assemble"'), "cold_s": cold.seconds,
        "warm_s": warm_s}
    log(f"{case.name}: --prune build")
    result.update(prune(settings, f"{tag}:prune", client))
    log(f"{case.name}: import-all")
    result.update(import_all(client, tag, cold.builder_tag))
    log(f"{case.name}: touched set (strace) and tracer overhead, in the builder")
    measured = measure_in_builder(client, cold.builder_tag, strace_dir(), overhead_runs,
                                  floor_system_paths(manifest))
    sizes = {f.path: f.size for f in manifest.files}
    measured["touched_essentials"] = sum(sizes[p] for p in measured["touched_floor_paths"])
    result.update(measured)
    log(f"{case.name}: compressed sizes")
    result.update(final_gzip=gzip_bytes(client, tag),
                  builder_gzip=gzip_bytes(client, cold.builder_tag))
    log(f"{case.name}: start-up, {startup_runs} runs of each, interleaved")
    result.update(startup(tag, cold.builder_tag, spec, startup_runs))
    log(f"{case.name}: process start-up, up to {EXEC_RUNS} runs of each, interleaved")
    result.update(exec_startup(client, tag, cold.builder_tag, spec, EXEC_RUNS))
    log(f"{case.name}: instructions of each image's process (callgrind)")
    result.update(startup_instructions(client, tag, cold.builder_tag, spec))
    log(f"{case.name}: incremental build, peers")
    result.update(incremental=incremental(case, spec, cold), **peers(client, case, spec))
    return result


def remove_case_images(case: Path) -> None:
    """A case's own images (default, --prune, the edited copy, their builders): the next
    run builds them again without cache, so each run would leave some GB dangling on a
    shared disk. The slim and PyInstaller peers stay, as build cache for the next run."""
    client = engine.connect()
    for repo in (_tag_of(case), "pyfarm-bench/edited"):
        for image in client.images.list(name=repo):
            for tag in image.tags:
                if tag.startswith(repo + ":"):
                    try:
                        client.images.remove(tag)
                    except docker.errors.APIError as exc:
                        log(f"{tag}: not removed: {exc}")


def _tag_of(case: Path) -> str:
    return f"pyfarm-bench/{case.name.replace('_', '-')}"


def import_all(client: Any, image: str, builder: str) -> dict[str, Any]:
    """verify --import-all's verdict: whether it passed, how many modules, which broke."""
    try:
        imports = verify.import_all_modules(engine.Engine("docker", client), image, builder)
    except PyfarmError as exc:
        log(f"import-all did not run: {exc.message[:1500]}")
        return {"import_all_ok": False, "import_all_modules": 0,
                "import_all_broken": {"(the check did not run)": exc.message[:300]}}
    return {"import_all_ok": imports.check().ok, "import_all_modules": len(imports.final),
            "import_all_broken": imports.broken}


def prune(settings: Settings, tag: str, client: Any) -> dict[str, Any]:
    """The same case built with --prune (verified); its farm and image sizes."""
    try:
        built, _ = build(replace(settings, prune=True), tag, no_cache=False)
    except PyfarmError as exc:
        log(f"--prune build failed: {exc.message[:1500]}")
        return {"prune_ok": False, "prune_error": exc.message[:300]}
    doc = report.load_manifest(tag)
    return {"prune_ok": True, "prune_farm": doc.total_bytes,
            "prune_pyc": sum(f.size for f in doc.files if f.path.endswith(".pyc")),
            "prune_final": built.final_bytes, "prune_gzip": gzip_bytes(client, tag),
            "prune_pyc_zlib": pyc_zlib_bytes(client, tag)}


# --- tables ---------------------------------------------------------------------------------

def _ok(good: bool) -> str:
    return "pass" if good else "FAIL"


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value / MB:.1f}"


def untouched_floor(r: dict[str, Any]) -> dict[str, int]:
    """Bytes of the default farm's floor that the run did not touch: runtime (the tzdata
    and CA bundle beyond what it read, the other essential files it did not open) and
    stdlib completeness (modules shipped because the run did not use them, and their
    native closure). No default farm can be smaller than the touched set plus these."""
    floor: dict[str, int] = r["floor"]
    runtime_bytes = (max(0, floor["tzdata"] - r["touched_tzdata"])
                     + max(0, floor["ca"] - r["touched_ca"])
                     + max(0, floor.get("essentials", 0) - r.get("touched_essentials", 0)))
    return {"runtime": runtime_bytes,
            "stdlib": floor.get("stdlib", 0) + floor.get("stdlib_closure", 0)}


def _ratio_cell(r: dict[str, Any], size: float | None, target: float | None,
                complete: bool = True) -> str:
    """A farm's size against the touched set; where it fails, what the floor allows at
    best: the touched set plus the floor's untouched bytes (the stdlib completeness part
    only for a ``complete`` farm: --prune does not ship it)."""
    if size is None:
        return "failed"
    ratio = size / r["touched"]
    if target is None:
        return f"{_mb(size)} = {ratio:.2f}x (no target)"
    cell = f"{_mb(size)} = {ratio:.2f}x ({_ok(ratio <= target)} <= {target})"
    if ratio <= target:
        return cell
    extra = untouched_floor(r)
    if not complete:
        extra["stdlib"] = 0
    best = (r["touched"] + sum(extra.values())) / r["touched"]
    parts = f"runtime {_mb(extra['runtime'])}" + (
        f" + stdlib {_mb(extra['stdlib'])}" if complete else "")
    if best > target:
        cell += f", floor: at best {best:.2f}x (untouched {parts} MB)"
    else:
        cell += f", the floor allows {best:.2f}x"
    sources = r.get("kept_sources", 0) if complete else 0
    if sources:  # most of what remains, in small apps
        with_sources = best + sources / r["touched"]
        cell += (f"; {with_sources:.2f}x with the .py sources kept for tracebacks "
                 f"({_mb(sources)} MB)")
    return cell


def farm_target(r: dict[str, Any]) -> float | None:
    if r["case"] in FARM_TARGET_BY_CASE:
        return FARM_TARGET_BY_CASE[r["case"]]
    return FARM_TARGET if r["touched"] > FARM_TARGET_MIN_TOUCHED else None


def size_row(r: dict[str, Any]) -> str:
    runtime_floor = sum(r["floor"][k] for k in RUNTIME_FLOOR)
    stdlib_floor = r["floor"].get("stdlib", 0) + r["floor"].get("stdlib_closure", 0)
    essentials = r["floor"].get("essentials", 0)
    prune_size = r.get("prune_farm")
    prune_target = PRUNE_TARGET_BY_CASE.get(r["case"], PRUNE_TARGET)
    return (f"| {r['case']} | {_mb(r['touched'])} ({r['touched_files']} files) | "
            f"{_mb(runtime_floor)} + {_mb(essentials)} + {_mb(stdlib_floor)} | "
            f"{_ratio_cell(r, r['farm'], farm_target(r))} | "
            f"{_ratio_cell(r, prune_size, prune_target, complete=False)} | "
            f"{_mb(r['final'])} / {_mb(r.get('prune_final'))} / {_mb(r['builder'])} / "
            f"{_mb(r['slim_bytes'])} | {_mb(r['final_gzip'])} / {_mb(r.get('prune_gzip'))} / "
            f"{_mb(r['builder_gzip'])} / {_mb(r['slim_gzip'])} | {pyinstaller_cell(r)} |")


# What a PyInstaller onedir takes from the image it runs on, and a farm must ship.
BASE_PROVIDED = ("libc", "loader", "tzdata", "ca")


def pyinstaller_cell(r: dict[str, Any]) -> str:
    """--prune against PyInstaller onedir. Where --prune is larger: without the floor that
    PyInstaller leaves to its base image (libc, loader, tzdata, CA bundle), and, where
    that still misses, the .pyc here against PyInstaller's compressed module archive."""
    pyi, prune_size = r["pyinstaller_bytes"], r.get("prune_farm")
    if pyi is None or prune_size is None:
        return "failed" if pyi is None else f"{_mb(pyi)} (--prune failed)"
    if prune_size < pyi:
        return f"{_mb(pyi)} (pass)"
    provided = sum(r["floor"][k] for k in BASE_PROVIDED)
    beside = (f"{_mb(prune_size - provided)} MB without libc, loader, tzdata and CA bundle "
              f"({_mb(provided)} MB), which PyInstaller takes from its base image")
    if prune_size - provided < pyi:
        return f"{_mb(pyi)} (the floor: {beside})"
    compressed = _with_compressed_pyc(r, prune_size - provided)
    floor = ("FAIL" if compressed is None or compressed >= pyi
             else "FAIL, floor: the uncompressed .pyc")
    return f"{_mb(pyi)} ({floor}: {beside}{_bytecode_beside(r, compressed)})"


def _with_compressed_pyc(r: dict[str, Any], without_base: int) -> int | None:
    """--prune without the base-provided files, its .pyc compressed as PyInstaller's archive
    stores modules (None when not measured)."""
    pyc, zipped = r.get("prune_pyc"), r.get("prune_pyc_zlib")
    return None if pyc is None or zipped is None else without_base - pyc + zipped


def _bytecode_beside(r: dict[str, Any], compressed: int | None) -> str:
    modules, pyc = r.get("pyinstaller_modules"), r.get("prune_pyc")
    if modules is None or pyc is None:
        return ""
    text = (f"; .pyc here {_mb(pyc)} MB, PyInstaller's zlib-compressed modules "
            f"{_mb(modules)} MB")
    if compressed is not None:
        text += (f"; the same .pyc zlib-compressed as PyInstaller's archive stores them "
                 f"{_mb(r['prune_pyc_zlib'])} MB, which would make it {_mb(compressed)} MB")
    return text + ": compressed modules cost every start-up (target <= 1.0), see design.md"


def paired(runs: Sequence[float], against: Sequence[float]) -> tuple[float, float, float]:
    """Median of runs[n] / against[n], and its 95% confidence interval (order statistics,
    normal approximation). This machine's speed shifts by up to a third for seconds at a
    time (a shared KVM host; one app's runs fall around 42 or 60 ms): runs made one after
    the other share the shift, two series' medians need not."""
    ratios = sorted(a / b for a, b in zip(runs, against))
    k = max(int((len(ratios) - 1.96 * len(ratios) ** 0.5) / 2), 0)
    return statistics.median(ratios), ratios[k], ratios[len(ratios) - 1 - k]


def _verdict(ratio: float, low: float, target: float) -> str:
    """pass or FAIL by the median; a FAIL whose interval reaches the target says so."""
    if ratio <= target:
        return "pass"
    return "FAIL, within noise" if low <= target else "FAIL"


def _shown(ratio: float, target: float) -> str:
    """Three decimals where two would show the target itself beside a FAIL (1.004)."""
    return f"{ratio:.3f}" if f"{ratio:.2f}" == f"{target:.2f}" else f"{ratio:.2f}"


def startup_cell(r: dict[str, Any]) -> str:
    """The verdict (issue 14: final / builder <= 1.0 over >= 10 interleaved runs): the
    process start-up, timed in a running container of each image, as the median of the
    paired ratios. Where that interval holds the target, time cannot tell the two apart,
    and the instructions each process runs decide. Beside it, each series' median, the
    instruction counts, and `docker run` (container creation included) as the times."""
    final, builder = r["exec_final_runs_ms"], r["exec_builder_runs_ms"]
    runs = min(len(final), len(builder))
    ratio, low, high = paired(final, builder)
    instructions = r["instructions_final"] / r["instructions_builder"]
    verdict = (_verdict(ratio, low, STARTUP_TARGET) if runs >= STARTUP_MIN_RUNS
               else "too few runs to tell")
    if verdict == "FAIL, within noise" and instructions <= STARTUP_TARGET:
        verdict = "pass by instructions, time within noise"
    run_ratio = paired(r["final_runs_ms"], r["builder_runs_ms"])
    return (f"{_shown(ratio, STARTUP_TARGET)} ({verdict}, {runs} runs; {low:.2f}-{high:.2f}); "
            f"medians {statistics.median(final):.0f} / {statistics.median(builder):.0f}; "
            f"instructions {instructions:.3f} ({r['instructions_final'] / 1e6:.0f} / "
            f"{r['instructions_builder'] / 1e6:.0f} M); "
            f"docker run {run_ratio[0]:.2f} ({run_ratio[1]:.2f}-{run_ratio[2]:.2f}), medians "
            f"{r['final_ms']:.0f} / {r['builder_ms']:.0f}")


def overhead_cell(r: dict[str, Any]) -> str:
    """The app under the trace shim against the plain app, paired runs (<= 1.2)."""
    ratio, low, high = paired(r["shim_runs"], r["plain_runs"])
    return (f"{_shown(ratio, OVERHEAD_TARGET)} ({_verdict(ratio, low, OVERHEAD_TARGET)}; "
            f"{low:.2f}-{high:.2f}); medians {r['shim_s']:.2f} / {r['plain_s']:.2f} s; whole "
            f"trace command {r['traced_s']:.2f}")


def native_cell(r: dict[str, Any]) -> str:
    """The app under the shim and the native file tracer against the plain app, paired."""
    if r.get("native_s") is None:
        return "-"
    ratio, low, high = paired(r["native_runs"], r["plain_runs"])
    target = NATIVE_TARGET_BY_CASE.get(r["case"])
    verdict = f" ({_verdict(ratio, low, target)} <= {target:g})" if target else ""
    return (f"{ratio:.2f}{verdict} ({low:.2f}-{high:.2f}); medians {r['native_s']:.2f} / "
            f"{r['plain_s']:.2f} s")


def speed_row(r: dict[str, Any]) -> str:
    trace_assemble = (r["trace_s"] or 0) + (r["assemble_s"] or 0)
    ta_target = TRACE_ASSEMBLE_TARGET_BY_CASE.get(r["case"])
    ta_cell = (f"{r['trace_s'] or 0:.1f} + {r['assemble_s'] or 0:.1f}"
               + (f" ({_ok(trace_assemble <= ta_target)} <= {ta_target:g})" if ta_target
                  else ""))
    broken = r["import_all_broken"]
    imports = (f"pass ({r['import_all_modules']} modules)" if r["import_all_ok"]
               else f"FAIL: {', '.join(list(broken)[:8])}{' ...' if len(broken) > 8 else ''}")
    prune_verify = "pass" if r.get("prune_ok") else "FAIL"
    return (f"| {r['case']} | {imports} | {prune_verify} | "
            f"{startup_cell(r)} | {ta_cell} | {overhead_cell(r)} | {native_cell(r)} | "
            f"{r['cold_s']:.0f} / {r['warm_s']:.0f} | "
            f"{r['incremental'] / MB:.2f} ({_ok(r['incremental'] <= INCREMENTAL_TARGET)}) |")


SIZE_HEADER = "\n".join([
    "| case | touched MB (strace) | floor MB: runtime + essential files + stdlib "
    "completeness | farm MB / touched | --prune farm MB / touched "
    "| image MB final / --prune / builder / slim | gzip MB final / --prune / builder / slim "
    "| PyInstaller onedir MB (--prune smaller) |",
    "|---|---|---|---|---|---|---|---|",
])
SPEED_HEADER = "\n".join([
    "| case | verify --import-all | --prune verify | start-up final / builder: the process, "
    "paired, and its instructions (<= 1.0) | trace + assemble s "
    "| tracer overhead: the app's run under the shim / plain, paired (<= 1.2) "
    "| with the native file tracer: shim + fstrace / plain, paired "
    "| build s cold / warm | incremental MB (<= 1) |",
    "|---|---|---|---|---|---|---|---|---|",
])


def tables(rows: list[dict[str, Any]]) -> str:
    good = [r for r in rows if "error" not in r]
    failed = [f"- {r['case']}: bench failed: {r['error']}" for r in rows if "error" in r]
    return "\n".join(["Sizes:", "", SIZE_HEADER, *map(size_row, good), "",
                      "Behaviour and speed:", "", SPEED_HEADER, *map(speed_row, good),
                      *(["", *failed] if failed else [])])


NOTES = f"""Made by `make bench` (bench/run.py) on one machine, in one run (base {BASE}).

- **touched**: bytes of the regular files a run of the app (the traced command, in the
  builder image) opened without error or executed, plus the ELF interpreter of each
  executed program; measured by strace inside the builder image, not by the tool's tracer.
  Files opened for writing or creating, and /proc, /sys, /dev and /tmp, do not count.
- **floor**: what every default farm ships whatever the app, from its manifest's reasons:
  the runtime (interpreter + libc + loader + tzdata + CA bundle), the other essential files
  (ldconfig for find_library, NSS and gconv modules, /etc files, the SBOM) and the stdlib
  completeness (every stdlib module imports: the modules the run did not use, reason
  `complete`, the zipped stdlib among them, and the native libraries only those untraced
  extension modules need, `closure of X` for a stdlib X: libcrypto, Berkeley DB, sqlite,
  ncurses, readline...; a library the manifest attributes to a distribution's module is
  left out, so the floor errs low). --prune ships the runtime and the essential files, not the
  completeness part. Where a ratio fails, the cell gives what the floor allows at best:
  the touched set plus the floor's untouched bytes (the tzdata and CA bundle beyond what
  the run read, the essential files strace did not see it open, the whole completeness
  part), as `floor: at best N.NNx (untouched runtime R + stdlib S MB)` when that alone
  misses the target, else `the floor allows N.NNx` (the rest is the farm's own, such as
  the .py sources of the modules the run imported, which the default farm keeps beside
  their .pyc for tracebacks' source lines: the run read only the .pyc). Where
  --prune is not smaller than PyInstaller onedir, the cell compares it without the floor
  PyInstaller leaves to its base image (libc, loader, tzdata, CA bundle) and, where that
  still misses, gives the .pyc bytes here against PyInstaller's zlib-compressed modules
  (the archive appended to its executable, and base_library.zip), and the same .pyc each
  zlib-compressed at level 6 as PyInstaller's archive stores modules: where that alone
  would make --prune smaller, the cell names the uncompressed .pyc as the floor (the
  start-up target keeps them uncompressed: decompressing costs every start).
- Targets (issue 14): farm <= {FARM_TARGET}x touched where touched is over
  {FARM_TARGET_MIN_TOUCHED / MB:.0f} MB, <= 1.75x for ctypes_dlopen and module_entry;
  --prune <= {PRUNE_TARGET}x (1.3x ctypes_dlopen) and smaller than PyInstaller onedir;
  start-up final / builder <= {STARTUP_TARGET} (>= {STARTUP_MIN_RUNS} interleaved runs of
  each); trace + assemble <= 8 s for pandas_frame, <= 25 s for scale; the tracer adds <= 20%
  to the app's run in the builder.
- **paired**: this machine's speed shifts by up to a third for seconds at a time (a shared
  KVM host: one app's plain runs fall around 42 or around 60 ms), so two series' medians
  move with how many of their runs fell in a slow stretch. Runs made one after the other
  share it: a ratio is the median of the ratios of run n of one series to run n of the
  other, with its 95% confidence interval in brackets and each series' median beside it.
  A ratio over its target whose interval reaches the target is a "FAIL, within noise".
- **start-up**: the process, with the container already running: each image idles in one
  container on its own python, and the app's command (the image's entrypoint and command;
  in the builder, its venv's python on the same arguments) is timed in it by that python,
  from starting the child to its first output line or open port, {EXEC_RUNS} times each
  (fewer, at least {2 * STARTUP_MIN_RUNS}, once {EXEC_BUDGET_S} s are spent) after one
  untimed run of each, the order alternating. Creating a container is the same
  work for both images and most of `docker run`'s time and spread (`docker exec` adds its
  own 50 ms): `docker run` to the same point ({STARTUP_RUNS} runs of each, interleaved) is
  shown beside it. **instructions**: what the app's process runs in each image, counted by
  valgrind's callgrind (its tool mounted into a container of the image, hash seed fixed):
  the whole run, or for a server up to its open port. The count does not move with the
  machine's speed, so where the time's interval holds 1.0 (time cannot tell the two
  apart), it decides: no more instructions than the builder's is a "pass by instructions".
- **tracer overhead**: the app under the trace shim against the plain app ({OVERHEAD_RUNS}
  runs of each, in one builder container, interleaved with the two below so that each kind
  follows each other kind as often). The whole `pyfarm-docker trace` command, with the
  tool's own start, the interpreter's description and trace.json, is shown beside it. The
  native file tracer (issue 15: <= 2x for pandas_frame): the app under the shim and
  pyfarm-fstrace, as `trace` runs it, against the plain app.
- **gzip**: the image's layers, each gzip-compressed at level 6, summed: what a registry
  stores. Image sizes are uncompressed, as the engine reports them.
- **verify --import-all**: every top-level module shipped in the default image imports there
  whenever it imports in the builder.
"""


def write_results(rows: list[dict[str, Any]], output: Path) -> None:
    raw = "\n".join(json.dumps(r, sort_keys=True) for r in rows)
    output.write_text("# Benchmark results\n\n" + NOTES + "\n" + tables(rows)
                      + "\n\nRaw figures:\n\n```\n" + raw + "\n```\n")


def read_raw(results: Path) -> list[dict[str, Any]]:
    """The raw figures (one JSON object a line) of a results file write_results wrote."""
    raw = results.read_text().split("Raw figures:\n\n```\n", 1)[1].split("\n```", 1)[0]
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def case_paths(names: Sequence[str], dirs: Sequence[Path]) -> list[Path]:
    known = {p.name: p for p in [*sorted(p for p in CORPUS.iterdir()
                                         if (p / "requirements.txt").exists()), HERE / "scale"]}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(known)}")
    chosen = [known[n] for n in names] + [d.resolve() for d in dirs]
    return chosen or list(known.values())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Benchmark pyfarm-docker (issue 14).")
    parser.add_argument("dirs", nargs="*", type=Path, metavar="CASE_DIR",
                        help="case directories (default: the corpus and bench/scale)")
    parser.add_argument("--cases", default="", metavar="NAME,...",
                        help="corpus cases (or 'scale') by name, comma-separated")
    parser.add_argument("--runs", type=int, default=STARTUP_RUNS,
                        help=f"start-up runs of each image (default {STARTUP_RUNS})")
    parser.add_argument("--overhead-runs", type=int, default=OVERHEAD_RUNS,
                        help=f"plain and traced runs in the builder (default {OVERHEAD_RUNS})")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md",
                        help="where to write the tables (default bench/RESULTS.md)")
    parser.add_argument("--keep-images", action="store_true",
                        help="keep each case's images (pyfarm-bench/CASE:*) after it")
    parser.add_argument("--render", type=Path, metavar="RESULTS",
                        help="measure nothing: write the tables again from the raw figures "
                             "of RESULTS (a run's own file), e.g. after a change of wording")
    args = parser.parse_args(argv)
    if args.render:
        write_results(read_raw(args.render), args.output)
        return 0
    cases = case_paths([n for n in args.cases.split(",") if n], args.dirs)
    rows: list[dict[str, Any]] = []
    for case in cases:
        try:
            result = bench_case(case, args.runs, args.overhead_runs)
        except Exception as exc:  # one broken case must not lose the others' figures
            traceback.print_exc()
            result = {"case": case.name, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        if not args.keep_images:
            remove_case_images(case)
        print(json.dumps(result), flush=True)
        rows.append(result)
        write_results(rows, args.output)  # after each case: a run that stops leaves a table
    print(tables(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
