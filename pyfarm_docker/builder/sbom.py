"""What the image contains, for people and scanners: an SPDX 2.3 document, and dpkg
``status.d`` entries (the distroless convention) so trivy, grype and syft see the Debian
packages.

The document describes the image (a CONTAINER package) which CONTAINS:

- CPython, with its version, a ``pkg:generic/python`` purl and its CPE (it covers the
  interpreter's own native files: lib-dynload, a source-built libpython);
- every Python distribution shipped, as ``pkg:pypi/<PEP 503 name>@<version>``;
- every Debian package a shipped file came from, as ``pkg:deb/<distro>/<name>@<version>
  ?arch=..&distro=..`` (the native libraries it covers are named in its comment);
- every native library a wheel bundles (``numpy.libs/libopenblas...so``) as a LIBRARY
  package of its own, with the wheel's version and purl, CONTAINED by that distribution:
  the wheel's purl alone would not tell that an OpenBLAS ships inside;
- every other shipped native library (no package manager knows it) as a LIBRARY package
  with a ``pkg:generic`` purl and the version its file name gives.

License fields are SPDX expressions of the SPDX license list, or a ``LicenseRef-`` with
the original text in ``hasExtractedLicensingInfos``, or NOASSERTION (Debian packages:
their copyright files use Debian's own license names). The documentNamespace ends in a
hash of what the farm holds, so two different images never share one and the same build
gives the same document.
"""

from __future__ import annotations

import datetime
import email.message
import email.parser
import hashlib
import os
import re
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Sequence

from .. import __version__
from ..documents.trace import Distribution, Trace

SPDX_PATH = "sbom.spdx.json"
STATUS_DIR = "var/lib/dpkg/status.d"
NAMESPACE = "https://pyfarm-docker.invalid/spdx"
_NO_ASSERTION = "NOASSERTION"
_EXTENSION = re.compile(r"\.(cpython-[^.]+|abi3|pypy[^.]*)\.so$")



