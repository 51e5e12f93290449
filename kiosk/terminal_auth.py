"""Who this terminal is to the platform: its own key, its enrolment, and the signature on every
request.

Each terminal is enrolled once. Staff run `hall-terminal --enrol URL CODE` with a one-time code
from the platform's back office. The terminal makes its own Ed25519 key (it never leaves the
terminal), sends the public half with the code, and keeps what the platform answers: its
terminal id and the platform's public keys (the catalogue is signed with one, submissions are
sealed to the other). For an https platform the code also carries the fingerprint of the
platform's CA certificate. The terminal fetches the certificate, checks it against the
fingerprint, and from then on trusts that CA alone for the platform (it is pinned), not the
system's list.

Every request then carries the terminal id, a timestamp, a random nonce and an Ed25519 signature
over those, the method, the path and the SHA-256 of the body (SIGNED_HEADERS). The platform takes
the terminal id from a valid signature, never from the body, refuses a timestamp more than
MAX_SKEW_S away from its clock, and refuses a nonce it has seen. So a request copied off the
hall network can neither be replayed nor altered.

Why signatures and not TLS client certificates: they hold end to end through the TLS-terminating
proxies provinces put in front of their platforms, they bind the body (a proxy cannot change a
submission and keep the signature), and the reference platform's server (uvicorn) does not hand
client certificates to the application.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from kiosk.errors import UserFacingError
from kiosk.i18n import N_, _
from offline_queue.files import fsync_dir, write_private_atomically

log = logging.getLogger(__name__)

SIGNATURE_SCHEME = "hall-terminal-request-v1"
HEADER_TERMINAL = "X-Terminal-Id"
HEADER_TIMESTAMP = "X-Request-Timestamp"
HEADER_NONCE = "X-Request-Nonce"
HEADER_SIGNATURE = "X-Signature"
SIGNED_HEADERS = (HEADER_TERMINAL, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE)
MAX_SKEW_S = 300  # how far a request's timestamp may be from the platform's clock
ENROL_PATH = "/api/v1/terminals/enrol"
TRUST_PATH = "/api/v1/trust"

KEY_FILE = "terminal.key"
ENROLMENT_FILE = "enrolment.json"
CA_FILE = "platform-ca.pem"

_NONCE_BYTES = 16
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U
_CODE_GROUPS = 4
_FINGERPRINT_HEX = 32  # the CA fingerprint in a code: the first 128 bits of its SHA-256
_MAX_ANSWER = 256 * 1024
_TIMEOUT = (3.05, 15.0)


class NotEnrolled(UserFacingError):
    MESSAGE = N_(
        "This terminal is not registered with the service platform. Enrol it with "
        "hall-terminal --enrol CODE, using a code from the platform's back office."
    )


class EnrolmentError(UserFacingError):
    """Enrolment failed; `code` says why in machine terms (for the staff who ran it)."""

    MESSAGE = N_("This terminal could not be registered with the service platform.")

    def __init__(self, message: str, /, *, code: str, **params: object) -> None:
        super().__init__(message, **params)
        self.code = code


class PlainHttpRefused(UserFacingError):
    MESSAGE = N_(
        "The service platform's address must start with https:// (only a platform on this "
        "same computer may use http://). Please ask staff to correct the settings."
    )


# -- the signed request ------------------------------------------------------------------------


def signing_input(  # noqa: PLR0917 - the fields of one signed line, named at every call
    method: str, target: str, timestamp: str, nonce: str, terminal_id: str, body: bytes
) -> bytes:
    """The bytes a request's signature covers. target is the path as sent, with its query."""
    digest = hashlib.sha256(body).hexdigest()
    return signing_input_for_digest(method, target, timestamp, nonce, terminal_id, digest)


def signing_input_for_digest(  # noqa: PLR0917 - as signing_input
    method: str, target: str, timestamp: str, nonce: str, terminal_id: str, body_sha256: str
) -> bytes:
    """signing_input for a body known by its SHA-256 (hex) only."""
    lines = (SIGNATURE_SCHEME, method.upper(), target, timestamp, nonce, terminal_id, body_sha256)
    return "\n".join(lines).encode("utf-8")


