"""What a FROM-scratch image needs besides Python (design.md section 3): the ELF
interpreter, users, /tmp, certificates, time zones, NSS config, the loader cache
config, the C.UTF-8 locale, and the data files the traced run opened outside the farm."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ..documents.interpreter import Interpreter
from ..documents.trace import Trace
from ..runtime import CA_BUNDLE, NONROOT
from . import elf
from .plan import Planner

PASSWD = ("root:x:0:0:root:/root:/sbin/nologin\n"
          f"nonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n")
GROUP = f"root:x:0:\nnonroot:x:{NONROOT}:\n"
NSSWITCH = """# Written by pyfarm-docker: glibc's built-in files and dns sources only.
passwd:    files
group:     files
shadow:    files
hosts:     files dns
networks:  files
protocols: files
services:  files
"""
# host.conf says "multi on": without it /etc/hosts answers only its first match.
_COPIED_AS_IS = ("/etc/services", "/etc/protocols", "/etc/host.conf", "/etc/gai.conf",
                 "/etc/ssl/openssl.cnf")
# Debian and most glibc distributions; glibc >= 2.35 builds it in as "C.utf8".
C_LOCALE = "/usr/lib/locale/C.utf8"
# Secrets the traced run may have opened: refused, with a warning, even then.
_SECRETS = ("/etc/shadow", "/etc/gshadow", "/etc/ssh/", "/root/", "/home/")
# The engine mounts the container's own /etc/hosts, resolv.conf and hostname at run time:
# the builder's would be wrong, and would make two builds of one app differ.
_NEVER_DATA = ("/tmp/", "/var/tmp/", "/run/", "/proc/", "/sys/", "/dev/", "/etc/ld.so.cache",
               "/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/etc/mtab",
               "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/pip.conf",
               "/root/.cache/", "/root/.config/pip/", "/etc/xdg/pip/")


def root_path(path: str) -> PurePosixPath:
    return PurePosixPath(path.lstrip("/"))


def add_essentials(p: Planner, trace: Trace, loader: str) -> None:
    """Add the runtime files the image's environment (``runtime.Runtime.env``) relies on."""
    _add_loader(p, loader)
    p.text(PurePosixPath("etc/passwd"), PASSWD, "runtime", "essential")
    p.text(PurePosixPath("etc/group"), GROUP, "runtime", "essential")
    p.text(PurePosixPath("etc/nsswitch.conf"), NSSWITCH, "runtime", "essential")
    p.text(PurePosixPath("etc/ld.so.conf"), "/" + str(p.under("ld_library_paths", "l")) + "\n",
           "runtime", "essential")
    p.directory(PurePosixPath("tmp"), "runtime", 0o1777)
    # The user's own, as in distroless: apps (matplotlib, pip caches) write below $HOME.
    p.directory(PurePosixPath("home/nonroot"), "runtime", 0o700, owner=NONROOT)
    for path in _COPIED_AS_IS:
        if os.path.isfile(path):
            p.file(root_path(path), os.path.realpath(path), "runtime", "essential", "essential")
    _add_ldconfig(p, trace)
    _add_certificates(p, trace.interpreter)
    _add_zoneinfo(p, trace.interpreter)
    _add_c_locale(p)
    _add_data_files(p, trace)


def _add_loader(p: Planner, loader: str) -> None:
    if loader:
        p.file(root_path(loader), os.path.realpath(loader), "runtime", "essential", "essential")


def _add_c_locale(p: Planner) -> None:
    """glibc's C.UTF-8 locale, which the image's LANG names: setlocale(LC_ALL, "") and
    locale.setlocale(..., "C.UTF-8") work whether or not the traced run called them."""
    if os.path.isfile(os.path.join(C_LOCALE, "LC_CTYPE")):
        p.tree(Path(C_LOCALE), root_path(C_LOCALE), "runtime", "essential", "essential")


def _add_ldconfig(p: Planner, trace: Trace) -> None:
    """ctypes.util.find_library runs /sbin/ldconfig -p: ship it when it is static, and
    with --prune only when the run imported ctypes.util (1 MB otherwise unused)."""
    if p.policy.prune and "ctypes.util" not in trace.imports:
        return
    info = elf.try_read("/sbin/ldconfig")
    if info is not None and not info.needed:
        p.file(PurePosixPath("sbin/ldconfig"), os.path.realpath("/sbin/ldconfig"),
               "runtime", "essential", "essential")


def _add_certificates(p: Planner, interp: Interpreter) -> None:
    """The CA bundle at SSL_CERT_FILE, and at OpenSSL's default path when that differs."""
    bundle = interp.ssl_cafile_resolved or interp.ssl_cafile
    if not bundle or not os.path.isfile(bundle):
        return
    ca_bundle = root_path(str(CA_BUNDLE))
    p.file(ca_bundle, os.path.realpath(bundle), "runtime", "essential", "essential")
    default = interp.ssl_cafile
    if default and root_path(default) != ca_bundle:
        p.link(root_path(default), ca_bundle, "runtime", "essential")


def _add_zoneinfo(p: Planner, interp: Interpreter) -> None:
    for directory in interp.tzpath:
        if os.path.isdir(directory):
            p.tree(Path(directory), root_path(directory), "runtime", "essential", "essential",
                   keep_links=True)


def _outside_farm(path: str, trace: Trace) -> bool:
    interp = trace.interpreter
    inside = [interp.stdlib, interp.lib_dynload, trace.app_dir, *(e.path for e in trace.sys_path)]
    return not any(path == d or path.startswith(d.rstrip("/") + "/") for d in inside)


def _add_data_files(p: Planner, trace: Trace) -> None:
    """Files the traced run opened through Python outside the farm."""
    for path in trace.files_opened:
        add_data_file(p, path, trace, "traced")


def add_data_file(p: Planner, path: str, trace: Trace, reason: str) -> None:
    """A file the run read outside the farm, at the absolute path it was opened by; never
    secrets (a warning says so), temporary files or the tracer's own."""
    shim = str(Path(__file__).resolve().parent)
    if path.startswith((*_NEVER_DATA, shim)) or not os.path.isfile(path):
        return
    outside = _outside_farm(path, trace)
    if path.startswith(_SECRETS) and outside:
        p.warnings.append(f"{path}: the run read it, but it is never shipped (secrets)")
    elif outside and root_path(path) not in p.entries:
        p.file(root_path(path), os.path.realpath(path), "runtime", "data", reason)