def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# SPDX license list identifiers (https://spdx.org/licenses/) seen on Python distributions
# and their bundled libraries; an identifier outside this list becomes a LicenseRef.
LICENSE_IDS = _words("""
0BSD AAL AFL-1.1 AFL-1.2 AFL-2.0 AFL-2.1 AFL-3.0 AGPL-1.0-only AGPL-1.0-or-later
AGPL-3.0-only AGPL-3.0-or-later Apache-1.0 Apache-1.1 Apache-2.0 APSL-2.0 Artistic-1.0
Artistic-1.0-Perl Artistic-2.0 Beerware BlueOak-1.0.0 BSD-1-Clause BSD-2-Clause
BSD-2-Clause-Patent BSD-3-Clause BSD-3-Clause-Clear BSD-3-Clause-LBNL BSD-3-Clause-Modification
BSD-4-Clause BSD-Source-Code BSL-1.0 bzip2-1.0.6 CAL-1.0 CC-BY-1.0 CC-BY-2.0 CC-BY-2.5
CC-BY-3.0 CC-BY-4.0 CC-BY-SA-3.0 CC-BY-SA-4.0 CC-PDDC CC0-1.0 CDDL-1.0 CDDL-1.1 CECILL-2.1
CECILL-B CECILL-C CNRI-Python CNRI-Python-GPL-Compatible curl ECL-2.0 EFL-2.0 EPL-1.0 EPL-2.0
EUPL-1.1 EUPL-1.2 FSFAP FSFUL FSFULLR FTL GFDL-1.3-only GFDL-1.3-or-later GPL-1.0-only
GPL-1.0-or-later GPL-2.0-only GPL-2.0-or-later GPL-3.0-only GPL-3.0-or-later HPND
HPND-sell-variant ICU IJG Info-ZIP Intel ISC JSON LGPL-2.0-only LGPL-2.0-or-later
LGPL-2.1-only LGPL-2.1-or-later LGPL-3.0-only LGPL-3.0-or-later Libpng libpng-2.0 libtiff
LPPL-1.3c MirOS MIT MIT-0 MIT-CMU MIT-Modern-Variant MPL-1.0 MPL-1.1 MPL-2.0
MPL-2.0-no-copyleft-exception MS-PL MS-RL NCSA OFL-1.1 OLDAP-2.8 OpenSSL OSL-3.0 PHP-3.01
PostgreSQL PSF-2.0 Python-2.0 Python-2.0.1 Qhull Ruby SGI-B-2.0 Sleepycat SSPL-1.0 TCL
UCL-1.0 Unicode-3.0 Unicode-DFS-2016 Unlicense UPL-1.0 Vim W3C WTFPL X11 XFree86-1.1 Xnet
Zlib zlib-acknowledgement ZPL-2.0 ZPL-2.1
""")
LICENSE_EXCEPTIONS = _words("""
Autoconf-exception-3.0 Bison-exception-2.2 Classpath-exception-2.0 GCC-exception-3.1
LLVM-exception OpenJDK-assembly-exception-1.0 Qt-LGPL-exception-1.1 WxWindows-exception-3.1
""")
_BY_LOWER = {i.lower(): i for i in LICENSE_IDS | LICENSE_EXCEPTIONS}
# Deprecated identifiers people still write, and the words of the License: field.
_ALIASES = {
    "gpl-2.0": "GPL-2.0-only", "gpl-2.0+": "GPL-2.0-or-later", "gpl-3.0": "GPL-3.0-only",
    "gpl-3.0+": "GPL-3.0-or-later", "lgpl-2.1": "LGPL-2.1-only", "lgpl-2.1+":
    "LGPL-2.1-or-later", "lgpl-3.0": "LGPL-3.0-only", "lgpl-3.0+": "LGPL-3.0-or-later",
    "agpl-3.0": "AGPL-3.0-only", "mit license": "MIT", "the mit license": "MIT",
    "mit licence": "MIT", "apache 2.0": "Apache-2.0", "apache-2": "Apache-2.0",
    "apache 2": "Apache-2.0", "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0", "apache software license 2.0": "Apache-2.0",
    "apache license version 2.0": "Apache-2.0", "bsd-3": "BSD-3-Clause",
    "3-clause bsd": "BSD-3-Clause", "new bsd": "BSD-3-Clause", "bsd 3-clause": "BSD-3-Clause",
    "bsd-2": "BSD-2-Clause", "2-clause bsd": "BSD-2-Clause", "simplified bsd": "BSD-2-Clause",
    "psf": "PSF-2.0", "psf license": "PSF-2.0", "python software foundation license":
    "PSF-2.0", "mpl 2.0": "MPL-2.0", "mpl-2": "MPL-2.0", "isc license": "ISC",
    "public domain": "", "unlicense": "Unlicense", "zlib license": "Zlib",
}
# Trove classifiers that name one license (vaguer ones, "BSD License", do not count).
_CLASSIFIERS = {
    "MIT License": "MIT", "MIT No Attribution License (MIT-0)": "MIT-0",
    "ISC License (ISCL)": "ISC", "Python Software Foundation License": "PSF-2.0",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "Mozilla Public License 1.1 (MPL 1.1)": "MPL-1.1",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "GNU Affero General Public License v3": "AGPL-3.0-only",
    "GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "The Unlicense (Unlicense)": "Unlicense", "zlib/libpng License": "Zlib",
    "Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "Eclipse Public License 1.0 (EPL-1.0)": "EPL-1.0",
    "Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "European Union Public Licence 1.2 (EUPL 1.2)": "EUPL-1.2",
    "Universal Permissive License (UPL)": "UPL-1.0",
    "Historical Permission Notice and Disclaimer (HPND)": "HPND",
    "Apache Software License 2.0": "Apache-2.0",
}
_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def spdx_expression(text: str) -> str | None:
    """``text`` as a valid SPDX license expression of known identifiers (operators upper
    case, identifiers in their canonical case), or None when it is not one."""
    tokens = _TOKEN.findall(text.strip())
    out: list[str] = []
    depth, expect_id, after_with, simple = 0, True, False, False
    for token in tokens:
        upper = token.upper()
        if token == "(" and expect_id and not after_with:
            depth += 1
            out.append(token)
        elif token == ")" and not expect_id and depth > 0:
            depth -= 1
            simple = False
            out.append(token)
        elif upper in ("AND", "OR", "WITH") and not expect_id:
            if upper == "WITH" and not simple:  # only a single license takes an exception
                return None
            after_with, expect_id = upper == "WITH", True
            out.append(upper)
        elif expect_id:
            name = _BY_LOWER.get(token.lower())  # "X+" too is refused by validators
            wanted = LICENSE_EXCEPTIONS if after_with else LICENSE_IDS
            if name is None or name not in wanted:
                return None
            out.append(name)
            simple = not after_with
            expect_id = after_with = False
        else:
            return None
    if expect_id or depth != 0 or not out:
        return None
    return " ".join(out).replace("( ", "(").replace(" )", ")")


