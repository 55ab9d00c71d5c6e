"""What is attached to a pushed image: its SBOM (the SPDX document the builder stage wrote
into the farm) and a provenance statement (in-toto Statement v1, SLSA Provenance v1
predicate) naming what the image was built from and by what."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import posixpath
from pathlib import Path
from typing import Any, Mapping

import docker.errors

from .. import __version__, runtime
from ..documents.manifest import file_sha256
from ..errors import UsageError
from . import engine, oci
from .registry import Attachment

SBOM_FILE = "sbom.spdx.json"  # beside the manifest, in the farm's .pyfarm directory
SBOM_TYPE = "application/spdx+json"
INTOTO_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://pyfarm-docker.invalid/buildtypes/image/v1"
BUILDER_ID = "https://pyfarm-docker.invalid/builder"
PREDICATE_ANNOTATION = "in-toto.io/predicate-type"


def image_sbom(client: Any, image: str) -> bytes | None:
    """The SBOM in an engine image built by pyfarm-docker; None for other images."""
    labels = client.images.get(image).attrs["Config"].get("Labels") or {}
    manifest = labels.get(runtime.LABEL_MANIFEST)
    if not isinstance(manifest, str):
        return None
    try:
        return engine.read_file(client, image, posixpath.join(posixpath.dirname(manifest),
                                                              SBOM_FILE))
    except docker.errors.NotFound:
        return None


def layout_sbom(layout: oci.Layout) -> bytes | None:
    """The SBOM in an OCI layout of an image built by pyfarm-docker; None for others."""
    if runtime.LABEL_MANIFEST not in oci.image_labels(layout):
        return None
    return oci.labeled_file(layout, runtime.LABEL_MANIFEST, sibling=SBOM_FILE)


def sbom_attachment(data: bytes) -> Attachment:
    return Attachment(SBOM_TYPE, data, SBOM_FILE)


def provenance_attachment(statement: Mapping[str, Any]) -> Attachment:
    data = json.dumps(statement, indent=1, sort_keys=True).encode() + b"\n"
    return Attachment(INTOTO_TYPE, data, "provenance.intoto.json",
                      ((PREDICATE_ANNOTATION, str(statement.get("predicateType", ""))),))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def context_digests(context: Path) -> dict[str, str]:
    """Every file of a build context (the project as copied, the wheels, the app spec, the
    Dockerfile) by its relative path, with its sha256; a symlink by its target's text."""
    digests = {}
    for dirpath, dirnames, filenames in os.walk(context):
        dirnames.sort()
        for name in [*filenames, *(d for d in dirnames if Path(dirpath, d).is_symlink())]:
            path = Path(dirpath, name)
            rel = path.relative_to(context).as_posix()
            if path.is_symlink():
                digests[rel] = _sha256(os.readlink(path).encode())
            elif path.is_file():
                digests[rel] = file_sha256(path)
    return dict(sorted(digests.items()))


def _time(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def created(epoch: int) -> str:
    """The artifacts' creation time: SOURCE_DATE_EPOCH, so the same build gives the same
    artifact manifests."""
    return _time(epoch)


def _hex(digest: str) -> str:
    return digest.split(":", 1)[-1]


def base_dependency(client: Any, base: str) -> dict[str, Any]:
    """The builder's base image: its repository digest when it came from a registry,
    else its image id (the digest of its config)."""
    image = client.images.get(base)
    repo_digests = [d for d in image.attrs.get("RepoDigests") or [] if "@sha256:" in d]
    digest = repo_digests[0].split("@", 1)[1] if repo_digests else image.id
    return {"name": "base image", "uri": f"docker-image://{base}",
            "digest": {"sha256": _hex(digest)},
            "annotations": {"imageId": image.id, "repoDigests": repo_digests}}


def provenance(*, parameters: Mapping[str, Any], base: Mapping[str, Any],
               inputs: Mapping[str, str], trace: bytes, builder_image: str, engine_name: str,
               engine_version: str, started: float, finished: float) -> dict[str, Any]:
    """The SLSA Provenance v1 predicate of one build."""
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": dict(parameters),
            "internalParameters": {"engine": engine_name},
            "resolvedDependencies": [
                dict(base),
                *({"name": f"context/{rel}", "digest": {"sha256": digest}}
                  for rel, digest in inputs.items()),
            ],
        },
        "runDetails": {
            "builder": {"id": BUILDER_ID,
                        "version": {"pyfarm-docker": __version__, engine_name: engine_version}},
            "metadata": {"startedOn": _time(started), "finishedOn": _time(finished)},
            "byproducts": [
                {"name": "trace.json", "uri": f"file://{runtime.BUILDER_TRACE}",
                 "digest": {"sha256": _sha256(trace)}, "mediaType": "application/json"},
                {"name": "builder stage", "digest": {"sha256": _hex(builder_image)}},
            ],
        },
    }


def statement(name: str, digest: str, predicate: Mapping[str, Any]) -> dict[str, Any]:
    """The in-toto statement saying ``predicate`` of the image ``name`` at ``digest``."""
    return {"_type": STATEMENT_TYPE,
            "subject": [{"name": name, "digest": {"sha256": _hex(digest)}}],
            "predicateType": SLSA_PROVENANCE, "predicate": dict(predicate)}


def read_statement(path: Path) -> dict[str, Any]:
    """A provenance statement written by ``build --provenance FILE``."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the provenance statement {path}: {exc}") from None
    if not (isinstance(value, dict) and value.get("_type") == STATEMENT_TYPE and
            isinstance(value.get("subject"), list) and value["subject"]):
        raise UsageError(f"{path} is not an in-toto statement",
                         "give the file build --provenance wrote")
    return value


def subject_digest(statement_: Mapping[str, Any]) -> str:
    subject = statement_["subject"][0]
    value = subject.get("digest", {}).get("sha256") if isinstance(subject, dict) else None
    return f"sha256:{value}" if isinstance(value, str) else ""
