"""Push images to a registry through the OCI distribution API, with no container daemon.

skopeo copies the image from an OCI layout (``--preserve-digests``: the digest pushed is
the layout's). Attestations (the SBOM, the provenance) go up as OCI artifacts: image
manifests with an ``artifactType``, the document as their one layer and the image as
their ``subject``. A registry with the referrers API indexes them itself (it answers the
manifest upload with ``OCI-Subject``); for one without it (distribution 2.8, Debian's
docker-registry) the referrers tag schema of the distribution spec 1.1 is kept: an image
index tagged ``sha256-<hex of the image digest>`` lists them. ORAS, trivy, notation and
regctl look in both places.

Credentials come from where Docker, podman and skopeo keep them: the file
``REGISTRY_AUTH_FILE`` names, then Docker's config (``$DOCKER_CONFIG/config.json``, else
``~/.docker/config.json``), each read as Docker does (``credHelpers``, ``auths``,
``credsStore``). Never from flags, and never in a command line: skopeo gets them in a
private temporary auth file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import ipaddress
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

from ..errors import RegistryError, UsageError
from .engine import check_reference
from .oci import INDEX, MANIFEST

Report = Callable[[str], None]
T = TypeVar("T")

DOCKER_HUB = "docker.io"
_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io",
             "registry-1.docker.io")
EMPTY = "application/vnd.oci.empty.v1+json"  # the config of an artifact without one
EMPTY_DATA = b"{}"
ACCEPT = ", ".join([MANIFEST, INDEX, "application/vnd.docker.distribution.manifest.v2+json",
                     "application/vnd.docker.distribution.manifest.list.v2+json"])
_TIMEOUT = 60
_MAX_REPLY = 4 << 20  # a manifest, an index, a token: what this client ever reads


@dataclass(frozen=True)
class Reference:
    """Where an image goes: ``registry/repository:tag`` (Docker Hub when no registry is
    named, with ``library/`` for one-part names, as Docker reads it)."""

    registry: str
    repository: str
    tag: str

    @classmethod
    def parse(cls, text: str) -> Reference:
        name, tag = check_reference(text)
        first, sep, rest = name.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            return cls(first, rest, tag)
        return cls(DOCKER_HUB, name if sep else f"library/{name}", tag)

    @property
    def host(self) -> str:
        """The host[:port] the API answers on."""
        return "registry-1.docker.io" if self.registry == DOCKER_HUB else self.registry

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"

    def at(self, digest: str) -> str:
        return f"{self.registry}/{self.repository}@{digest}"


def loopback(registry: str) -> bool:
    """``localhost`` or a 127.0.0.0/8 address: registries Docker lets speak plain HTTP
    without being told (its default insecure range)."""
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# -- credentials ----------------------------------------------------------------------

@dataclass(frozen=True)
class Credentials:
    username: str
    secret: str = field(repr=False)
    source: str = ""  # where they were found, for messages; never the secret itself

    def basic(self) -> str:
        pair = f"{self.username}:{self.secret}".encode()
        return "Basic " + base64.b64encode(pair).decode()


def auth_files() -> list[Path]:
    """The files credentials are looked up in, first match wins."""
    files = []
    if os.environ.get("REGISTRY_AUTH_FILE"):
        files.append(Path(os.environ["REGISTRY_AUTH_FILE"]))
    config = os.environ.get("DOCKER_CONFIG")
    files.append(Path(config) / "config.json" if config else
                 Path.home() / ".docker" / "config.json")
    return files


def _server_keys(registry: str) -> tuple[str, ...]:
    return _HUB_KEYS if registry == DOCKER_HUB else (registry,)


def _normal(key: str) -> str:
    """An ``auths`` key (``https://host:5000/v1/``, ``host:5000``) as ``host:5000``."""
    key = re.sub(r"^[a-z]+://", "", key)
    return key.split("/", 1)[0]


def credentials(registry: str) -> Credentials | None:
    """The credentials for ``registry`` in the first auth file that has some."""
    for path in auth_files():
        found = _from_file(path, registry)
        if found is not None:
            return found
    return None


def _from_file(path: Path, registry: str) -> Credentials | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the auth file {path}: {exc}",
                         "fix it, or point REGISTRY_AUTH_FILE at another one") from None
    if not isinstance(data, dict):
        raise UsageError(f"auth file {path}: expected a JSON object")
    keys = _server_keys(registry)
    helpers = data.get("credHelpers")
    if isinstance(helpers, dict):
        for key in keys:
            if isinstance(helpers.get(key), str):
                return _helper(helpers[key], key, path)
    auths = data.get("auths")
    if isinstance(auths, dict):
        for key, entry in auths.items():
            if _normal(key) in {_normal(k) for k in keys} and isinstance(entry, dict):
                found = _entry(entry, path)
                if found is not None:
                    return found
    if isinstance(data.get("credsStore"), str):
        return _helper(data["credsStore"], keys[0], path)
    return None