def sign_headers(
    key: Ed25519PrivateKey,
    terminal_id: str,
    method: str,
    target: str,
    body: bytes,
    *,
    now: float,
    nonce: str | None = None,
) -> dict[str, str]:
    timestamp = str(int(now))
    nonce = nonce if nonce is not None else secrets.token_hex(_NONCE_BYTES)
    signature = key.sign(signing_input(method, target, timestamp, nonce, terminal_id, body))
    return {
        HEADER_TERMINAL: terminal_id,
        HEADER_TIMESTAMP: timestamp,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: base64.b64encode(signature).decode("ascii"),
    }


def verify_signature(public_key: Ed25519PublicKey, signature_b64: str, signed: bytes) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, signed)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


class TerminalAuth(requests.auth.AuthBase):
    """Signs each request as it is sent (requests calls this with the prepared request).

    The clock offset is the platform's clock minus ours, learnt from a refusal for a stale
    timestamp: a village terminal whose clock has drifted still gets through, while the offset
    cannot be used to replay anything (the nonce still has to be new).
    """

    def __init__(
        self,
        key: Ed25519PrivateKey,
        terminal_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self.terminal_id = terminal_id
        self._clock = clock
        self.clock_offset_s = 0.0

    def set_clock_from(self, platform_time: float) -> bool:
        """Sign on the platform's time from now on; False when that changes nothing (the clock
        was not the trouble)."""
        offset = platform_time - self._clock()
        if abs(offset - self.clock_offset_s) < 2:
            return False
        self.clock_offset_s = offset
        return True

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        if not isinstance(body, bytes):
            raise TypeError("a signed request's body must be bytes")
        request.headers.update(
            sign_headers(
                self._key,
                self.terminal_id,
                request.method or "GET",
                request.path_url,
                body,
                now=self._clock() + self.clock_offset_s,
            )
        )
        return request


# -- the enrolment on disk ---------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformKey:
    key_id: str
    public_key: str  # base64 of the raw 32 bytes


@dataclass(frozen=True)
class Enrolment:
    terminal_id: str
    platform_url: str
    enrolled_at: str
    signing_keys: tuple[PlatformKey, ...]  # the catalogue's signatures verify with one of these
    sealing_key: PlatformKey | None  # submissions are sealed to this one
    pinned_ca: bool  # platform-ca.pem beside it is the only CA trusted for the platform
    terminal_key: str = ""  # base64 of this terminal's raw public key, as the platform has it

    def catalogue_keys(self) -> dict[str, Ed25519PublicKey]:
        return {
            k.key_id: Ed25519PublicKey.from_public_bytes(base64.b64decode(k.public_key))
            for k in self.signing_keys
        }

    def sealing_public_key(self) -> X25519PublicKey | None:
        if self.sealing_key is None:
            return None
        return X25519PublicKey.from_public_bytes(base64.b64decode(self.sealing_key.public_key))

    def to_json(self) -> dict[str, Any]:
        return {
            "terminal_id": self.terminal_id,
            "platform_url": self.platform_url,
            "enrolled_at": self.enrolled_at,
            "signing_keys": [vars(k) for k in self.signing_keys],
            "sealing_key": vars(self.sealing_key) if self.sealing_key else None,
            "pinned_ca": self.pinned_ca,
            "terminal_key": self.terminal_key,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Enrolment:
        sealing = data.get("sealing_key")
        return Enrolment(
            terminal_id=str(data["terminal_id"]),
            platform_url=str(data["platform_url"]),
            enrolled_at=str(data["enrolled_at"]),
            signing_keys=tuple(_platform_key(k) for k in data["signing_keys"]),
            sealing_key=_platform_key(sealing) if sealing else None,
            pinned_ca=bool(data["pinned_ca"]),
            terminal_key=str(data["terminal_key"]),
        )


@dataclass(frozen=True)
class TerminalIdentity:
    """This terminal's key and enrolment, as loaded from its data directory."""

    key: Ed25519PrivateKey
    enrolment: Enrolment
    ca_path: Path | None  # the pinned CA file; None for a loopback http platform

    @property
    def terminal_id(self) -> str:
        return self.enrolment.terminal_id

    def auth(self, clock: Callable[[], float] = time.time) -> TerminalAuth:
        return TerminalAuth(self.key, self.terminal_id, clock)


def _platform_key(data: object) -> PlatformKey:
    if not isinstance(data, Mapping):
        raise ValueError("a platform key must be an object")
    key_id, public_key = data.get("key_id"), data.get("public_key")
    if not isinstance(key_id, str) or not isinstance(public_key, str):
        raise ValueError("a platform key needs key_id and public_key")
    if len(base64.b64decode(public_key, validate=True)) != 32:
        raise ValueError("a platform key is 32 bytes")
    return PlatformKey(key_id, public_key)


def load_identity(data_dir: Path, platform_url: str) -> TerminalIdentity:
    """The terminal's identity for this platform URL; NotEnrolled when it has none.

    An enrolment made for another platform is not used: the terminal would sign for, and trust
    the CA of, a platform it was never enrolled with."""
    key_path, record_path = data_dir / KEY_FILE, data_dir / ENROLMENT_FILE
    if not record_path.exists() or not key_path.exists():
        raise NotEnrolled(NotEnrolled.MESSAGE)
    try:
        record = Enrolment.from_json(json.loads(record_path.read_text("utf-8")))
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("the terminal's enrolment cannot be read: %s", type(exc).__name__)
        raise NotEnrolled(NotEnrolled.MESSAGE) from exc
    if not isinstance(loaded, Ed25519PrivateKey):
        raise NotEnrolled(NotEnrolled.MESSAGE)
    if _public_b64(loaded) != record.terminal_key:
        # An enrolment cut off half way (the key of one, the record of another): the platform
        # would refuse every signature; staff enrol again.
        log.error("the terminal's key is not the one its enrolment names")
        raise NotEnrolled(NotEnrolled.MESSAGE)
    if _normal_url(record.platform_url) != _normal_url(platform_url):
        log.error("the terminal is enrolled with another platform URL")
        raise NotEnrolled(NotEnrolled.MESSAGE)
    ca_path = data_dir / CA_FILE if record.pinned_ca else None
    if ca_path is not None and not ca_path.exists():
        raise NotEnrolled(NotEnrolled.MESSAGE)
    return TerminalIdentity(loaded, record, ca_path)


def _public_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def _normal_url(url: str) -> str:
    return url.rstrip("/").lower()


def describe_enrolment(record: Enrolment) -> str:
    """What staff read once --enrol has worked."""
    return _("This terminal is registered with {url} as terminal {terminal}.").format(
        url=record.platform_url, terminal=record.terminal_id
    )


# -- transport rules ---------------------------------------------------------------------------


def is_loopback_url(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(url: str) -> None:
    """https for every platform, except one on this same computer (the demo, a local proxy)."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme == "https":
        return
    if scheme == "http" and is_loopback_url(url):
        return
    raise PlainHttpRefused(PlainHttpRefused.MESSAGE)


# -- enrolment codes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EnrolmentCode:
    secret: str  # "XXXX-XXXX-XXXX-XXXX"
    ca_fingerprint: str | None  # the first 32 hex digits of the CA certificate's SHA-256

    def __str__(self) -> str:
        return self.secret + (f"/{self.ca_fingerprint}" if self.ca_fingerprint else "")


def new_code_secret() -> str:
    groups = (
        "".join(secrets.choice(_CODE_ALPHABET) for _ in range(4)) for _ in range(_CODE_GROUPS)
    )
    return "-".join(groups)


def normal_code_secret(text: str) -> str:
    """As the platform stores it: upper case, no spaces or dashes, the letters people confuse
    with digits read as those digits."""
    cleaned = re.sub(r"[\s-]", "", text.upper())
    return cleaned.translate(str.maketrans("OIL", "011"))


def parse_code(text: str) -> EnrolmentCode:
    secret, _, fingerprint = text.strip().partition("/")
    normal = normal_code_secret(secret)
    if len(normal) != 4 * _CODE_GROUPS or any(c not in _CODE_ALPHABET for c in normal):
        raise EnrolmentError(EnrolmentError.MESSAGE, code="code_malformed")
    fingerprint = fingerprint.strip().lower()
    if fingerprint and not re.fullmatch(f"[0-9a-f]{{{_FINGERPRINT_HEX}}}", fingerprint):
        raise EnrolmentError(EnrolmentError.MESSAGE, code="code_malformed")
    return EnrolmentCode(normal, fingerprint or None)


def ca_fingerprint(ca_pem: bytes) -> str:
    """The fingerprint an enrolment code carries: of the first certificate in the PEM text."""
    certificate = x509.load_pem_x509_certificate(ca_pem)
    der = certificate.public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()[:_FINGERPRINT_HEX]


# -- enrolling ---------------------------------------------------------------------------------


def enrol(
    data_dir: Path,
    platform_url: str,
    code_text: str,
    *,
    fetch_ca: Callable[[str], bytes] | None = None,
    session: requests.Session | None = None,
) -> Enrolment:
    """Enrol this terminal with the platform and keep the result in data_dir.

    A new key is made every time: enrolling again (after a revocation, or to move a terminal to
    another platform) replaces the old identity. Nothing is written until the platform has
    accepted the code."""
    check_transport(platform_url)
    code = parse_code(code_text)
    base = platform_url.rstrip("/")
    ca_pem = _checked_ca(base, code, fetch_ca or fetch_platform_ca)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    ca_tmp = data_dir / (CA_FILE + ".new")
    own_session = session is None
    http = session or requests.Session()
    try:
        verify: bool | str = True
        if ca_pem is not None:
            write_private_atomically(ca_tmp, ca_pem)
            verify = str(ca_tmp)
        try:
            answer = http.post(
                base + ENROL_PATH,
                json={"code": code.secret, "public_key": base64.b64encode(public).decode()},
                headers={"Connection": "close"},  # one request: no connection left open
                timeout=_TIMEOUT,
                verify=verify,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            raise EnrolmentError(EnrolmentError.MESSAGE, code="tls_error") from exc
        except requests.RequestException as exc:
            raise EnrolmentError(EnrolmentError.MESSAGE, code="unreachable") from exc
        try:
            body = _answer_json(answer)
        finally:
            # Its socket is closed now, not when the last reference to the answer goes (an
            # exception's traceback can keep it for a long while).
            answer.close()
        if answer.status_code != 201 or body is None:
            error = body.get("error") if body else None
            raise EnrolmentError(
                EnrolmentError.MESSAGE,
                code=str(error) if isinstance(error, str) else f"http_{answer.status_code}",
            )
        try:
            record = Enrolment(
                terminal_id=str(body["terminal_id"]),
                platform_url=base,
                enrolled_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                signing_keys=tuple(_platform_key(k) for k in body["signing_keys"]),
                sealing_key=_platform_key(body["sealing_key"]),
                pinned_ca=ca_pem is not None,
                terminal_key=_public_b64(key),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise EnrolmentError(EnrolmentError.MESSAGE, code="unexpected_answer") from exc
        _install(data_dir, key, record, ca_tmp if ca_pem is not None else None)
        log.info("enrolled as terminal %s", record.terminal_id)
        return record
    finally:
        ca_tmp.unlink(missing_ok=True)
        if own_session:
            http.close()


def _install(
    data_dir: Path, key: Ed25519PrivateKey, record: Enrolment, ca_file: Path | None
) -> None:
    """Put the new identity in place: everything written beside first, then renamed, the record
    last. A crash in between leaves a key the record does not name, which load_identity refuses
    as "not enrolled" rather than signing requests the platform will not take."""
    key_new = data_dir / (KEY_FILE + ".new")
    record_new = data_dir / (ENROLMENT_FILE + ".new")
    write_private_atomically(
        key_new,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    text = json.dumps(record.to_json(), ensure_ascii=False, indent=2) + "\n"
    write_private_atomically(record_new, text.encode("utf-8"))
    os.replace(key_new, data_dir / KEY_FILE)
    if ca_file is not None:
        os.replace(ca_file, data_dir / CA_FILE)
    os.replace(record_new, data_dir / ENROLMENT_FILE)
    fsync_dir(data_dir)


def enrol_locally(
    data_dir: Path,
    platform_url: str,
    terminal_id: str,
    signing_keys: tuple[PlatformKey, ...],
    sealing_key: PlatformKey,
) -> bytes:
    """An enrolment with a platform on this same computer that is started with the terminal
    (the demo): no code to hand over, the platform registers the returned public key itself.
    The terminal keeps its key from one run to the next; the record follows the platform's
    address, which changes each run."""
    check_transport(platform_url)
    if not is_loopback_url(platform_url):
        raise ValueError("only a platform on this computer is enrolled without a code")
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_path = data_dir / KEY_FILE
    key: Ed25519PrivateKey | None = None
    if key_path.exists():
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        key = loaded if isinstance(loaded, Ed25519PrivateKey) else None
    if key is None:
        key = Ed25519PrivateKey.generate()
        write_private_atomically(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
    record = Enrolment(
        terminal_id=terminal_id,
        platform_url=platform_url.rstrip("/"),
        enrolled_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        signing_keys=signing_keys,
        sealing_key=sealing_key,
        pinned_ca=False,
        terminal_key=_public_b64(key),
    )
    text = json.dumps(record.to_json(), ensure_ascii=False, indent=2) + "\n"
    write_private_atomically(data_dir / ENROLMENT_FILE, text.encode("utf-8"))
    return key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def _checked_ca(
    base: str, code: EnrolmentCode, fetch_ca: Callable[[str], bytes]
) -> bytes | None:
    """The platform's CA certificate once it matches the code's fingerprint; None for a
    loopback http platform."""
    if urllib.parse.urlsplit(base).scheme != "https":
        return None
    if code.ca_fingerprint is None:
        raise EnrolmentError(EnrolmentError.MESSAGE, code="code_without_fingerprint")
    try:
        certificates = x509.load_pem_x509_certificates(fetch_ca(base))
    except ValueError as exc:
        raise EnrolmentError(EnrolmentError.MESSAGE, code="ca_unreadable") from exc
    # Exactly one certificate, and a CA's: anything else served beside it would be pinned too
    # without the fingerprint having said a word about it.
    if len(certificates) != 1 or not _is_ca(certificates[0]):
        raise EnrolmentError(EnrolmentError.MESSAGE, code="ca_unreadable")
    pem = certificates[0].public_bytes(serialization.Encoding.PEM)
    if not hmac.compare_digest(ca_fingerprint(pem), code.ca_fingerprint):
        raise EnrolmentError(EnrolmentError.MESSAGE, code="ca_mismatch")
    return pem


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca


def fetch_platform_ca(base_url: str) -> bytes:
    """The platform's CA certificate, fetched before anything is trusted: it is worth nothing
    until its fingerprint matches the one in the enrolment code, which enrol() checks."""
    import urllib3

    pool = urllib3.PoolManager(cert_reqs="CERT_NONE", timeout=urllib3.Timeout(*_TIMEOUT))
    try:
        # Unverified on purpose (see above); urllib3 would warn about exactly that.
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            answer = pool.request(
                "GET",
                base_url + TRUST_PATH,
                headers={"Connection": "close"},
                preload_content=False,
                redirect=False,
            )
        try:
            data = answer.read(_MAX_ANSWER + 1, decode_content=True)
        finally:
            answer.close()
    except urllib3.exceptions.HTTPError as exc:
        raise EnrolmentError(EnrolmentError.MESSAGE, code="unreachable") from exc
    finally:
        pool.clear()
    if answer.status != 200 or len(data) > _MAX_ANSWER:
        raise EnrolmentError(EnrolmentError.MESSAGE, code="ca_unavailable")
    try:
        ca = json.loads(data.decode("utf-8"))["ca_pem"]
    except (ValueError, KeyError, TypeError) as exc:
        raise EnrolmentError(EnrolmentError.MESSAGE, code="ca_unavailable") from exc
    if not isinstance(ca, str):
        raise EnrolmentError(EnrolmentError.MESSAGE, code="ca_unavailable")
    return ca.encode("ascii", "replace")


def _answer_json(answer: requests.Response) -> dict[str, Any] | None:
    content = answer.content[: _MAX_ANSWER + 1]
    if len(content) > _MAX_ANSWER:
        return None
    try:
        body = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return body if isinstance(body, dict) else None