@dataclass(frozen=True)
class License:
    """A declared license: an SPDX expression, or a LicenseRef with its text."""

    expression: str
    text: str = ""  # for a LicenseRef: what the metadata said


def _from_words(text: str) -> str | None:
    expression = spdx_expression(text)
    if expression is not None:
        return expression
    alias = _ALIASES.get(" ".join(text.lower().split()))
    return alias or None


def declared_license(meta: email.message.Message, ref: str) -> License:
    """The license a distribution's METADATA declares: License-Expression (PEP 639), a
    License: field that is (or plainly names) an SPDX expression, or classifiers that each
    name one license (several mean a choice: OR); else a LicenseRef ``ref`` holding the
    metadata's words; NOASSERTION when it says nothing."""
    expression = meta.get("License-Expression")
    if expression:
        found = spdx_expression(str(expression))
        return License(found) if found else License(ref, str(expression))
    field = (meta.get("License") or "").strip()
    if field and "\n" not in field:
        found = _from_words(field)
        if found:
            return License(found)
    classifiers = sorted({c.split(" :: ")[-1] for c in meta.get_all("Classifier") or []
                          if c.startswith("License :: ")})
    mapped = [_CLASSIFIERS.get(c) for c in classifiers]
    if classifiers and all(mapped):
        return License(" OR ".join(sorted({m for m in mapped if m})))
    words = field or "; ".join(classifiers)
    return License(ref, words) if words else License(_NO_ASSERTION)


def pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _purl_part(text: str) -> str:
    """Percent-encoding of a purl component (``:`` may stay, as purl allows)."""
    return urllib.parse.quote(text, safe="").replace("%3A", ":")


def pypi_purl(name: str, version: str) -> str:
    return f"pkg:pypi/{_purl_part(pep503(name))}" + (
        f"@{_purl_part(version)}" if version else "")


def deb_purl(distro: str, name: str, version: str, arch: str, release: str) -> str:
    qualifiers = [f"arch={_purl_part(arch)}"] if arch else []
    if release:
        qualifiers.append(f"distro={_purl_part(release)}")
    query = "?" + "&".join(qualifiers) if qualifiers else ""
    return f"pkg:deb/{distro}/{_purl_part(name)}@{_purl_part(version)}{query}"


def generic_purl(name: str, version: str) -> str:
    return f"pkg:generic/{_purl_part(name)}" + (f"@{_purl_part(version)}" if version else "")


def _metadata(dist: Distribution) -> email.message.Message:
    path = Path(dist.site_dir, dist.dist_info, "METADATA")
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return email.parser.Parser().parsestr(text)


# -- Debian ---------------------------------------------------------------------------------

def _variants(path: str) -> list[str]:
    """Both sides of the /usr merge: dpkg knows a file by the name its package used."""
    variants = [path]
    if path.startswith("/usr/lib/") or path.startswith("/usr/lib64/"):
        variants.append(path[len("/usr"):])
    elif path.startswith("/lib/") or path.startswith("/lib64/"):
        variants.append("/usr" + path)
    return variants


def dpkg_owners(paths: Iterable[str]) -> dict[str, str]:
    """path -> the Debian package that installed it, for the paths dpkg knows."""
    asked = sorted({v for path in paths for v in _variants(path)})
    if not asked:
        return {}
    try:
        done = subprocess.run(["dpkg-query", "-S", *asked], capture_output=True, text=True,
                              check=False)
    except OSError:
        return {}  # not a Debian-based builder
    owners: dict[str, str] = {}
    for line in done.stdout.splitlines():
        packages, sep, path = line.partition(": ")
        if sep and "diversion" not in packages:
            owners[path] = packages.split(", ")[0].split(":")[0]
    return {path: owners[v] for path in paths for v in _variants(path) if v in owners}


def debian_packages(names: Iterable[str]) -> dict[str, str]:
    """package -> its dpkg status stanza."""
    names = sorted(set(names))
    if not names:
        return {}
    done = subprocess.run(["dpkg-query", "-s", *names], capture_output=True, text=True,
                          check=False)
    stanzas = [s.strip() + "\n" for s in done.stdout.split("\n\n") if s.strip()]
    return {_field(s, "Package"): s for s in stanzas}


def _field(stanza: str, name: str) -> str:
    for line in stanza.splitlines():
        if line.startswith(f"{name}: "):
            return line[len(name) + 2:]
    return ""


