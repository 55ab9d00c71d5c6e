"""The native tracer's log, folded into trace.json's `native` records: only the Python
processes' files, absent paths apart, other programs listed; and which compiled locale a
file read by glibc belongs to."""

from __future__ import annotations

import errno
from pathlib import Path

from pyfarm_docker.builder.nativefiles import locale_dir
from pyfarm_docker.builder.nativelog import read_log

PY = "/usr/bin/python3.11"
LOG = f"""traced\t0\t\t
read\t0\t{PY}\t/usr/lib/locale/de_DE.utf8/LC_TIME
read\t{errno.ENOENT}\t{PY}\t/usr/lib/locale/locale-archive
read\t0\t/usr/bin/bash\t/etc/bash.bashrc
dir\t0\t{PY}\t/srv/data/../data
write\t0\t{PY}\t/srv/out.txt
probe\t0\t{PY}\t/etc/terminfo
probe\t{errno.ENOTDIR}\t{PY}\t/etc/hostname/x
probe\t{errno.EACCES}\t{PY}\t/root/secret
exec\t0\t{PY}\t/usr/bin/git
exec\t0\t{PY}\t/usr/bin/python3.11
exec\t{errno.ENOENT}\t{PY}\t/usr/local/bin/git
read\t0\t{PY}\t/proc/self/maps
read\t0\t{PY}\t/tmp/pyfarm-trace-1/events.log
read\t0\t{PY}\t/srv/tab\\there
"""


def test_the_log_becomes_the_native_records(tmp_path: Path) -> None:
    log = tmp_path / "native.log"
    log.write_text(LOG)
    native = read_log(log, {PY}, ("/tmp/pyfarm-trace-1",))
    assert native.traced and native.note == ""
    assert native.read == ("/srv/tab\there", "/usr/lib/locale/de_DE.utf8/LC_TIME")
    assert native.listed == ("/srv/data",)
    assert native.written == ("/srv/out.txt",)
    assert native.probed == ("/etc/terminfo", "/root/secret")
    assert native.absent == ("/etc/hostname/x", "/usr/lib/locale/locale-archive",
                             "/usr/local/bin/git")
    assert native.executed == ("/usr/bin/git", "/usr/bin/python3.11")
    assert native.programs == ("/usr/bin/git",)


def test_a_refused_ptrace_is_a_note(tmp_path: Path) -> None:
    log = tmp_path / "native.log"
    log.write_text(f"untraced\t{errno.EPERM}\t\tptrace is not permitted here\n")
    native = read_log(log, {PY})
    assert (native.traced, native.note, native.read) == (
        False, "ptrace is not permitted here", ())
    assert read_log(tmp_path / "never-written", {PY}).note == (
        "the native file tracer did not start")


def test_locale_files_name_their_directory(tmp_path: Path) -> None:
    locale = tmp_path / "de_DE.utf8"
    (locale / "LC_MESSAGES").mkdir(parents=True)
    for name in ("LC_CTYPE", "LC_TIME", "LC_MESSAGES/SYS_LC_MESSAGES"):
        (locale / name).write_bytes(b"")
    catalog = tmp_path / "de" / "LC_MESSAGES"
    catalog.mkdir(parents=True)
    (catalog / "libc.mo").write_bytes(b"")
    assert locale_dir(str(locale / "LC_TIME")) == str(locale)
    assert locale_dir(str(locale / "LC_MESSAGES" / "SYS_LC_MESSAGES")) == str(locale)
    assert locale_dir(str(catalog / "libc.mo")) is None
    assert locale_dir(str(tmp_path / "LC_TIME")) is None
