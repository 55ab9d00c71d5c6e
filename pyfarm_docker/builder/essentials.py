"""What a FROM-scratch image needs besides Python (design.md section 3): the ELF
interpreter, users, /tmp, certificates, time zones, NSS config, the loader cache
config, and the data files the traced run opened outside the farm."""

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
# Secrets the traced run may have opened: refused, with a warning, even then.
_SECRETS = ("/etc/shadow", "/etc/gshadow", "/etc/ssh/", "/root/", "/home/")
_NEVER_DATA = ("/tmp/", "/var/tmp/", "/run/", "/proc/", "/sys/", "/dev/", "/etc/ld.so.cache",
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
    _add_ldconfig(p)
    _add_certificates(p, trace.interpreter)
    _add_zoneinfo(p, trace.interpreter)
    _add_gconv(p, trace.mapped)
    _add_data_files(p, trace)


def _add_loader(p: Planner, loader: str) -> None:
    if loader:
        p.file(root_path(loader), os.path.realpath(loader), "runtime", "essential", "essential")


def _add_ldconfig(p: Planner) -> None:
    """ctypes.util.find_library runs /sbin/ldconfig -p: ship it when it is static."""
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


def _add_gconv(p: Planner, mapped: tuple[str, ...]) -> None:
    """iconv modules that C code loaded, with their configuration."""
    dirs = {os.path.dirname(m) for m in mapped if "/gconv/" in m}
    for directory in sorted(dirs):
        for m in mapped:
            if os.path.dirname(m) == directory:
                p.file(root_path(m), os.path.realpath(m), "runtime", "essential", "essential")
        for conf in sorted(Path(directory).glob("gconv-modules*")):
            if conf.is_file():
                p.file(root_path(str(conf)), str(conf.resolve()), "runtime", "essential",
                       "essential")
            elif conf.is_dir():
                p.tree(conf, root_path(str(conf)), "runtime", "essential", "essential")


def _outside_farm(path: str, trace: Trace) -> bool:
    interp = trace.interpreter
    inside = [interp.stdlib, interp.lib_dynload, trace.app_dir, *(e.path for e in trace.sys_path)]
    return not any(path == d or path.startswith(d.rstrip("/") + "/") for d in inside)


def _add_data_files(p: Planner, trace: Trace) -> None:
    """Files the traced run opened outside the farm keep their absolute paths."""
    shim = str(Path(__file__).resolve().parent)
    for path in trace.files_opened:
        if path.startswith((*_NEVER_DATA, shim)) or not os.path.isfile(path):
            continue
        if path.startswith(_SECRETS) and _outside_farm(path, trace):
            p.warnings.append(f"{path}: the run read it, but it is never shipped (secrets)")
            continue
        if _outside_farm(path, trace) and root_path(path) not in p.entries:
            p.file(root_path(path), os.path.realpath(path), "runtime", "data", "traced")