def os_release(path: str = "/etc/os-release") -> tuple[str, str]:
    """(ID, ID-VERSION_ID) of the builder's distribution, e.g. (debian, debian-12)."""
    values: dict[str, str] = {}
    try:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key] = value.strip().strip('"')
    except OSError:
        pass
    distro = values.get("ID", "debian") or "debian"
    release = f"{distro}-{values['VERSION_ID']}" if values.get("VERSION_ID") else ""
    return distro, release


# -- the document ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Native:
    """A shipped native object (a file below reals/r): where the builder had it and what
    it belongs to."""

    dest: str
    source: str
    origin: str  # the plan's: "dist:NAME", "stdlib", "library", ...

    @property
    def name(self) -> str:
        """Its name in the farm (which is its name in the builder, but for a clash)."""
        return os.path.basename(self.dest)

    @property
    def extension(self) -> bool:
        return bool(_EXTENSION.search(self.name))


def natives(entries: Iterable[Any], prefix: PurePosixPath) -> list[Native]:
    reals = str(prefix / "reals" / "r").lstrip("/") + "/"
    found = []
    for entry in entries:
        dest = str(entry.dest).lstrip("/")
        if entry.kind == "file" and entry.source and dest.startswith(reals):
            found.append(Native(dest, entry.source, entry.origin))
    return sorted(found, key=lambda n: n.dest)


def native_sources(entries: Iterable[Any]) -> list[str]:
    """Builder paths worth asking dpkg about: libraries, the interpreter, essentials."""
    wanted = {"library", "interpreter", "essential", "data"}
    sources = [e.source for e in entries if e.kind == "file" and e.origin in wanted]
    return sorted({os.path.realpath(s) for s in sources if s} | set(sources))


def fingerprint(title: str, entries: Iterable[Any]) -> str:
    """A hash of what the farm holds: every path, its kind and origin, and the size of each
    file (the app's files and generated ones by content)."""
    digest = hashlib.sha256(title.encode())
    for entry in sorted(entries, key=lambda e: str(e.dest)):
        detail = ""
        if entry.kind == "text":
            detail = hashlib.sha256(entry.content).hexdigest()
        elif entry.kind == "link":
            detail = entry.target
        elif entry.source:
            try:
                if entry.origin == "app":
                    detail = hashlib.sha256(Path(entry.source).read_bytes()).hexdigest()
                else:
                    detail = str(os.stat(entry.source).st_size)
            except OSError:
                detail = "?"
        digest.update(f"\0{entry.dest}\0{entry.kind}\0{entry.origin}\0{detail}".encode())
    return digest.hexdigest()


def _package(spdx_id: str, name: str, version: str, license_: str, purl: str | None,
             purpose: str, comment: str = "") -> dict[str, Any]:
    package: dict[str, Any] = {
        "SPDXID": spdx_id, "name": name, "downloadLocation": _NO_ASSERTION,
        "licenseConcluded": _NO_ASSERTION, "licenseDeclared": license_,
        "copyrightText": _NO_ASSERTION, "filesAnalyzed": False,
        "primaryPackagePurpose": purpose,
    }
    if version:
        package["versionInfo"] = version
    if purl:
        package["externalRefs"] = [{"referenceCategory": "PACKAGE-MANAGER",
                                    "referenceType": "purl", "referenceLocator": purl}]
    if comment:
        package["comment"] = comment
    return package


def _ref_id(kind: str, name: str) -> str:
    return f"LicenseRef-{kind}-" + re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-")


def _shipped(names: Sequence[str]) -> str:
    return "shipped native files: " + ", ".join(sorted(set(names))) if names else ""


@dataclass(frozen=True)
class Sbom:
    document: dict[str, Any]
    debian: dict[str, str]  # package -> dpkg status stanza, for status.d


