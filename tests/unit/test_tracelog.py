from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pyfarm_docker.builder.tracelog import ProcessRecord, parse_lines
from pyfarm_docker.builder.tracer import SHIM_DIR


def read_log(path: Path) -> dict[int, ProcessRecord]:
    records: dict[int, ProcessRecord] = {}
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as log:
        parse_lines(log.readlines(), records)
    return records


def _run_with_shim(tmp_path: Path, code: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    log = tmp_path / "events.log"
    env = dict(os.environ, PYFARM_TRACE_LOG=str(log), PYTHONPATH=str(SHIM_DIR))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=False)
    return done, log


def test_escaped_fields_round_trip(tmp_path: Path) -> None:
    weird = tmp_path / "tab\there\nnewline\\back.txt"
    weird.write_text("x")
    done, log = _run_with_shim(tmp_path, f"open({str(weird)!r}).read()")
    assert done.returncode == 0, done.stderr
    records = read_log(log)
    assert any(str(weird) in r.opened for r in records.values())


def test_torn_last_line_is_ignored() -> None:
    records: dict[int, ProcessRecord] = {}
    parse_lines(["12\topen\t/a\n", "12\topen\t/b"], records)
    assert records[12].opened == {"/a"}


def test_shim_is_invisible_to_the_app(tmp_path: Path) -> None:
    code = ("import sys, json; print(json.dumps([p for p in sys.path if 'shim' in p]));"
            "print('sitecustomize' in sys.modules)")
    done, _ = _run_with_shim(tmp_path, code)
    assert done.returncode == 0
    assert done.stdout.splitlines()[0] == "[]"
    assert done.stderr == ""


def test_records_imports_modules_and_maps(tmp_path: Path) -> None:
    done, log = _run_with_shim(tmp_path, "import json, _ctypes; import ctypes; "
                                         "ctypes.CDLL('libz.so.1')")
    assert done.returncode == 0, done.stderr
    (record,) = read_log(log).values()
    assert "json" in record.imports
    assert record.modules["json"][0].endswith("json/__init__.py")
    assert "libz.so.1" in record.dlopen
    assert any("libz.so" in m for m in record.mapped)
    assert record.exited


def test_killed_process_still_reports_what_it_opened(tmp_path: Path) -> None:
    target = tmp_path / "data.txt"
    target.write_text("x")
    done, log = _run_with_shim(tmp_path, f"import os; open({str(target)!r}).read(); "
                                         "os.kill(os.getpid(), 9)")
    assert done.returncode == -9
    (record,) = read_log(log).values()
    assert str(target) in record.opened
    assert not record.exited


def test_killed_process_still_reports_what_its_imports_mapped(tmp_path: Path) -> None:
    """The shim reads the maps after an import that loaded native code: a worker killed
    before atexit keeps the libraries its extension modules pulled in."""
    done, log = _run_with_shim(tmp_path, "import os, _sqlite3, json; os.kill(os.getpid(), 9)")
    assert done.returncode == -9
    (record,) = read_log(log).values()
    assert not record.exited
    assert "_sqlite3" in record.modules
    assert any("libsqlite3" in path for path in record.mapped), sorted(record.mapped)
