"""Host tier: the native file tracer (csrc/fstrace.c) records what C code opens in every
process and thread of a run that uses threads, signals, fork, spawn and os._exit, without
changing what the run prints; it falls back to Python-only tracing where ptrace is
refused; and the wheel built from the sdist carries it."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from pyfarm_docker.builder.assemble import AssembleOptions, assemble
from pyfarm_docker.builder.nativelog import FSTRACE
from pyfarm_docker.builder.tracelog import ProcessRecord, parse_lines
from pyfarm_docker.builder.tracer import SHIM_DIR, TraceOptions, run_trace
from pyfarm_docker.documents.trace import Trace
from pyfarm_docker.runtime import Runtime
from tests.support import emptyroot
from tests.support.paths import HOST_PYTHON, REPO

pytestmark = pytest.mark.host
RUNTIME = Runtime()

# Each reader opens its own file with libc's fopen (invisible to the audit hook), from a
# different kind of process or thread; then it checks, with libc's access(), a path that
# does not exist.
APP = """import ctypes, multiprocessing, os, signal, subprocess, sys, threading

libc = ctypes.CDLL(None, use_errno=True)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.fclose.argtypes = [ctypes.c_void_p]
DATA = sys.argv[1]

def read(name):
    handle = libc.fopen(os.path.join(DATA, name).encode(), b"r")
    libc.fclose(handle)
    return bool(handle)

def in_spawned_child(name):
    read(name)

if __name__ == "__main__":
    seen = []
    signal.signal(signal.SIGUSR1, lambda *_: seen.append(read("in-handler.txt")))
    os.kill(os.getpid(), signal.SIGUSR1)
    thread = threading.Thread(target=lambda: seen.append(read("in-thread.txt")))
    thread.start(); thread.join()
    pid = os.fork()
    if pid == 0:
        read("in-fork.txt")
        os._exit(7)
    _, status = os.waitpid(pid, 0)
    child = multiprocessing.get_context("spawn").Process(target=in_spawned_child,
                                                         args=("in-spawn.txt",))
    child.start(); child.join()
    stopped = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    os.kill(stopped.pid, signal.SIGSTOP); os.kill(stopped.pid, signal.SIGCONT)
    subprocess.run(["true"], check=True)
    missing = libc.access(os.path.join(DATA, "missing.txt").encode(), os.R_OK)
    print(seen, os.WEXITSTATUS(status), child.exitcode, stopped.wait(), missing)
"""
READERS = ("in-handler.txt", "in-thread.txt", "in-fork.txt", "in-spawn.txt")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("fstrace")
    data = work / "data"
    data.mkdir()
    for name in READERS:
        (data / name).write_text(name)
    (work / "app.py").write_text(APP)
    return work, data


def _trace(work: Path, data: Path, native: bool = True) -> Trace:
    return run_trace(TraceOptions(command=(HOST_PYTHON, "app.py", str(data)),
                                  output=work / f"trace-{native}.json", cwd=work,
                                  native=native))


def test_every_process_and_thread_is_recorded(app: tuple[Path, Path]) -> None:
    work, data = app
    trace = _trace(work, data)
    assert trace.native.traced, trace.native.note
    assert {str(data / name) for name in READERS} <= set(trace.native.read)
    assert str(data / "missing.txt") in trace.native.absent
    assert str(data / "missing.txt") not in trace.native.read
    true = os.path.realpath(shutil.which("true") or "true")
    assert true in {os.path.realpath(p) for p in trace.native.programs}


def test_tracing_does_not_change_the_run(app: tuple[Path, Path]) -> None:
    work, data = app
    plain = subprocess.run([HOST_PYTHON, "app.py", str(data)], cwd=work, capture_output=True,
                           text=True, check=True)
    traced = subprocess.run([str(FSTRACE), "-o", str(work / "log"), "--", HOST_PYTHON,
                             "app.py", str(data)], cwd=work, capture_output=True, text=True)
    assert (traced.returncode, traced.stdout) == (0, plain.stdout)
    assert plain.stdout.strip() == "[True, True] 7 0 0 -1"


def test_exit_status_and_fatal_signal_pass_through(tmp_path: Path) -> None:
    for code, expected in (("raise SystemExit(3)", 3),
                           ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)",
                            -15)):
        done = subprocess.run([str(FSTRACE), "-o", str(tmp_path / "log"), "--", HOST_PYTHON,
                               "-c", code])
        assert done.returncode == expected


def test_where_ptrace_is_refused_python_tracing_goes_on(app: tuple[Path, Path]) -> None:
    """Under another tracer (strace -f follows the fork), PTRACE_SEIZE fails: the run is
    traced by the shim alone and the trace says why."""
    work, data = app
    out = work / "under-strace.json"
    done = subprocess.run(["strace", "-f", "-o", "/dev/null", sys.executable, "-m",
                           "pyfarm_docker", "trace", "-o", str(out), "--", HOST_PYTHON,
                           "app.py", str(data)], cwd=work, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "native code's file accesses not recorded: ptrace is not permitted" in done.stderr
    trace = Trace.read(out)
    assert not trace.native.traced and not trace.native.read
    assert "ctypes" in trace.modules


KILLED = ("import os, _sqlite3, json; print(os.environ.get('PYFARM_TRACE_NATIVE')); "
          "os.kill(os.getpid(), 9)")


def _killed_under_fstrace(work: Path, prefix: list[str]) -> tuple[str, ProcessRecord, str]:
    """Run KILLED under the shim and fstrace (behind ``prefix``): what it printed, the
    shim's record of it and the native log."""
    shim_log, native_log = work / "shim.log", work / "native.log"
    env = dict(os.environ, PYFARM_TRACE_LOG=str(shim_log), PYTHONPATH=str(SHIM_DIR))
    done = subprocess.run([*prefix, str(FSTRACE), "-o", str(native_log), "--", HOST_PYTHON,
                           "-c", KILLED], env=env, capture_output=True, text=True)
    assert done.returncode == -9, done.stderr
    records: dict[int, ProcessRecord] = {}
    parse_lines(shim_log.read_text().splitlines(keepends=True), records)
    (record,) = records.values()
    return done.stdout.strip(), record, native_log.read_text()


