"""Describe the interpreter this runs in, as JSON on stdout.

Run by the trace driver with the app's own interpreter (standard library
only, CPython 3.8+), so the assembler knows where that interpreter keeps
its stdlib, extension modules and site directories.
"""

from __future__ import annotations

import json
import os
import platform
import site
import ssl
import sys
import sysconfig


def _lib_dynload() -> str:
    for entry in sys.path:
        if os.path.basename(entry) == "lib-dynload":
            return entry
    return os.path.join(sysconfig.get_path("platstdlib"), "lib-dynload")


def _tzpath() -> list[str]:
    try:
        import zoneinfo
    except ImportError:  # Python 3.8
        return []
    return list(zoneinfo.TZPATH)


def describe() -> dict[str, object]:
    abiflags = getattr(sys, "abiflags", "")
    paths = ssl.get_default_verify_paths()
    return {
        "executable": os.path.realpath(sys.executable),
        "executable_as_called": sys.executable,
        "version": platform.python_version(),
        "version_info": list(sys.version_info[:3]),
        "implementation": sys.implementation.name,
        "abiflags": abiflags,
        "abi_thread": "t" if "t" in abiflags else "",
        "prefix": sys.prefix,
        "exec_prefix": sys.exec_prefix,
        "base_prefix": sys.base_prefix,
        "base_exec_prefix": sys.base_exec_prefix,
        "platlibdir": getattr(sys, "platlibdir", "lib"),
        "stdlib": sysconfig.get_path("stdlib"),
        "platstdlib": sysconfig.get_path("platstdlib"),
        "lib_dynload": _lib_dynload(),
        "site_packages": site.getsitepackages() if hasattr(site, "getsitepackages") else [],
        "in_virtualenv": sys.prefix != sys.base_prefix,
        "shared": bool(sysconfig.get_config_var("Py_ENABLE_SHARED")),
        "ldlibrary": sysconfig.get_config_var("LDLIBRARY") or "",
        "libdir": sysconfig.get_config_var("LIBDIR") or "",
        "soabi": sysconfig.get_config_var("SOABI") or "",
        "ssl_cafile": paths.openssl_cafile,
        "ssl_capath": paths.openssl_capath,
        "ssl_cafile_resolved": paths.cafile or "",
        "tzpath": _tzpath(),
        # False in a venv without the system site-packages: site adds no ~/.local then.
        "user_site": bool(site.ENABLE_USER_SITE),
    }


if __name__ == "__main__":
    json.dump(describe(), sys.stdout, indent=1, sort_keys=True)
