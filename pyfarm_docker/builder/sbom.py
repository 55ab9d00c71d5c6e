"""What the image contains, for people and scanners: an SPDX 2.3 document listing every
Python distribution and every Debian package a shipped file came from, and dpkg
``status.d`` entries (the distroless convention) so trivy, grype and syft see them."""

from __future__ import annotations

import email.parser
import os
import subprocess
from pathlib import Path
from typing import Any, Iterable

from .. import __version__
from ..documents.trace import Distribution

SPDX_PATH = "sbom.spdx.json"
STATUS_DIR = "var/lib/dpkg/status.d"
_NO_ASSERTION = "NOASSERTION"


def _license(meta: Any) -> str:
    expression = meta.get("License-Expression")
    if expression:
        return str(expression)
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or []
                   if c.startswith("License :: OSI Approved :: ")]
    if classifiers:
        return " AND ".join(sorted(set(classifiers)))
    text = (meta.get("License") or "").strip().splitlines()
    return text[0][:80] if text else _NO_ASSERTION


def python_packages(distributions: Iterable[Distribution]) -> list[dict[str, str]]:
    out = []
    for dist in distributions:
        path = Path(dist.site_dir, dist.dist_info, "METADATA")
        meta = email.parser.Parser().parsestr(path.read_text(errors="replace")
                                              if path.exists() else "")
        out.append({"name": dist.name, "version": dist.version, "license": _license(meta),
                    "purl": f"pkg:pypi/{dist.name.lower()}@{dist.version}"})
    return sorted(out, key=lambda p: p["name"].lower())


def _dpkg_owners(paths: Iterable[str]) -> set[str]:
    """Debian packages owning any of ``paths`` (both sides of the /usr merge are asked)."""
    asked = set()
    for path in paths:
        asked.add(path)
        if path.startswith("/usr/lib/"):
            asked.add(path[len("/usr"):])
    try:
        done = subprocess.run(["dpkg-query", "-S", *sorted(asked)], capture_output=True,
                              text=True, check=False)
    except OSError:
        return set()  # not a Debian-based builder
    return {line.split(":")[0] for line in done.stdout.splitlines() if ": " in line}


def debian_packages(paths: Iterable[str]) -> dict[str, str]:
    """package -> its dpkg status stanza."""
    names = sorted(_dpkg_owners(paths))
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


def _spdx_package(n: int, name: str, version: str, license_: str, purl: str) -> dict[str, Any]:
    return {
        "SPDXID": f"SPDXRef-Package-{n}", "name": name, "versionInfo": version,
        "downloadLocation": _NO_ASSERTION, "licenseConcluded": _NO_ASSERTION,
        "licenseDeclared": license_, "copyrightText": _NO_ASSERTION, "filesAnalyzed": False,
        "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                          "referenceLocator": purl}],
    }


def spdx(title: str, python: list[dict[str, str]], debian: dict[str, str],
         epoch: int) -> dict[str, Any]:
    packages = [_spdx_package(n, p["name"], p["version"], p["license"], p["purl"])
                for n, p in enumerate(python, start=1)]
    for name, stanza in sorted(debian.items()):
        version, arch = _field(stanza, "Version"), _field(stanza, "Architecture")
        packages.append(_spdx_package(len(packages) + 1, name, version, _NO_ASSERTION,
                                      f"pkg:deb/debian/{name}@{version}?arch={arch}"))
    import datetime

    created = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
        "name": title, "documentNamespace": f"https://pyfarm-docker.invalid/spdx/{title}",
        "creationInfo": {"created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "creators": [f"Tool: pyfarm-docker-{__version__}"]},
        "packages": packages,
        "relationships": [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                           "relatedSpdxElement": p["SPDXID"]} for p in packages],
    }


def native_sources(entries: Iterable[Any]) -> list[str]:
    """Builder paths worth asking dpkg about: libraries, the interpreter, essentials."""
    wanted = {"library", "interpreter", "essential", "data"}
    sources = [e.source for e in entries if e.kind == "file" and e.origin in wanted]
    return sorted({os.path.realpath(s) for s in sources if s} | set(sources))
