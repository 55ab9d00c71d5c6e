"""Ship an image to a registry, from the engine (exported as an OCI layout first: the push
itself needs no daemon) or from an OCI layout, with its SBOM and, when known, its
provenance attached."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from ..errors import UsageError
from . import attest, oci, registry

Report = Callable[[str], None]
Provenance = Callable[[str, str], Mapping[str, Any]]  # (subject name, digest) -> statement


@contextlib.contextmanager
def exported(client: Any, image: str, reference: str) -> Iterator[oci.Layout]:
    """``image`` written as a temporary OCI layout (the same bytes each time)."""
    with tempfile.TemporaryDirectory(prefix="pyfarm-push-") as tmp:
        layout = oci.Layout("oci", Path(tmp, "image"))
        oci.write(client, image, reference, layout)
        yield layout


def skopeo_source(layout: oci.Layout) -> str:
    if ":" in str(layout.path):
        raise UsageError(f"{layout.path}: skopeo cannot read a layout whose path has a ':'",
                         "move or link it to a path without one")
    return f"{'oci' if layout.kind == 'oci' else 'oci-archive'}:{layout.path}"


def subject_name(dest: registry.Reference) -> str:
    return f"{dest.registry}/{dest.repository}"


def push_layout(layout: oci.Layout, dest: registry.Reference, *, sbom: bytes | None,
                provenance: Provenance | None, insecure: bool | None, report: Report,
                created: str = "1970-01-01T00:00:00Z") -> registry.Pushed:
    """Push the layout's image to ``dest`` with its attachments. ``provenance`` makes the
    statement for the digest the image will have; it runs before anything is uploaded,
    so it may refuse."""
    source = skopeo_source(layout)
    subject = oci.image_descriptor(layout)
    attachments = []
    if sbom is not None:
        attachments.append(attest.sbom_attachment(sbom))
    else:
        report(f"{layout} holds no SBOM of pyfarm-docker's: none is attached")
    if provenance is not None:
        statement = provenance(subject_name(dest), subject["digest"])
        attachments.append(attest.provenance_attachment(statement))
    return registry.push(source, subject, dest, insecure, attachments, report, created)


def push_image(client: Any, image: str, dest: registry.Reference, *,
               provenance: Provenance | None, insecure: bool | None, report: Report,
               created: str = "1970-01-01T00:00:00Z") -> registry.Pushed:
    """Push an engine image: written as an OCI layout first, then copied from there."""
    sbom = attest.image_sbom(client, image)
    with exported(client, image, str(dest)) as layout:
        return push_layout(layout, dest, sbom=sbom, provenance=provenance, insecure=insecure,
                           report=report, created=created)


def layout_digest(client: Any, image: str, layout: oci.Layout | None) -> str:
    """The manifest digest ``image`` has when pushed (from ``layout`` when it was written
    there, else from a temporary export: the export is deterministic)."""
    if layout is not None:
        return str(oci.image_descriptor(layout)["digest"])
    with exported(client, image, "pyfarm-provenance/image:latest") as temporary:
        return str(oci.image_descriptor(temporary)["digest"])