def build(trace: Trace, entries: Sequence[Any], prefix: PurePosixPath, epoch: int) -> Sbom:
    """The SPDX document of the farm planned as ``entries``, and the Debian packages it
    came from."""
    interp = trace.interpreter
    title = PurePosixPath(trace.app_dir).name or "app"
    shipped = natives(entries, prefix)
    marker = str(Path(interp.stdlib, "os.py"))
    owners = dpkg_owners([*native_sources(entries), *(n.source for n in shipped), marker])
    debian = debian_packages(owners.values())
    distro, release = os_release()
    packages: list[dict[str, Any]] = []
    relationships: list[dict[str, str]] = []
    licenses: dict[str, str] = {}

    def add(package: dict[str, Any], parent: str = "SPDXRef-Image") -> None:
        packages.append(package)
        relationships.append({"spdxElementId": parent, "relationshipType": "CONTAINS",
                              "relatedSpdxElement": package["SPDXID"]})

    cpython_dirs = tuple(d.rstrip("/") + "/" for d in (interp.stdlib, interp.lib_dynload,
                                                       interp.platstdlib) if d)
    own_files: dict[str, list[str]] = {"cpython": []}
    dists = {d.name: d for d in trace.distributions}
    bundled: list[tuple[Distribution, Native]] = []
    alone: list[Native] = []
    for native in shipped:
        owner = owners.get(native.source)
        dist = dists.get(native.origin[len("dist:"):]) if native.origin.startswith(
            "dist:") else None
        if owner is not None:
            own_files.setdefault(f"deb:{owner}", []).append(native.name)
        elif dist is not None:
            if not native.extension:
                bundled.append((dist, native))
        elif (native.source.startswith(cpython_dirs) or native.source == interp.executable
              or native.name.startswith("libpython")):
            own_files["cpython"].append(native.name)
        elif not native.extension:
            alone.append(native)

    version = interp.version
    cpython = _package("SPDXRef-CPython", "python", version, "Python-2.0",
                       generic_purl("python", version), "APPLICATION",
                       _shipped(own_files["cpython"]))
    cpython["externalRefs"].append({
        "referenceCategory": "SECURITY", "referenceType": "cpe23Type",
        "referenceLocator": f"cpe:2.3:a:python:python:{version}:*:*:*:*:*:*:*"})
    add(cpython)

    dist_ids: dict[str, str] = {}
    for n, dist in enumerate(sorted(trace.distributions, key=lambda d: pep503(d.name)), 1):
        spdx_id = f"SPDXRef-Python-{n}"
        dist_ids[dist.name] = spdx_id
        found = declared_license(_metadata(dist), _ref_id("pypi", pep503(dist.name)))
        if found.text:
            licenses[found.expression] = found.text
        add(_package(spdx_id, dist.name, dist.version, found.expression,
                     pypi_purl(dist.name, dist.version), "LIBRARY"))

    for n, (name, stanza) in enumerate(sorted(debian.items()), 1):
        version, arch = _field(stanza, "Version"), _field(stanza, "Architecture")
        add(_package(f"SPDXRef-Debian-{n}", name, version, _NO_ASSERTION,
                     deb_purl(distro, name, version, arch, release), "LIBRARY",
                     _shipped(own_files.get(f"deb:{name}", []))))

    for n, (dist, native) in enumerate(bundled, 1):
        rel = os.path.relpath(native.source, dist.site_dir)
        add(_package(f"SPDXRef-Bundled-{n}", rel, dist.version, _NO_ASSERTION,
                     pypi_purl(dist.name, dist.version), "LIBRARY",
                     f"bundled in the {dist.name} wheel; shipped as /{native.dest}"),
            dist_ids[dist.name])

    for n, native in enumerate(alone, 1):
        match = re.search(r"\.so\.([0-9][0-9.]*)$", native.name)
        stem = re.sub(r"\.so(\..*)?$", "", native.name)
        lib_version = match.group(1) if match else ""
        add(_package(f"SPDXRef-Library-{n}", native.name, lib_version, _NO_ASSERTION,
                     generic_purl(stem, lib_version), "LIBRARY",
                     f"from {native.source} in the builder, no package manager's; "
                     f"shipped as /{native.dest}"))

    created = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    image = _package("SPDXRef-Image", title, "", _NO_ASSERTION, None, "CONTAINER",
                     f"the image pyfarm-docker {__version__} assembled")
    document: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
        "name": title,
        "documentNamespace": f"{NAMESPACE}/{urllib.parse.quote(title, safe='')}-"
                             f"{fingerprint(title, entries)}",
        "creationInfo": {"created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "creators": [f"Tool: pyfarm-docker-{__version__}"]},
        "packages": [image, *packages],
        "relationships": [{"spdxElementId": "SPDXRef-DOCUMENT",
                           "relationshipType": "DESCRIBES",
                           "relatedSpdxElement": "SPDXRef-Image"}, *relationships],
    }
    if licenses:
        document["hasExtractedLicensingInfos"] = [
            {"licenseId": ref, "extractedText": text, "name": ref[len("LicenseRef-"):]}
            for ref, text in sorted(licenses.items())]
    return Sbom(document, debian)
