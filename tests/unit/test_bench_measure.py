"""The benchmark's measuring parts without Docker: reading strace's output into the touched
set, finding a program's ELF interpreter, and naming the floor when it decides a target."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from pyfarm_docker.documents.manifest import FileRecord, Manifest
from tests.support.bench import bench_module

BENCH = bench_module()
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


def _result(tzdata: float, stdlib: float = 0) -> dict[str, Any]:
    floor = {"interpreter": 7e6, "libc": 2e6, "loader": 2e5, "tzdata": tzdata, "ca": 2e5,
             "essentials": 1e6, "stdlib": stdlib, "stdlib_closure": 0}
    return {"case": "x", "touched": 10e6, "floor": floor, "touched_tzdata": 0,
            "touched_ca": 2e5, "touched_essentials": 1e6}


def test_a_failed_ratio_names_the_floor_only_when_it_is_the_reason() -> None:
    assert BENCH._ratio_cell(_result(5e6), 16e6, 1.5) == (
        "16.0 = 1.60x (FAIL <= 1.5), the floor allows 1.50x")
    assert BENCH._ratio_cell(_result(6e6), 16e6, 1.5) == (
        "16.0 = 1.60x (FAIL <= 1.5), floor: at best 1.60x (untouched runtime 6.0 + stdlib 0.0 MB)")
    assert BENCH._ratio_cell(_result(6e6), 14e6, 1.5) == "14.0 = 1.40x (pass <= 1.5)"
    assert BENCH._ratio_cell(_result(6e6), None, 1.5) == "failed"


def test_the_stdlib_completeness_floor_counts_for_the_default_farm_only() -> None:
    r = _result(1e6, stdlib=5e6)
    assert BENCH._ratio_cell(r, 18e6, 1.5) == (
        "18.0 = 1.80x (FAIL <= 1.5), floor: at best 1.60x (untouched runtime 1.0 + stdlib 5.0 MB)")
    # --prune ships no completeness: only the runtime's untouched part counts.
    assert BENCH._ratio_cell(r, 13e6, 1.2, complete=False) == (
        "13.0 = 1.30x (FAIL <= 1.2), the floor allows 1.10x")


def test_the_sources_kept_beside_their_pyc_are_named_where_the_floor_allows_more() -> None:
    r = {**_result(5e6), "kept_sources": 2e6}
    assert BENCH._ratio_cell(r, 18e6, 1.5) == (
        "18.0 = 1.80x (FAIL <= 1.5), the floor allows 1.50x; 1.70x with the .py sources "
        "kept for tracebacks (2.0 MB)")
    assert BENCH._ratio_cell({**r, "floor": {**r["floor"], "stdlib": 1e6}}, 18e6, 1.5) == (
        "18.0 = 1.80x (FAIL <= 1.5), floor: at best 1.60x (untouched runtime 5.0 + stdlib "
        "1.0 MB); 1.80x with the .py sources kept for tracebacks (2.0 MB)")
    # --prune ships no sources: they cannot explain its size.
    assert BENCH._ratio_cell(r, 16e6, 1.5, complete=False) == (
        "16.0 = 1.60x (FAIL <= 1.5), the floor allows 1.50x")


def test_against_pyinstaller_the_uncompressed_bytecode_is_named_only_when_it_is_the_reason(
) -> None:
    # Base-provided floor: libc 2 + loader 0.2 + tzdata 1 + CA 0.2 = 3.4 MB.
    r = {**_result(1e6), "pyinstaller_bytes": 20e6, "pyinstaller_modules": 3e6,
         "prune_pyc": 6e6, "prune_pyc_zlib": 2e6}
    assert BENCH.pyinstaller_cell({**r, "prune_farm": 19e6}) == "20.0 (pass)"
    assert BENCH.pyinstaller_cell({**r, "prune_farm": 23e6}).startswith("20.0 (the floor: ")
    # 25.0 - 3.4 = 21.6 MB; with its .pyc compressed 21.6 - 6 + 2 = 17.6 MB, smaller.
    cell = BENCH.pyinstaller_cell({**r, "prune_farm": 25e6})
    assert cell.startswith("20.0 (FAIL, floor: the uncompressed .pyc: 21.6 MB without libc")
    assert "which would make it 17.6 MB" in cell
    # Compressed or not, larger: a plain FAIL.
    cell = BENCH.pyinstaller_cell({**r, "prune_farm": 30e6})
    assert cell.startswith("20.0 (FAIL: 26.6 MB without libc")


def test_kept_sources_are_the_py_files_beside_a_pyc() -> None:
    files = (
        _record("/app/python/lib/python3.11/json/decoder.py", 100, "stdlib", "traced"),
        _record("/app/python/lib/python3.11/json/__pycache__/decoder.cpython-311.pyc", 70,
                "stdlib", "traced"),
        _record("/app/python/lib/python3.11/wave.py", 40, "stdlib", "complete"),
        _record("/app/site-packages/p1/yaml/__init__.py", 30, "dist:PyYAML", "traced"),
        _record("/app/site-packages/p1/yaml/__pycache__/__init__.cpython-311.pyc", 20,
                "dist:PyYAML", "traced"),
        _record("/app/app/app.py", 3, "app", "app"),
    )
    assert BENCH.kept_sources(Manifest("/app", "3.11", (), files, (), (), (), ())) == 130


def _record(path: str, size: int, origin: str, reason: str) -> FileRecord:
    return FileRecord(path, size, "0" * 64, origin, "runtime", reason)


def test_the_floor_of_a_default_farm_by_the_manifest_reasons() -> None:
    so = ".cpython-311-x86_64-linux-gnu.so"
    files = (
        _record("/app/python/bin/python", 7000, "interpreter", "essential"),
        _record("/app/reals/r/libc.so.6", 2000, "lib:libc.so.6", "traced"),
        _record("/lib64/ld-linux-x86-64.so.2", 200, "essential", "essential"),
        _record("/usr/share/zoneinfo/UTC", 100, "essential", "essential"),
        _record("/etc/ssl/certs/ca-certificates.crt", 300, "essential", "essential"),
        _record("/sbin/ldconfig", 900, "essential", "essential"),
        _record("/app/.pyfarm/sbom.spdx.json", 20, "essential", "essential"),
        _record("/app/python/lib/python311-untraced.zip", 1500, "stdlib", "complete"),
        _record("/app/python/lib/python3.11/json/__init__.py", 10, "stdlib", "traced"),
        # An untraced stdlib extension module, its library, and that library's own.
        _record(f"/app/reals/r/_ssl{so}", 50, "stdlib", "complete"),
        _record("/app/reals/r/libssl.so.3", 700, "lib:libssl.so.3", f"closure of _ssl{so}"),
        _record("/app/reals/r/libcrypto.so.3", 4900, "lib:libcrypto.so.3",
                "closure of libssl.so.3"),
        # A distribution's: it depends on the app, so it is no part of the floor.
        _record("/app/site-packages/p1/yaml/cyaml.py", 5, "dist:PyYAML", "complete"),
        _record(f"/app/reals/r/_yaml{so}", 2700, "dist:PyYAML", "traced"),
        _record("/app/reals/r/libyaml.so", 400, "lib:libyaml.so", f"closure of _yaml{so}"),
        _record("/app/reals/r/libgone.so", 1, "lib:libgone.so", "closure of gone.so"),
        _record("/app/app/app.py", 3, "app", "app"),
    )
    manifest = Manifest("/app", "3.11", (), files, (), (), (), ())
    assert BENCH.floor_bytes(manifest) == {
        "interpreter": 7000, "libc": 2000, "loader": 200, "tzdata": 100, "ca": 300,
        "essentials": 920, "stdlib": 1550, "stdlib_closure": 5600}
    # strace is asked about the essential files outside the prefix: not about the tool's own.
    assert BENCH.floor_system_paths(manifest) == ["/sbin/ldconfig"]


def test_the_untouched_floor_leaves_out_what_the_run_read() -> None:
    r = {"floor": {"interpreter": 7000, "libc": 2000, "loader": 200, "tzdata": 100, "ca": 300,
                   "essentials": 920, "stdlib": 1550, "stdlib_closure": 5600},
         "touched_tzdata": 40, "touched_ca": 300, "touched_essentials": 900}
    assert BENCH.untouched_floor(r) == {"runtime": 60 + 0 + 20, "stdlib": 7150}


def test_start_up_pairs_the_runs_made_one_after_the_other() -> None:
    """A slow stretch of the machine moves both runs of a pair: the paired ratio stays."""
    builder = [40.0] * 6 + [60.0] * 4
    final = [39.0] * 6 + [58.0] * 4
    r = {"exec_final_runs_ms": final, "exec_builder_runs_ms": builder,
         "final_runs_ms": [300.0, 330.0], "builder_runs_ms": [330.0, 300.0],
         "final_ms": 315.0, "builder_ms": 315.0,
         "instructions_final": 990_000_000, "instructions_builder": 1_000_000_000}
    assert BENCH.startup_cell(r) == ("0.97 (pass, 10 runs; 0.97-0.97); medians 39 / 40; "
                                     "instructions 0.990 (990 / 1000 M); "
                                     "docker run 1.00 (0.91-1.10), medians 315 / 315")
    slower = {**r, "exec_final_runs_ms": [b * 1.004 for b in builder]}
    assert BENCH.startup_cell(slower).startswith("1.004 (FAIL, 10 runs; 1.00-1.00)")
    spread = [0.98, 0.99, 1.0, 1.01, 1.02, 1.03, 1.03, 1.04, 1.05, 1.06]
    noisy = {**r, "exec_final_runs_ms": [b * x for b, x in zip(builder, spread)]}
    # Time cannot tell the two apart: the instruction counts decide.
    assert BENCH.startup_cell(noisy).startswith(
        "1.02 (pass by instructions, time within noise, 10 runs; 0.99-1.05)")
    more = {**noisy, "instructions_final": 1_001_000_000}
    assert BENCH.startup_cell(more).startswith("1.02 (FAIL, within noise, 10 runs; 0.99-1.05)")
    few = {**r, "exec_final_runs_ms": final[:2], "exec_builder_runs_ms": builder[:2]}
    assert BENCH.startup_cell(few).startswith("0.97 (too few runs to tell, 2 runs")


def test_tracer_overhead_is_the_paired_ratio() -> None:
    r = {"shim_runs": [0.044, 0.066, 0.045], "plain_runs": [0.040, 0.060, 0.041],
         "shim_s": 0.045, "plain_s": 0.041, "traced_s": 0.3, "case": "x",
         "native_runs": [0.08, 0.12, 0.09], "native_s": 0.09}
    assert BENCH.overhead_cell(r) == ("1.10 (pass; 1.10-1.10); medians 0.04 / 0.04 s; whole "
                                      "trace command 0.30")
    assert BENCH.native_cell(r).startswith("2.00 (2.00-2.20); medians 0.09 / 0.04 s")


def test_tables_are_written_again_from_a_runs_raw_figures(tmp_path: Path) -> None:
    rows = [{"case": "x", "error": "RuntimeError: no Docker"},
            {"case": "y", "error": "KeyError: 'floor'"}]
    results = tmp_path / "RESULTS.md"
    BENCH.write_results(rows, results)
    assert BENCH.read_raw(results) == rows
    again = tmp_path / "again.md"
    assert BENCH.main(["--render", str(results), "--output", str(again)]) == 0
    assert again.read_text() == results.read_text()


def test_farm_targets_follow_the_issue() -> None:
    assert BENCH.farm_target({"case": "ctypes_dlopen", "touched": 13e6}) == 1.75
    assert BENCH.farm_target({"case": "stdlib_tour", "touched": 21e6}) == 1.5
    assert BENCH.farm_target({"case": "lxml_xpath", "touched": 17e6}) is None
