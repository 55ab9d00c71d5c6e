"""One app whose native code (not Python's open()) reads five kinds of files, for the
host and Docker tiers of issue 15: glibc loading a locale chosen through LANG, ncurses
reading a terminfo entry, iconv loading a gconv module, OpenSSL reading the config
OPENSSL_CONF names, and a C extension of a wheel built here that fopen()s a data file
outside its wheel.

Each reader prints one line, ``NAME: VALUE``, or ``NAME: FAIL ERROR`` when it failed, so
one traced run checks all five and each test asserts its own line. The files outside the
Python installation live at the same absolute paths on the host (the host tier) and in
the builder's base image (the Docker tier): the compiled de_DE.UTF-8 locale under
/usr/lib/locale, and NATIVE_DIR's openssl.cnf and greeting.txt.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from .wheels import make_wheel

NATIVE_DIR = "/opt/pyfarm-native"
OPENSSL_CNF = f"{NATIVE_DIR}/openssl.cnf"
GREETING_TXT = f"{NATIVE_DIR}/greeting.txt"
LOCALE = "de_DE.UTF-8"
LOCALE_DIR = "/usr/lib/locale/de_DE.utf8"  # as `localedef -i de_DE -f UTF-8 DIR/...` names it
TERMINFO = "xterm-256color"
GREETING = "Guten Tag aus einer Datei neben dem Rad"
WHEEL_NAME = "nativegreet"
WHEEL_TAG = "cp311-cp311-linux_x86_64"

# OpenSSL 3 config syntax (config(5), SSL_CONF_cmd(3)): the default SSL_CTX settings come
# from the "system_default" section. Python's create_default_context() sets the minimum
# protocol itself (TLS 1.2) after OpenSSL applied the config, so a MinProtocol would not
# show; the maximum is OpenSSL's: MAXIMUM_SUPPORTED without this file, TLSv1_2 with it.
OPENSSL_CONFIG = """openssl_conf = pyfarm_init

[pyfarm_init]
ssl_conf = pyfarm_ssl

[pyfarm_ssl]
system_default = pyfarm_system_default

[pyfarm_system_default]
MaxProtocol = TLSv1.2
"""

# What each reader prints when it read its file; the farm must print the same.
EXPECTED = {
    "locale": "locale: decimal_point=',' DAY_1='Sonntag'",
    "terminfo": "terminfo: colors=256",
    "iconv": "iconv: ISO-8859-15 a4 -> UTF-8 e282ac",
    "openssl": "openssl: maximum_version=TLSv1_2",
    "wheel": f"wheel: {GREETING!r}",
}
READERS = tuple(EXPECTED)

APP = f'''import ctypes, os, sys

# OpenSSL reads the config it names once, when the ssl module first needs it: set it first.
os.environ["OPENSSL_CONF"] = {OPENSSL_CNF!r}


def report(name, read):
    try:
        value = read()
    except Exception as exc:
        value = "FAIL " + type(exc).__name__ + ": " + str(exc)
    print(name + ": " + value, flush=True)


def read_locale():
    import locale
    for key in [k for k in os.environ if k.startswith("LC_")]:
        del os.environ[key]
    os.environ["LANG"] = {LOCALE!r}
    locale.setlocale(locale.LC_ALL, "")
    point = locale.localeconv()["decimal_point"]
    return "decimal_point=%r DAY_1=%r" % (point, locale.nl_langinfo(locale.DAY_1))


def read_terminfo():
    import curses
    for key in ("TERMINFO", "TERMINFO_DIRS"):
        os.environ.pop(key, None)
    fd = os.open("/dev/null", os.O_WRONLY)
    try:
        curses.setupterm({TERMINFO!r}, fd)
    finally:
        os.close(fd)
    return "colors=%d" % curses.tigetnum("colors")


def read_iconv():
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.iconv_open.restype = ctypes.c_void_p
    libc.iconv_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.iconv.restype = ctypes.c_size_t
    libc.iconv.argtypes = [ctypes.c_void_p] + [ctypes.c_void_p] * 4
    libc.iconv_close.argtypes = [ctypes.c_void_p]
    cd = libc.iconv_open(b"UTF-8", b"ISO-8859-15")
    if cd is None or cd == ctypes.c_void_p(-1).value:
        err = ctypes.get_errno()
        raise OSError(err, "iconv_open(UTF-8, ISO-8859-15): " + os.strerror(err))
    try:
        source = ctypes.create_string_buffer(b"\\xa4", 1)
        target = ctypes.create_string_buffer(16)
        inptr, outptr = ctypes.c_char_p(ctypes.addressof(source)), ctypes.c_char_p(
            ctypes.addressof(target))
        inleft, outleft = ctypes.c_size_t(1), ctypes.c_size_t(16)
        done = libc.iconv(cd, ctypes.byref(inptr), ctypes.byref(inleft), ctypes.byref(outptr),
                          ctypes.byref(outleft))
        if done == ctypes.c_size_t(-1).value:
            err = ctypes.get_errno()
            raise OSError(err, "iconv: " + os.strerror(err))
        converted = target.raw[:16 - outleft.value]
    finally:
        libc.iconv_close(cd)
    return "ISO-8859-15 a4 -> UTF-8 " + converted.hex()


def read_openssl():
    import ssl
    return "maximum_version=" + ssl.create_default_context().maximum_version.name


def read_wheel():
    import {WHEEL_NAME}
    return repr({WHEEL_NAME}.greeting())


report("locale", read_locale)
report("terminfo", read_terminfo)
report("iconv", read_iconv)
report("openssl", read_openssl)
report("wheel", read_wheel)
'''

EXT_C = r"""
#include <Python.h>
#include <stdio.h>

