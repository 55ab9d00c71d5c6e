"""The SBOM's pieces: license expressions a validator accepts, PEP 503 package URLs."""

from __future__ import annotations

import email.message

import pytest

from pyfarm_docker.builder import sbom


@pytest.mark.parametrize(("text", "expected"), [
    ("MIT", "MIT"),
    ("mit", "MIT"),
    ("Apache-2.0 OR BSD-3-Clause", "Apache-2.0 OR BSD-3-Clause"),
    ("(apache-2.0 or mit) and bsd-2-clause", "(Apache-2.0 OR MIT) AND BSD-2-Clause"),
    ("GPL-2.0-or-later WITH Classpath-exception-2.0", "GPL-2.0-or-later WITH "
     "Classpath-exception-2.0"),
    ("Apache-2.0+", None),
    ("BSD", None),
    ("MIT License", None),
    ("MIT AND", None),
    ("(MIT", None),
    ("MIT WITH Apache-2.0", None),
    ("MIT WITH LLVM-exception WITH LLVM-exception", None),
    ("", None),
])
def test_spdx_expression(text: str, expected: str | None) -> None:
    assert sbom.spdx_expression(text) == expected


def _meta(**fields: str | list[str]) -> email.message.Message:
    meta = email.message.Message()
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            meta[key.replace("_", "-")] = item
    return meta


def test_declared_license() -> None:
    ref = "LicenseRef-pypi-x"
    assert sbom.declared_license(_meta(License_Expression="mit or apache-2.0"), ref) == \
        sbom.License("MIT OR Apache-2.0")
    assert sbom.declared_license(_meta(License="Apache License, Version 2.0"), ref) == \
        sbom.License("Apache-2.0")
    classifiers = ["License :: OSI Approved :: MIT License",
                   "License :: OSI Approved :: Python Software Foundation License"]
    assert sbom.declared_license(_meta(Classifier=classifiers), ref) == \
        sbom.License("MIT OR PSF-2.0")
    vague = sbom.declared_license(_meta(Classifier=["License :: OSI Approved :: BSD License"]),
                                  ref)
    assert vague == sbom.License(ref, "BSD License")
    text = sbom.declared_license(_meta(License="Copyright (c) someone\nAll rights kept"), ref)
    assert text == sbom.License(ref, "Copyright (c) someone\nAll rights kept")
    assert sbom.declared_license(_meta(), ref) == sbom.License("NOASSERTION")
    unknown = sbom.declared_license(_meta(License_Expression="Foo-1.0"), ref)
    assert unknown == sbom.License(ref, "Foo-1.0")


def test_purls() -> None:
    assert sbom.pypi_purl("Zope.Interface", "6.0") == "pkg:pypi/zope-interface@6.0"
    assert sbom.pypi_purl("typing_extensions", "4.0+local") == \
        "pkg:pypi/typing-extensions@4.0%2Blocal"
    assert sbom.deb_purl("debian", "libstdc++6", "1:12.2.0-14+deb12u1", "amd64",
                         "debian-12") == ("pkg:deb/debian/libstdc%2B%2B6@1:12.2.0-14%2Bdeb12u1"
                                          "?arch=amd64&distro=debian-12")
    assert sbom.generic_purl("libfoo", "") == "pkg:generic/libfoo"