def _entry(entry: Mapping[str, Any], path: Path) -> Credentials | None:
    if isinstance(entry.get("auth"), str) and entry["auth"]:
        try:
            pair = base64.b64decode(entry["auth"], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise UsageError(f"auth file {path}: an 'auth' value is not base64 of "
                             "user:password") from None
        username, sep, secret = pair.partition(":")
        if not sep:
            raise UsageError(f"auth file {path}: an 'auth' value has no ':'")
        return Credentials(username, secret, str(path))
    if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
        return Credentials(entry["username"], entry["password"], str(path))
    return None


def _helper(name: str, server: str, path: Path) -> Credentials | None:
    """``docker-credential-NAME get``, as Docker runs a credential helper."""
    program = f"docker-credential-{name}"
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or shutil.which(program) is None:
        raise UsageError(f"auth file {path} names the credential helper {program!r}, "
                         "which is not installed", "install it, or log in again")
    try:
        done = subprocess.run([program, "get"], input=server, capture_output=True, text=True,
                              timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RegistryError(f"credential helper {program} failed: {exc}") from None
    if done.returncode != 0:
        said = _one_line(done.stdout + " " + done.stderr)
        if "not found" in said.lower():
            return None
        raise RegistryError(f"credential helper {program} failed for {server}: {said}")
    try:
        value = json.loads(done.stdout)
        return Credentials(str(value["Username"]), str(value["Secret"]), program)
    except (ValueError, KeyError, TypeError):
        raise RegistryError(f"credential helper {program} gave no Username and Secret "
                            f"for {server}") from None


@contextlib.contextmanager
def skopeo_auth_file(registry: str, creds: Credentials | None) -> Iterator[Path]:
    """A private auth file holding only ``creds`` (or none), for skopeo's
    ``--dest-authfile``; removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="pyfarm-auth-") as tmp:
        path = Path(tmp, "auth.json")
        auths = {registry: {"auth": creds.basic().split(" ", 1)[1]}} if creds else {}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"auths": auths}, out)
        yield path


# -- retries and errors -----------------------------------------------------------------

@dataclass(frozen=True)
class Retry:
    """How often to try a step that failed in a way that may pass (a refused or reset
    connection, a timeout, HTTP 429 or 5xx), and how long to wait: ``delay``, doubled
    after each try."""

    attempts: int = 4
    delay: float = 1.0


class Transient(Exception):
    """A failure worth another try."""


def retrying(action: Callable[[], T], retry: Retry, what: str, report: Report,
             sleep: Callable[[float], None] = time.sleep) -> T:
    for attempt in range(1, retry.attempts + 1):
        try:
            return action()
        except Transient as exc:
            if attempt >= retry.attempts:
                raise RegistryError(f"{what} failed {attempt} times, last: {exc}",
                                    "is the registry up and its address right?") from None
            wait = retry.delay * 2 ** (attempt - 1)
            report(f"{what}: {exc}; trying again in {wait:.0f}s")
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


_TRANSIENT = re.compile(
    r"connection refused|connection reset|broken pipe|i/o timeout|timeout|timed out|"
    r"temporary failure|\bEOF\b|too ?many ?requests|\b429\b|\b50[0234]\b|"
    r"bad gateway|service unavailable|gateway timeout|internal server error",
    re.IGNORECASE)
_AUTH = re.compile(r"unauthorized|authentication required|denied|forbidden|\b401\b|\b403\b",
                   re.IGNORECASE)


def transient(message: str) -> bool:
    """Whether a failure's message says it may pass on another try."""
    return bool(_TRANSIENT.search(message)) and not _AUTH.search(message)


def _one_line(text: str, limit: int = 300) -> str:
    """What a tool or registry said, as one printable line."""
    line = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


def refused(ref: Reference, what: str, reason: str, creds: Credentials | None) -> RegistryError:
    reason = _one_line(reason)
    if _AUTH.search(reason):
        found = f"used the credentials from {creds.source}" if creds else (
            "found no credentials in " + ", ".join(str(p) for p in auth_files()))
        hint = (f"{found}; log in with `docker login {ref.registry}` (or `podman login "
                f"--authfile FILE {ref.registry}` and set REGISTRY_AUTH_FILE=FILE)")
    elif "HTTP response to HTTPS" in reason:
        hint = "the registry speaks plain HTTP: pass --insecure if you trust the network"
    else:
        hint = "see the registry's log"
    return RegistryError(f"{ref.registry} refused {what}: {reason}", hint)


# -- the image, through skopeo -------------------------------------------------------------

def skopeo_copy(source: str, ref: Reference, creds: Credentials | None, insecure: bool,
                retry: Retry, report: Report) -> str:
    """``skopeo copy SOURCE docker://REF``; returns the digest the registry stored."""
    if shutil.which("skopeo") is None:
        raise UsageError("pushing needs skopeo, which is not installed",
                         "apt-get install skopeo (scripts/podman-up installs it)")
    with skopeo_auth_file(ref.registry, creds) as authfile:
        digestfile = authfile.with_name("digest")
        argv = ["skopeo", "copy", "--quiet", "--preserve-digests", "--digestfile",
                str(digestfile), "--dest-authfile", str(authfile),
                f"--dest-tls-verify={'false' if insecure else 'true'}", source,
                f"docker://{ref}"]

        def copy() -> str:
            done = subprocess.run(argv, capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL, check=False)
            if done.returncode != 0:
                message = _skopeo_message(done.stderr)
                if transient(message):
                    raise Transient(message)
                raise refused(ref, f"the push of {ref}", message, creds)
            return digestfile.read_text().strip()

        return retrying(copy, retry, f"pushing {ref}", report)


# Where the cause starts in skopeo's chain of "doing X: doing Y: cause".
_CAUSE = re.compile(r"unauthorized|denied|dial tcp|http: server gave|manifest invalid|"
                    r"name unknown|name invalid|toomanyrequests|received unexpected HTTP",
                    re.IGNORECASE)


def _skopeo_message(stderr: str) -> str:
    """skopeo's fatal message, without its logrus decoration, from where its cause is."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    message = lines[-1] if lines else "skopeo failed without a message"
    for line in reversed(lines):
        match = re.search(r'msg="((?:[^"\\]|\\.)*)"', line)
        if match:
            message = match.group(1).replace('\\"', '"')
            break
    cause = _CAUSE.search(message)
    return message[cause.start():] if cause else message


# -- the distribution API, for artifacts --------------------------------------------------

@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


class Client:
    """The OCI distribution API of one repository, with basic or bearer token auth."""

    def __init__(self, ref: Reference, creds: Credentials | None, insecure: bool,
                 retry: Retry, report: Report) -> None:
        self.ref, self.creds, self.insecure = ref, creds, insecure
        self.retry, self.report = retry, report
        self.base: str | None = None
        self.authorization: str | None = None

    # Transport --------------------------------------------------------------------------
    def _open(self, request: urllib.request.Request) -> Reply:
        context = None
        if request.full_url.startswith("https:") and self.insecure:
            context = ssl._create_unverified_context()
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT, context=context) as reply:
                return Reply(reply.status, dict(reply.headers), reply.read(_MAX_REPLY))
        except urllib.error.HTTPError as exc:
            body = exc.read(_MAX_REPLY) if exc.fp is not None else b""
            return Reply(exc.code, dict(exc.headers), body)

    def _root(self) -> str:
        """``scheme://host``: HTTPS, or for an insecure registry HTTP when HTTPS fails."""
        if self.base is not None:
            return self.base
        for scheme in ("https", "http") if self.insecure else ("https",):
            url = f"{scheme}://{self.ref.host}"
            try:
                self._open(urllib.request.Request(f"{url}/v2/", method="GET"))
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                if scheme == "https" and self.insecure and isinstance(
                        reason, (ssl.SSLError, ConnectionResetError)):
                    continue
                raise Transient(f"{url}: {reason}") from None
            self.base = url
            return url
        raise Transient(f"{self.ref.host} answers neither HTTPS nor HTTP")

    def request(self, method: str, path: str, data: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Reply:
        """One API call, retried when it fails in a way that may pass; authenticates
        when the registry asks. ``path`` is below ``/v2/<repository>/``, or a URL."""
        what = f"{method} {self.ref.registry}/{self.ref.repository}/{path.split('?')[0]}"
        return retrying(lambda: self._request(method, path, data, headers or {}),
                        self.retry, what, self.report)

    def _request(self, method: str, path: str, data: bytes | None,
                 headers: Mapping[str, str]) -> Reply:
        root = self._root()
        url = path if "://" in path else (
            root + path if path.startswith("/") else
            f"{root}/v2/{self.ref.repository}/{path}")
        for _ in range(2):
            request = urllib.request.Request(url, data=data, method=method,
                                             headers=dict(headers))
            if self.authorization:
                request.add_header("Authorization", self.authorization)
            try:
                reply = self._open(request)
            except (urllib.error.URLError, OSError) as exc:
                raise Transient(f"{getattr(exc, 'reason', exc)}") from None
            if reply.status == 401 and self._authenticate(reply):
                continue
            if reply.status == 429 or reply.status >= 500:
                raise Transient(f"HTTP {reply.status} {_error_text(reply)}")
            return reply
        return reply

    def _authenticate(self, reply: Reply) -> bool:
        """Answer a 401: basic credentials, or a bearer token from the realm it names.
        False when there is nothing new to try."""
        challenge = _header(reply.headers, "WWW-Authenticate")
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            if self.creds is None or self.authorization == self.creds.basic():
                return False
            self.authorization = self.creds.basic()
            return True
        if scheme.lower() == "bearer":
            fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
            if "realm" not in fields or (self.authorization or "").startswith("Bearer "):
                return False
            query = {"service": fields.get("service", ""),
                     "scope": f"repository:{self.ref.repository}:pull,push"}
            request = urllib.request.Request(
                fields["realm"] + "?" + urllib.parse.urlencode(query), method="GET")
            if self.creds is not None:
                request.add_header("Authorization", self.creds.basic())
            token_reply = self._open(request)
            if token_reply.status != 200:
                return False
            try:
                value = json.loads(token_reply.body)
                token = value.get("token") or value.get("access_token")
            except ValueError:
                return False
            if not isinstance(token, str) or not token:
                return False
            self.authorization = f"Bearer {token}"
            return True
        return False

    # API ----------------------------------------------------------------------------------
    def check(self, reply: Reply, what: str, ok: Sequence[int]) -> Reply:
        if reply.status not in ok:
            raise refused(self.ref, what, f"HTTP {reply.status} {_error_text(reply)}",
                          self.creds)
        return reply

    def put_blob(self, data: bytes, media_type: str) -> dict[str, Any]:
        """Upload ``data`` unless the repository has it; returns its descriptor."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.request("HEAD", f"blobs/{digest}").status != 200:
            started = self.check(self.request("POST", "blobs/uploads/"),
                                 "a blob upload", (202,))
            location = _header(started.headers, "Location")
            if not location:
                raise refused(self.ref, "a blob upload", "no Location in its answer",
                              self.creds)
            url = urllib.parse.urljoin(self._root() + "/", location)
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})
            self.check(self.request("PUT", url, data,
                                    {"Content-Type": "application/octet-stream"}),
                       f"the blob {digest}", (201,))
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> Reply:
        return self.check(self.request("PUT", f"manifests/{reference}", data,
                                       {"Content-Type": media_type}),
                          f"the manifest {self.ref.repository}:{reference}", (201,))

    def get_manifest(self, reference: str) -> Reply | None:
        """A manifest or index, or None when the repository has none by that name."""
        reply = self.request("GET", f"manifests/{reference}", headers={"Accept": ACCEPT})
        if reply.status == 404:
            return None
        return self.check(reply, f"reading {self.ref.repository}:{reference}", (200,))

    def referrers(self, digest: str) -> list[dict[str, Any]]:
        """The artifacts that refer to ``digest``: the referrers API, else the referrers
        tag schema's index."""
        reply = self.request("GET", f"referrers/{digest}", headers={"Accept": INDEX})
        if reply.status != 200 or "json" not in _header(reply.headers, "Content-Type"):
            reply = self.get_manifest(fallback_tag(digest)) or Reply(404, {}, b"")
        if reply.status != 200:
            return []
        manifests = json.loads(reply.body).get("manifests", [])
        return [m for m in manifests if isinstance(m, dict)]


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return ""


def _error_text(reply: Reply) -> str:
    """The registry's own words: the first error's code and message, when JSON."""
    try:
        errors = json.loads(reply.body).get("errors") or []
        first = errors[0]
        return _one_line(f"{first.get('code', '')}: {first.get('message', '')}")
    except (ValueError, AttributeError, IndexError, TypeError):
        return _one_line(reply.body.decode(errors="replace"), 120)


def fallback_tag(digest: str) -> str:
    """The referrers tag schema: ``sha256:abc...`` -> ``sha256-abc...``."""
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}-{value}"


# -- artifacts ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Attachment:
    """A document to attach to a pushed image: an SBOM, a provenance statement."""

    artifact_type: str
    data: bytes
    title: str  # its file name (org.opencontainers.image.title)
    annotations: tuple[tuple[str, str], ...] = ()


def artifact_manifest(attachment: Attachment, subject: Mapping[str, Any],
                      config: Mapping[str, Any], layer: Mapping[str, Any],
                      created: str) -> bytes:
    manifest = {
        "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": attachment.artifact_type,
        "config": {**config, "data": base64.b64encode(EMPTY_DATA).decode()},
        "layers": [{**layer, "annotations": {
            "org.opencontainers.image.title": attachment.title}}],
        "subject": dict(subject),
        "annotations": {"org.opencontainers.image.created": created,
                        **dict(attachment.annotations)},
    }
    return json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()


def attach(client: Client, subject: Mapping[str, Any], attachment: Attachment,
           created: str) -> str:
    """Push ``attachment`` as an artifact referring to ``subject`` (the image's
    descriptor); returns the artifact manifest's digest."""
    config = client.put_blob(EMPTY_DATA, EMPTY)
    layer = client.put_blob(attachment.data, attachment.artifact_type)
    data = artifact_manifest(attachment, subject, config, layer, created)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    reply = client.put_manifest(digest, data, MANIFEST)
    if not _header(reply.headers, "OCI-Subject"):  # no referrers API: keep the tag's index
        _add_to_fallback(client, subject["digest"], {
            "mediaType": MANIFEST, "digest": digest, "size": len(data),
            "artifactType": attachment.artifact_type,
            "annotations": json.loads(data)["annotations"]})
    return digest


def _add_to_fallback(client: Client, subject: str, descriptor: dict[str, Any]) -> None:
    tag = fallback_tag(subject)
    found = client.get_manifest(tag)
    index: Any = None
    if found is not None:
        with contextlib.suppress(ValueError):
            index = json.loads(found.body)
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": []}  # new, or replaced
    if any(isinstance(m, dict) and m.get("digest") == descriptor["digest"]
           for m in index["manifests"]):
        return  # listed already (the same document pushed again)
    index["manifests"] = [*index["manifests"], descriptor]
    client.put_manifest(tag, json.dumps(index, separators=(",", ":")).encode(), INDEX)


# -- push -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pushed:
    reference: Reference
    digest: str
    attached: tuple[tuple[str, str], ...] = ()  # (artifact type, artifact digest)


def push(source: str, subject: Mapping[str, Any], dest: Reference, insecure: bool | None,
         attachments: Sequence[Attachment], report: Report,
         created: str = "1970-01-01T00:00:00Z", retry: Retry | None = None) -> Pushed:
    """Copy the image at ``source`` (skopeo's ``oci:DIR`` or ``oci-archive:FILE``), whose
    manifest descriptor is ``subject``, to ``dest``; then attach ``attachments`` to it.
    ``insecure`` None means: only for loopback registries, as Docker does."""
    retry = retry or Retry()
    insecure = loopback(dest.registry) if insecure is None else insecure
    creds = credentials(dest.registry)
    report(f"pushing to {dest}" + (f" (credentials from {creds.source})" if creds else ""))
    digest = skopeo_copy(source, dest, creds, insecure, retry, report)
    if digest != subject["digest"]:
        raise RegistryError(f"{dest.registry} stored {dest} as {digest}, not as the image's "
                            f"manifest {subject['digest']}", "see the registry's log")
    client = Client(dest, creds, insecure, retry, report)
    attached = []
    for attachment in attachments:
        artifact = attach(client, subject, attachment, created)
        report(f"attached {attachment.title} ({attachment.artifact_type}) as {artifact}")
        attached.append((attachment.artifact_type, artifact))
    return Pushed(dest, digest, tuple(attached))