/* Reads a file outside the wheel with C stdio: Python's audit hooks never see it. */
static PyObject *greeting(PyObject *self, PyObject *args) {
    char buf[512];
    size_t n;
    FILE *f = fopen("@GREETING_TXT@", "r");
    if (f == NULL)
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, "@GREETING_TXT@");
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return PyUnicode_DecodeUTF8(buf, (Py_ssize_t)n, "strict");
}

static PyMethodDef methods[] = {{"greeting", greeting, METH_NOARGS, ""}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_greet", "", -1, methods};
PyMODINIT_FUNC PyInit__greet(void) { return PyModule_Create(&module); }
"""


def lines(stdout: str) -> dict[str, str]:
    """Each reader's line of the app's output, by reader."""
    found = {}
    for line in stdout.splitlines():
        name = line.split(":", 1)[0]
        if name in EXPECTED and name not in found:
            found[name] = line
    return found


def write_native_files(dest: Path) -> Path:
    """NATIVE_DIR's files (openssl.cnf, greeting.txt), in ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / Path(OPENSSL_CNF).name).write_text(OPENSSL_CONFIG)
    (dest / Path(GREETING_TXT).name).write_text(GREETING)
    return dest


def compile_locale(dest: Path) -> Path:
    """de_DE.UTF-8 compiled from the host's locale sources (Debian's ``locales``
    package) into the directory ``dest/de_DE.utf8``, as glibc reads it from
    /usr/lib/locale when no locale-archive holds it."""
    sources = Path("/usr/share/i18n/locales/de_DE")
    if not sources.is_file():
        raise RuntimeError(f"{sources} is missing: install Debian's locales package "
                           "(scripts/test-deps does)")
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / Path(LOCALE_DIR).name
    done = subprocess.run(["localedef", "-i", "de_DE", "-f", "UTF-8", str(out)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 or not (out / "LC_CTYPE").is_file():
        raise RuntimeError(f"localedef failed ({done.returncode}): {done.stderr}")
    return out


def greeting_wheel(dest: Path, python: str) -> Path:
    """A platform wheel of WHEEL_NAME whose C extension, built with gcc for ``python``,
    returns GREETING_TXT's contents, read with fopen()."""
    info = subprocess.run([python, "-c", "import sysconfig as s; print(s.get_config_var("
                           "'EXT_SUFFIX')); print(s.get_paths()['include'])"],
                          capture_output=True, text=True, check=True).stdout.split()
    suffix, include = info[0], info[1]
    build = dest / f"build-{WHEEL_NAME}"
    build.mkdir(parents=True, exist_ok=True)
    source = build / "_greet.c"
    source.write_text(EXT_C.replace("@GREETING_TXT@", GREETING_TXT))
    ext = build / f"_greet{suffix}"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", f"-I{include}", "-o", str(ext),
                    str(source)], check=True)
    files = {f"{WHEEL_NAME}/__init__.py": b"from ._greet import greeting\n",
             f"{WHEEL_NAME}/_greet{suffix}": ext.read_bytes()}
    wheel = make_wheel(dest, WHEEL_NAME, files, WHEEL_TAG)
    shutil.rmtree(build)
    return wheel


def tree_digest(*roots: Path) -> str:
    """A digest of the files below ``roots`` (names and contents), for cache keys."""
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(root.parent)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()
