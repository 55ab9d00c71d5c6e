"""The benchmark's measuring parts without Docker: reading strace's output into the touched
set, finding a program's ELF interpreter, and naming the floor when it decides a target."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.support.paths import REPO


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", REPO / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _bench()
STRACE = """\
100   execve("/opt/venv/bin/python", ["python", "app.py"], 0x7ffd /* 5 vars */) = 0
100   openat(AT_FDCWD</src>, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3</etc/ld.so.cache>
100   openat(AT_FDCWD</src>, "/lib/libc.so.6", O_RDONLY|O_CLOEXEC) = 3</usr/lib/libc.so.6>
100   openat(AT_FDCWD</src>, "/usr/lib/locale/locale-archive", O_RDONLY) = -1 ENOENT (No such)
100   openat(AT_FDCWD</src>, "out.txt", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3</src/out.txt>
100   openat(AT_FDCWD</src>, "data.json", O_RDONLY|O_CLOEXEC <unfinished ...>
101   execve("/usr/bin/python3", ["python3", "-c", "pass"], 0x1 /* 5 vars */ <unfinished ...>
100   <... openat resumed>) = 4</src/data.json>
101   <... execve resumed>) = 0
102   execve("/nope", ["/nope"], 0x1 /* 0 vars */) = -1 ENOENT (No such file or directory)
103   openat(3</usr/lib/python3.11>, "json", O_RDONLY|O_DIRECTORY) = 5</usr/lib/python3.11/json>
"""


def _parser() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(BENCH._STRACE_PARSER, namespace)
    return namespace


def test_strace_lines_give_what_was_read_and_run() -> None:
    opened, executed = _parser()["parse_strace"](STRACE.splitlines())
    assert opened == {"/etc/ld.so.cache", "/usr/lib/libc.so.6",
                      "/src/data.json", "/usr/lib/python3.11/json"}
    assert executed == {"/opt/venv/bin/python", "/usr/bin/python3"}


def test_the_loader_of_a_program(tmp_path: Path) -> None:
    elf_interp = _parser()["elf_interp"]
    assert elf_interp(os.path.realpath(sys.executable)).startswith("/lib")  # ld-linux-*
    (tmp_path / "script").write_text("#!/bin/sh\n")
    assert elf_interp(str(tmp_path / "script")) is None
    assert elf_interp(str(tmp_path / "absent")) is None


def _result(tzdata: float) -> dict[str, Any]:
    floor = {"interpreter": 7e6, "libc": 2e6, "loader": 2e5, "tzdata": tzdata, "ca": 2e5}
    return {"case": "x", "touched": 10e6, "floor": floor, "touched_tzdata": 0,
            "touched_ca": 2e5}


def test_a_failed_ratio_names_the_floor_only_when_it_is_the_reason() -> None:
    assert BENCH._ratio_cell(_result(5e6), 16e6, 1.5) == "16.0 = 1.60x (FAIL <= 1.5)"
    assert BENCH._ratio_cell(_result(6e6), 16e6, 1.5) == (
        "16.0 = 1.60x (FAIL <= 1.5), floor: at best 1.60x")
    assert BENCH._ratio_cell(_result(6e6), 14e6, 1.5) == "14.0 = 1.40x (pass <= 1.5)"
    assert BENCH._ratio_cell(_result(6e6), None, 1.5) == "failed"


def test_farm_targets_follow_the_issue() -> None:
    assert BENCH.farm_target({"case": "ctypes_dlopen", "touched": 13e6}) == 1.75
    assert BENCH.farm_target({"case": "stdlib_tour", "touched": 21e6}) == 1.5
    assert BENCH.farm_target({"case": "lxml_xpath", "touched": 17e6}) is None
