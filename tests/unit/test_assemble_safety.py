"""The builder half under hostile or careless input: nothing is written outside -o,
nothing secret ships, --force replaces only what assemble wrote, modes do not depend on
the umask, and bad commands or signals end in one line and leave nothing behind."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyfarm_docker import cli
from pyfarm_docker.builder.assemble import AssembleOptions, assemble
from pyfarm_docker.builder.tracer import TraceOptions, run_trace
from pyfarm_docker.errors import AssembleError, UsageError

APP = "import json\nprint(json.dumps({'ok': True}))\n"


def _trace(tmp_path: Path, app: str = APP, env: dict[str, str] | None = None) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "app.py").write_text(app)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in (env or {}).items():
            mp.setenv(key, value)
        run_trace(TraceOptions((sys.executable, "app.py"), tmp_path / "trace.json", cwd=src))
    return tmp_path / "trace.json"


def test_record_lines_that_leave_the_site_dir_are_ignored(tmp_path: Path) -> None:
    site = tmp_path / "site"
    info = site / "sneaky-1.0.dist-info"
    info.mkdir(parents=True)
    (site / "sneaky.py").write_text("X = 1\n")
    (tmp_path / "outside.txt").write_text("secret\n")
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sneaky\nVersion: 1.0\n")
    (info / "RECORD").write_text("sneaky.py,,\nsneaky/../../outside.txt,,\n/etc/hostname,,\n"
                                 "sneaky-1.0.dist-info/METADATA,,\n")
    trace = _trace(tmp_path, "import sneaky\nprint(sneaky.X)\n", {"PYTHONPATH": str(site)})
    manifest = assemble(AssembleOptions(trace, tmp_path / "out"))
    paths = {f.path for f in manifest.files}
    assert any(p.endswith("/sneaky.py") for p in paths)
    assert not any(p.endswith(("outside.txt", "/hostname")) for p in paths)


@pytest.mark.parametrize("prefix", ["/../../x", "/app/../etc", "relative", "/"])
def test_prefix_must_stay_below_root(tmp_path: Path, prefix: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    trace = _trace(tmp_path)
    code = cli.main(["assemble", str(trace), "-o", str(tmp_path / "out"), "--prefix", prefix])
    assert code == UsageError.exit_code
    assert "--prefix must be an absolute directory" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_force_replaces_only_what_assemble_wrote(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    trace = _trace(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me\n")
    argv = ["assemble", str(trace), "--force", "-o"]
    assert cli.main([*argv, str(mine)]) == UsageError.exit_code
    assert "was not written by assemble" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me\n"
    assert cli.main([*argv, str(tmp_path / "src")]) == UsageError.exit_code  # holds the app
    assert (tmp_path / "src" / "app.py").exists()
    out = tmp_path / "out"
    assert cli.main([*argv, str(out)]) == 0
    (out / "stale").write_text("from the first run\n")
    assert cli.main([*argv, str(out)]) == 0  # its own output: replaced whole
    assert not (out / "stale").exists() and (out / "app" / "python" / "bin" / "python").exists()


def test_force_never_replaces_the_current_directory(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    trace = _trace(tmp_path)
    here = tmp_path / "here"
    here.mkdir()
    (here / "work.txt").write_text("mine\n")
    (here / ".pyfarm-output").write_text("forged\n")
    monkeypatch.chdir(here)
    assert cli.main(["assemble", str(trace), "-o", ".", "--force"]) == UsageError.exit_code
    assert "will not replace" in capsys.readouterr().err
    assert (here / "work.txt").exists()


def test_output_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = _trace(tmp_path)
    (tmp_path / "afile").write_text("")
    assert cli.main(["assemble", str(trace), "-o", str(tmp_path / "afile")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_modes_do_not_depend_on_the_umask(tmp_path: Path) -> None:
    trace = _trace(tmp_path)
    out = tmp_path / "out"
    subprocess.run(["sh", "-c", 'umask 077 && exec "$@"', "sh", sys.executable, "-m",
                    "pyfarm_docker", "assemble", str(trace), "-o", str(out)], check=True,
                   capture_output=True)
    modes = {p: stat.S_IMODE(p.lstat().st_mode) for p in out.rglob("*") if not p.is_symlink()}
    special = {out / "tmp": 0o1777, out / "home" / "nonroot": 0o700}
    wrong = {str(p): oct(m) for p, m in modes.items() if p not in special
             and m not in ((0o755,) if p.is_dir() else (0o644, 0o755))}
    assert wrong == {}
    assert any(p.suffix == ".pyc" and m == 0o644 for p, m in modes.items())
    assert {p: modes[p] for p in special} == special
    assert (out / "home" / "nonroot").stat().st_uid == 65532


def test_secrets_the_run_read_never_ship(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    app = ("import pathlib\nfor p in ('/etc/shadow', '/etc/hostname'):\n"
           "    print(len(pathlib.Path(p).read_text()) > 0)\n")
    trace = _trace(tmp_path, app)
    manifest = assemble(AssembleOptions(trace, tmp_path / "out"))
    assert "/etc/shadow" not in {f.path for f in manifest.files}
    assert any("/etc/shadow" in w and "never shipped" in w for w in manifest.warnings)


def test_a_directory_link_loop_in_the_app(tmp_path: Path) -> None:
    trace = _trace(tmp_path)
    (tmp_path / "src" / "loop").symlink_to(tmp_path / "src")
    manifest = assemble(AssembleOptions(trace, tmp_path / "out"))
    assert any("link back into its own tree" in w for w in manifest.warnings)


def test_tracing_something_that_is_not_python(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["trace", "-o", str(tmp_path / "t.json"), "--", "/bin/true"])
    err = capsys.readouterr().err
    assert code == UsageError.exit_code and "is not a working Python interpreter" in err
    assert err.count("\n") <= 2, err


def test_sigterm_stops_the_app_and_cleans_up(tmp_path: Path) -> None:
    pid_file = tmp_path / "app.pid"
    (tmp_path / "app.py").write_text(
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(120)\n")
    temp = tmp_path / "tmp"
    temp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "pyfarm_docker", "trace", "-o",
                             str(tmp_path / "t.json"), "--", sys.executable, "app.py"],
                            cwd=tmp_path, env={**os.environ, "TMPDIR": str(temp)},
                            stderr=subprocess.PIPE, text=True)
    for _ in range(300):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert _gone(int(pid_file.read_text()))
    assert list(temp.iterdir()) == []


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie waiting for a PID 1 that does not reap (the
    isolated unit runner's namespace has one)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_a_child_that_outlives_the_app_does_not_hold_the_trace(tmp_path: Path) -> None:
    app = ("import os, sys, time\nif os.fork() == 0:\n    time.sleep(300)\n    os._exit(0)\n"
           "print('parent done')\n")
    (tmp_path / "app.py").write_text(app)
    done = subprocess.run([sys.executable, "-m", "pyfarm_docker", "trace", "-o",
                           str(tmp_path / "t.json"), "--", sys.executable, "app.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "parent done\n"
    assert json.loads((tmp_path / "t.json").read_text())["exit_status"] == 0


def test_a_full_disk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real filesystem that fills up (a 2 MB tmpfs): one line, exit 4, nothing left."""
    trace = _trace(tmp_path)
    small = tmp_path / "small"
    small.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(small)],
                           capture_output=True, text=True, check=False)
    if mount.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (the tests run as root): {mount.stderr}")
    try:
        code = cli.main(["assemble", str(trace), "-o", str(small / "out")])
        err = capsys.readouterr().err
        assert code == AssembleError.exit_code, err
        assert "No space left on device" in err and err.count("\n") <= 2
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)
