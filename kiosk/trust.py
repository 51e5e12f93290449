"""What the terminal and the platform prove to each other: the signed catalogue and sealed bodies.

The catalogue is signed with the platform's Ed25519 key over a canonical JSON form, so the
terminal checks what it parsed, not bytes it may have parsed differently. A submission body is
sealed to the platform's X25519 key (a fresh ephemeral key, HKDF-SHA256, AES-256-GCM) and bound
to its context, the submission id, so it cannot be opened as another submission. Every primitive
comes from `cryptography`; only their composition is here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any, Final

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kiosk.catalogue import CatalogueError

SIGNATURE_MEMBER: Final = "signature"
SIGNATURE_ALG: Final = "Ed25519"
SEAL_ALG: Final = "X25519-HKDF-SHA256-AES256GCM"
SEAL_INFO: Final = b"hall-terminal seal v1"
KEY_ID_HEX: Final = 16

_PUBLIC_KEY_BYTES: Final = 32
_SIGNATURE_BYTES: Final = 64
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
_AES_KEY_BYTES: Final = 32
_SIGNATURE_FIELDS: Final = frozenset({"alg", "key_id", "value"})
_ENVELOPE_FIELDS: Final = frozenset({"alg", "key_id", "epk", "nonce", "ciphertext"})


class CatalogueSignatureError(CatalogueError):
    """The catalogue's signature is missing, unreadable, by a key not trusted, or wrong.

    code is one of UNSIGNED, UNKNOWN_KEY, BAD_SIGNATURE, MALFORMED_SIGNATURE; the message for
    people is the catalogue's own ("could not be loaded, ask staff").
    """

    UNSIGNED: Final = "unsigned"
    UNKNOWN_KEY: Final = "unknown_key"
    BAD_SIGNATURE: Final = "bad_signature"
    MALFORMED_SIGNATURE: Final = "malformed_signature"

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"signature {code}: {detail}")
        self.code = code


class SealError(ValueError):
    """A sealed envelope could not be opened (or a body could not be sealed).

    code: MALFORMED (not an envelope of this format), WRONG_KEY (sealed to another key),
    NOT_AUTHENTIC (altered, another context, or a forged key id).
    """

    MALFORMED: Final = "malformed_envelope"
    WRONG_KEY: Final = "wrong_key"
    NOT_AUTHENTIC: Final = "not_authentic"

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def canonical_json(obj: Any) -> bytes:
    """The bytes that are signed: sorted keys, no spaces, UTF-8, no NaN or infinities.

    ValueError (or TypeError) for what has no canonical form: NaN, a lone surrogate, a value
    JSON cannot hold.
    """
    text = json.dumps(
        obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    )
    return text.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError, a ValueError


def key_id(raw_public_key: bytes) -> str:
    """The first 16 hex digits of the SHA-256 of a raw 32-byte public key."""
    if len(raw_public_key) != _PUBLIC_KEY_BYTES:
        raise ValueError(
            f"a raw public key has {_PUBLIC_KEY_BYTES} bytes, not {len(raw_public_key)}"
        )
    return hashlib.sha256(raw_public_key).hexdigest()[:KEY_ID_HEX]


def raw_public_bytes(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_b64(key: Ed25519PublicKey | X25519PublicKey) -> str:
    """A public key as it travels: standard base64 of its raw 32 bytes."""
    return base64.b64encode(raw_public_bytes(key)).decode("ascii")


def ed25519_public_from_b64(text: str) -> Ed25519PublicKey:
    """ValueError unless text is standard base64 of 32 bytes."""
    return Ed25519PublicKey.from_public_bytes(_b64_key(text))


def x25519_public_from_b64(text: str) -> X25519PublicKey:
    """ValueError unless text is standard base64 of 32 bytes."""
    return X25519PublicKey.from_public_bytes(_b64_key(text))


def signing_keys(keys: Iterable[Ed25519PublicKey]) -> dict[str, Ed25519PublicKey]:
    """The mapping verify_catalogue takes: each key under its key id."""
    return {key_id(raw_public_bytes(key)): key for key in keys}


def verify_catalogue(
    document: Mapping[str, Any], signing_keys: Mapping[str, Ed25519PublicKey]
) -> dict[str, Any]:
    """The catalogue without its "signature" member, once that signature verifies with the key
    it names. CatalogueSignatureError otherwise; nothing of the catalogue itself is checked."""
    if not isinstance(document, Mapping):
        raise CatalogueSignatureError(CatalogueSignatureError.UNSIGNED, "not a JSON object")
    if SIGNATURE_MEMBER not in document:
        raise CatalogueSignatureError(CatalogueSignatureError.UNSIGNED, "no signature member")
    signature = document[SIGNATURE_MEMBER]
    malformed = CatalogueSignatureError.MALFORMED_SIGNATURE
    if not isinstance(signature, Mapping) or set(signature) != _SIGNATURE_FIELDS:
        raise CatalogueSignatureError(malformed, "not an object of alg, key_id and value")
    if signature["alg"] != SIGNATURE_ALG:
        raise CatalogueSignatureError(malformed, f"algorithm is not {SIGNATURE_ALG}")
    named = signature["key_id"]
    if not isinstance(named, str) or len(named) != KEY_ID_HEX:
        raise CatalogueSignatureError(malformed, "key_id is not 16 hex digits")
    value = _b64(signature["value"])
    if value is None or len(value) != _SIGNATURE_BYTES:
        raise CatalogueSignatureError(malformed, f"value is not base64 of {_SIGNATURE_BYTES} bytes")
    key = signing_keys.get(named)
    # The mapping is the caller's; a key filed under another key's id is not that key.
    if key is None or key_id(raw_public_bytes(key)) != named:
        raise CatalogueSignatureError(
            CatalogueSignatureError.UNKNOWN_KEY, f"signed by key {named!r}, not a trusted key"
        )
    body = {name: member for name, member in document.items() if name != SIGNATURE_MEMBER}
    try:
        signed = canonical_json(body)
    except (TypeError, ValueError, RecursionError) as exc:
        # No canonical form, so no signature can be over it.
        raise CatalogueSignatureError(
            CatalogueSignatureError.BAD_SIGNATURE, f"no canonical form: {type(exc).__name__}"
        ) from exc
    try:
        key.verify(value, signed)
    except InvalidSignature:
        raise CatalogueSignatureError(
            CatalogueSignatureError.BAD_SIGNATURE, f"does not verify with key {named}"
        ) from None
    return body


def seal(plaintext: bytes, recipient: X25519PublicKey, context: bytes) -> dict[str, str]:
    """plaintext sealed to recipient and bound to context (the submission id, UTF-8)."""
    if not context:
        raise ValueError("a sealed body needs a context to be bound to")
    recipient_raw = raw_public_bytes(recipient)
    ephemeral = X25519PrivateKey.generate()
    epk = raw_public_bytes(ephemeral.public_key())
    try:
        shared = ephemeral.exchange(recipient)
    except ValueError as exc:  # a low-order point: no shared secret, so no recipient
        raise SealError(SealError.WRONG_KEY, "the recipient key is not usable") from exc
    nonce = os.urandom(_NONCE_BYTES)
    ciphertext = AESGCM(_derive(shared, epk, recipient_raw, context)).encrypt(
        nonce, plaintext, context
    )
    return {
        "alg": SEAL_ALG,
        "key_id": key_id(recipient_raw),
        "epk": _b64e(epk),
        "nonce": _b64e(nonce),
        "ciphertext": _b64e(ciphertext),
    }


def open_sealed(
    envelope: Mapping[str, Any], private_key: X25519PrivateKey, context: bytes
) -> bytes:
    """The plaintext of an envelope sealed to private_key's public key under this context;
    SealError for anything else."""
    if not isinstance(envelope, Mapping) or set(envelope) != _ENVELOPE_FIELDS:
        raise SealError(
            SealError.MALFORMED, f"members must be {', '.join(sorted(_ENVELOPE_FIELDS))}"
        )
    if envelope["alg"] != SEAL_ALG:
        raise SealError(SealError.MALFORMED, f"algorithm is not {SEAL_ALG}")
    if not context:
        raise SealError(SealError.NOT_AUTHENTIC, "no context to check the envelope against")
    recipient_raw = raw_public_bytes(private_key.public_key())
    if envelope["key_id"] != key_id(recipient_raw):
        shown = envelope["key_id"] if isinstance(envelope["key_id"], str) else "?"
        raise SealError(SealError.WRONG_KEY, f"sealed to key {shown[:KEY_ID_HEX]!r}, not this one")
    epk = _b64(envelope["epk"])
    nonce = _b64(envelope["nonce"])
    ciphertext = _b64(envelope["ciphertext"])
    if epk is None or len(epk) != _PUBLIC_KEY_BYTES:
        raise SealError(SealError.MALFORMED, f"epk is not base64 of {_PUBLIC_KEY_BYTES} bytes")
    if nonce is None or len(nonce) != _NONCE_BYTES:
        raise SealError(SealError.MALFORMED, f"nonce is not base64 of {_NONCE_BYTES} bytes")
    if ciphertext is None or len(ciphertext) < _TAG_BYTES:
        raise SealError(SealError.MALFORMED, "ciphertext is not base64 of a sealed body")
    try:
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(epk))
    except ValueError as exc:  # a low-order ephemeral key: nobody sealed this
        raise SealError(SealError.NOT_AUTHENTIC, "the ephemeral key is not usable") from exc
    try:
        return AESGCM(_derive(shared, epk, recipient_raw, context)).decrypt(
            nonce, ciphertext, context
        )
    except InvalidTag:
        raise SealError(
            SealError.NOT_AUTHENTIC, "altered, sealed for another context, or to another key"
        ) from None


def _derive(shared: bytes, epk: bytes, recipient: bytes, context: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=_AES_KEY_BYTES,
        salt=epk + recipient,
        info=SEAL_INFO + context,
    ).derive(shared)


def _b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64(value: object) -> bytes | None:
    """Standard base64 with padding, nothing else; None for anything that is not."""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        return None


def _b64_key(text: str) -> bytes:
    raw = _b64(text)
    if raw is None or len(raw) != _PUBLIC_KEY_BYTES:
        raise ValueError(f"a public key is base64 of {_PUBLIC_KEY_BYTES} bytes")
    return raw