def test_the_shim_leaves_libraries_to_the_tracer_where_it_traces(tmp_path: Path) -> None:
    """A traced process finds PYFARM_TRACE_NATIVE=1: its shim reads no maps after imports,
    and the tracer's log has the library all the same, though the process was killed.
    Where ptrace is refused the variable is absent and the shim reads the maps itself."""
    (tmp_path / "traced").mkdir()
    (tmp_path / "refused").mkdir()
    printed, record, native = _killed_under_fstrace(tmp_path / "traced", [])
    assert printed == "1"
    assert not any("libsqlite3" in path for path in record.mapped)
    assert "libsqlite3" in native
    printed, record, native = _killed_under_fstrace(
        tmp_path / "refused", ["strace", "-f", "-o", "/dev/null"])
    assert printed == "None"
    assert any("libsqlite3" in path for path in record.mapped), sorted(record.mapped)
    assert native.startswith("untraced")


def test_no_native_turns_it_off(app: tuple[Path, Path]) -> None:
    work, data = app
    trace = _trace(work, data, native=False)
    assert (trace.native.traced, trace.native.read) == (False, ())
    assert "ctypes" in trace.modules


def test_the_wheel_built_from_the_sdist_carries_the_tracer(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir",
                    str(tmp_path), str(REPO)], check=True, capture_output=True)
    (sdist,) = tmp_path.glob("pyfarm_docker-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "src", filter="data")
    assert not any(n.endswith("libexec/pyfarm-fstrace") for n in names)
    (source,) = (tmp_path / "src").iterdir()
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                    str(tmp_path / "wheel"), str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "wheel").glob("pyfarm_docker-*.whl")
    assert wheel.name.endswith(f"-py3-none-linux_{os.uname().machine}.whl")
    archive = zipfile.ZipFile(wheel)
    member = archive.getinfo("pyfarm_docker/builder/libexec/pyfarm-fstrace")
    assert member.external_attr >> 16 & 0o111
    assert {"pyfarm_docker/templates/Dockerfile.j2", "pyfarm_docker/templates/final.j2",
            "pyfarm_docker/builder/shim/sitecustomize.py"} <= set(archive.namelist())
    tracer = tmp_path / "fstrace"
    tracer.write_bytes(archive.read(member))
    tracer.chmod(0o755)
    done = subprocess.run([str(tracer), "-o", str(tmp_path / "log"), "--", "true"])
    assert done.returncode == 0
    assert (tmp_path / "log").read_text().startswith("traced\t0\t")


def test_engine_provided_files_never_ship(tmp_path: Path) -> None:
    """glibc reads /etc/hosts and resolv.conf for getaddrinfo: the engine mounts the
    container's own at run time, so the builder's must not become part of the image."""
    (tmp_path / "app.py").write_text(
        "import socket\nprint(socket.getaddrinfo('localhost', 80)[0][4][1])\n")
    trace = run_trace(TraceOptions((HOST_PYTHON, "app.py"), tmp_path / "trace.json",
                                   cwd=tmp_path))
    assert "/etc/hosts" in trace.native.read
    manifest = assemble(AssembleOptions(tmp_path / "trace.json", tmp_path / "root"))
    shipped = {f.path for f in manifest.files}
    assert not shipped & {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"}
    assert "/etc/nsswitch.conf" in shipped  # the farm's own, not the builder's


@pytest.fixture()
def srv_dir() -> Iterator[Path]:
    """A directory outside /tmp (whose files never ship), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="pyfarm-fstrace-", dir="/srv"))
    yield path
    shutil.rmtree(path)


def test_a_database_the_run_opened_read_write_ships(tmp_path: Path, srv_dir: Path) -> None:
    """sqlite opens an existing database O_RDWR|O_CREAT, from C: that reads it, so it ships.
    A database the run creates is its own writing: it does not."""
    database = srv_dir / "app.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE greeting (word TEXT)")
        db.execute("INSERT INTO greeting VALUES ('hello from the database')")
    db.close()
    (tmp_path / "app.py").write_text(
        f"import sqlite3\ndb = sqlite3.connect({str(database)!r})\n"
        "print(db.execute('SELECT word FROM greeting').fetchone()[0])\n"
        "import sys; sqlite3.connect(sys.argv[1]).execute('CREATE TABLE t (x)')\n")
    trace = run_trace(TraceOptions((HOST_PYTHON, "app.py", str(srv_dir / "new.db")),
                                   tmp_path / "trace.json", cwd=tmp_path))
    assert str(database) in trace.native.read
    assert str(srv_dir / "new.db") in trace.native.written
    manifest = assemble(AssembleOptions(tmp_path / "trace.json", tmp_path / "root"))
    reasons = {f.path: f.reason for f in manifest.files}
    assert reasons.get(str(database)) == "native"
    assert str(srv_dir / "new.db") not in reasons
    done = emptyroot.run(tmp_path / "root", RUNTIME.entrypoint(("app.py", "/tmp/new.db")),
                         str(RUNTIME.workdir), dict(RUNTIME.env()))
    assert (done.returncode, done.stdout) == (0, "hello from the database\n"), done.stderr
