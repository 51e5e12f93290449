"""The signed catalogue and the sealed body (kiosk.trust), checked against the wire formats."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kiosk.catalogue import CatalogueError
from kiosk.i18n import set_language
from kiosk.trust import (
    CatalogueSignatureError,
    SealError,
    canonical_json,
    ed25519_public_from_b64,
    key_id,
    open_sealed,
    public_key_b64,
    raw_public_bytes,
    seal,
    signing_keys,
    verify_catalogue,
    x25519_public_from_b64,
)
from tests.unit.test_forms_and_catalogue import CATALOGUE

CONTEXT = b"0190f3a2-7c1e-7b4a-9d6e-2f1a3b4c5d6e"  # a submission id, as UTF-8


def _catalogue() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    return data


def signed_by(catalogue: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """Signed as trust.md says, written out here rather than taken from the platform's code."""
    raw = raw_public_bytes(key.public_key())
    message = json.dumps(
        catalogue, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")
    signed = copy.deepcopy(catalogue)
    signed["signature"] = {
        "alg": "Ed25519",
        "key_id": hashlib.sha256(raw).hexdigest()[:16],
        "value": base64.b64encode(key.sign(message)).decode("ascii"),
    }
    return signed


def _reversed(value: Any) -> Any:
    """The same JSON value with every object's members in the opposite order."""
    if isinstance(value, dict):
        return {name: _reversed(value[name]) for name in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed(item) for item in value]
    return value


@pytest.fixture
def platform_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def trusted(platform_key: Ed25519PrivateKey) -> dict[str, Any]:
    return signing_keys([platform_key.public_key()])


# -- canonical form and key ids --------------------------------------------------------------------


def test_canonical_json_is_sorted_compact_utf8() -> None:
    value = {"b": 1, "a": "中文", "c": [2, {"y": None, "x": True}], "d": 1.5}
    expected = '{"a":"中文","b":1,"c":[2,{"x":true,"y":null}],"d":1.5}'.encode()
    assert canonical_json(value) == expected
    assert canonical_json(_reversed(value)) == expected


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "\ud800", {1j: 1}])
def test_canonical_json_refuses_what_has_no_canonical_form(value: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        canonical_json({"x": value})


def test_key_id_is_the_first_16_hex_of_the_sha256_of_the_raw_key() -> None:
    raw = bytes(range(32))
    assert key_id(raw) == hashlib.sha256(raw).hexdigest()[:16]
    assert len(key_id(raw)) == 16
    with pytest.raises(ValueError, match="32 bytes"):
        key_id(raw[:31])


def test_public_keys_travel_as_base64_of_raw_bytes() -> None:
    signing = Ed25519PrivateKey.generate().public_key()
    sealing = X25519PrivateKey.generate().public_key()
    assert len(base64.b64decode(public_key_b64(signing), validate=True)) == 32
    assert raw_public_bytes(ed25519_public_from_b64(public_key_b64(signing))) == (
        raw_public_bytes(signing)
    )
    assert raw_public_bytes(x25519_public_from_b64(public_key_b64(sealing))) == (
        raw_public_bytes(sealing)
    )
    for bad in ["", "not base64!", base64.b64encode(bytes(31)).decode(), "AAAA" * 11 + "A==="]:
        with pytest.raises(ValueError):
            ed25519_public_from_b64(bad)


# -- the signed catalogue --------------------------------------------------------------------------


def test_a_signed_catalogue_verifies_and_comes_back_without_its_signature(
    platform_key: Ed25519PrivateKey, trusted: dict[str, Any]
) -> None:
    catalogue = _catalogue()
    signed = signed_by(catalogue, platform_key)
    kept = copy.deepcopy(signed)
    assert verify_catalogue(signed, trusted) == catalogue
    assert signed == kept  # the document given is left as it was


def test_members_in_another_order_still_verify(
    platform_key: Ed25519PrivateKey, trusted: dict[str, Any]
) -> None:
    signed = signed_by(_catalogue(), platform_key)
    reordered = json.loads(json.dumps(_reversed(signed), indent=2, ensure_ascii=True))
    assert list(reordered) != list(signed)
    assert verify_catalogue(reordered, trusted) == _catalogue()


def _change_a_label(data: dict[str, Any]) -> None:
    data["services"][0]["name"]["zh_CN"] += "。"


def _change_a_pattern(data: dict[str, Any]) -> None:
    form = data["services"][0]["form"]
    form["properties"][next(iter(form["properties"]))]["maxLength"] = 10_000


def _add_a_member(data: dict[str, Any]) -> None:
    data["extra"] = True


def _drop_a_service(data: dict[str, Any]) -> None:
    data["services"].pop()


def _change_a_type(data: dict[str, Any]) -> None:
    data["version"] = [data["version"]]


@pytest.mark.parametrize(
    "tamper",
    [_change_a_label, _change_a_pattern, _add_a_member, _drop_a_service, _change_a_type],
)
def test_a_changed_member_is_a_bad_signature(
    platform_key: Ed25519PrivateKey, trusted: dict[str, Any], tamper: Any
) -> None:
    signed = signed_by(_catalogue(), platform_key)
    tamper(signed)
    with pytest.raises(CatalogueSignatureError) as caught:
        verify_catalogue(signed, trusted)
    assert caught.value.code == "bad_signature"


def test_a_signature_taken_from_another_catalogue_is_bad(
    platform_key: Ed25519PrivateKey, trusted: dict[str, Any]
) -> None:
    older = _catalogue()
    older["version"] = "older"
    signed = _catalogue()
    signed["signature"] = signed_by(older, platform_key)["signature"]
    with pytest.raises(CatalogueSignatureError) as caught:
        verify_catalogue(signed, trusted)
    assert caught.value.code == "bad_signature"


def test_a_catalogue_without_a_canonical_form_is_a_bad_signature(
    platform_key: Ed25519PrivateKey, trusted: dict[str, Any]
) -> None:
    signed = signed_by(_catalogue(), platform_key)
    signed["version"] = "\ud800"  # what json.loads makes of a lone "\ud800" escape
    with pytest.raises(CatalogueSignatureError) as caught:
        verify_catalogue(signed, trusted)
    assert caught.value.code == "bad_signature"


def test_a_key_not_trusted_is_an_unknown_key(trusted: dict[str, Any]) -> None:
    stranger = Ed25519PrivateKey.generate()
    with pytest.raises(CatalogueSignatureError) as caught:
        verify_catalogue(signed_by(_catalogue(), stranger), trusted)
    assert caught.value.code == "unknown_key"
    assert verify_catalogue(
        signed_by(_catalogue(), stranger), signing_keys([stranger.public_key()])
    ) == (_catalogue())


def test_a_key_filed_under_another_id_is_not_that_key(platform_key: Ed25519PrivateKey) -> None:
    signed = signed_by(_catalogue(), platform_key)
    named = signed["signature"]["key_id"]
    # The signer's id, but another key behind it: its signature must not be checked with that key.
    mixed = {named: Ed25519PrivateKey.generate().public_key()}
    with pytest.raises(CatalogueSignatureError) as caught:
        verify_catalogue(signed, mixed)
    assert caught.value.code == "unknown_key"


@pytest.mark.parametrize("document", [_catalogue(), [], "catalogue", None])
def test_no_signature_is_unsigned(document: Any, trusted: dict[str, Any]) -> None:
    with pytest.raises(CatalogueSignatureError) as caught:
        verify_catalogue(document, trusted)
    assert caught.value.code == "unsigned"


def _sig(**changes: Any) -> dict[str, Any]:
    signature: dict[str, Any] = {
        "alg": "Ed25519",
        "key_id": "0123456789abcdef",
        "value": base64.b64encode(bytes(64)).decode(),
    }
    signature.update(changes)
    return {name: value for name, value in signature.items() if value is not None}


@pytest.mark.parametrize(
    "signature",
    [
        "c2lnbmF0dXJl",
        [],
        None,
        {},
        _sig(alg=None),
        _sig(key_id=None),
        _sig(value=None),
        dict(_sig(), extra=1),
        _sig(alg="RSA-SHA256"),
        _sig(alg="ed25519"),
        _sig(key_id=12345),
        _sig(key_id="0123"),
        _sig(value=123),
        _sig(value="not base64 at all"),
        _sig(value=base64.b64encode(bytes(63)).decode()),
        _sig(value=base64.b64encode(bytes(65)).decode()),
        _sig(value=base64.urlsafe_b64encode(b"\xff" * 64).decode()),
        _sig(value=base64.b64encode(bytes(64)).decode().rstrip("=")),
        _sig(value="署名"),
    ],
)
def test_a_malformed_signature_is_refused(
    signature: Any, platform_key: Ed25519PrivateKey, trusted: dict[str, Any]
) -> None:
    signed = signed_by(_catalogue(), platform_key)
    if (
        isinstance(signature, dict)
        and "key_id" in signature
        and signature["key_id"] == ("0123456789abcdef")
    ):
        signature["key_id"] = signed["signature"]["key_id"]  # trusted, so the form is what fails
    signed["signature"] = signature
    with pytest.raises(CatalogueSignatureError) as caught:
        verify_catalogue(signed, trusted)
    assert caught.value.code == "malformed_signature"


def test_a_signature_error_is_a_catalogue_error_with_the_catalogue_message(
    trusted: dict[str, Any],
) -> None:
    with pytest.raises(CatalogueError) as caught:
        verify_catalogue(_catalogue(), trusted)
    assert isinstance(caught.value, CatalogueSignatureError)
    assert "unsigned" in caught.value.detail
    set_language("en")  # the suite's fixture sets the default language back
    assert caught.value.user_message() == (
        "The list of services could not be loaded. Please ask staff for help."
    )


# -- sealed bodies ---------------------------------------------------------------------------------


@pytest.fixture
def platform_seal_key() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


def _open_by_the_spec(envelope: dict[str, str], private: X25519PrivateKey, context: bytes) -> bytes:
    """trust.md's recipe, step by step, without kiosk.trust."""
    epk = base64.b64decode(envelope["epk"])
    recipient = raw_public_bytes(private.public_key())
    shared = private.exchange(X25519PublicKey.from_public_bytes(epk))
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=epk + recipient,
        info=b"hall-terminal seal v1" + context,
    ).derive(shared)
    return AESGCM(key).decrypt(
        base64.b64decode(envelope["nonce"]), base64.b64decode(envelope["ciphertext"]), context
    )


def test_a_sealed_body_opens_with_the_platform_key(platform_seal_key: X25519PrivateKey) -> None:
    body = json.dumps({"name": "王秀英", "id_number": "11010519491231002X"}).encode()
    envelope = seal(body, platform_seal_key.public_key(), CONTEXT)
    assert open_sealed(envelope, platform_seal_key, CONTEXT) == body
    assert _open_by_the_spec(envelope, platform_seal_key, CONTEXT) == body
    assert body not in json.dumps(envelope).encode()


def test_the_envelope_has_the_fields_of_the_wire_format(
    platform_seal_key: X25519PrivateKey,
) -> None:
    body = b"x" * 100
    envelope = seal(body, platform_seal_key.public_key(), CONTEXT)
    assert set(envelope) == {"alg", "key_id", "epk", "nonce", "ciphertext"}
    assert envelope["alg"] == "X25519-HKDF-SHA256-AES256GCM"
    assert envelope["key_id"] == key_id(raw_public_bytes(platform_seal_key.public_key()))
    assert len(base64.b64decode(envelope["epk"], validate=True)) == 32
    assert len(base64.b64decode(envelope["nonce"], validate=True)) == 12
    assert len(base64.b64decode(envelope["ciphertext"], validate=True)) == len(body) + 16
    again = seal(body, platform_seal_key.public_key(), CONTEXT)
    # A fresh ephemeral key and nonce each time: the same body never seals the same way twice.
    assert again["epk"] != envelope["epk"]
    assert again["nonce"] != envelope["nonce"]
    assert again["ciphertext"] != envelope["ciphertext"]


@pytest.mark.parametrize("size", [0, 1, 16 * 1024 * 1024 + 7])
def test_bodies_of_any_size_round_trip(platform_seal_key: X25519PrivateKey, size: int) -> None:
    body = bytes(i % 251 for i in range(size)) if size < 1024 else (b"0123456789" * size)[:size]
    envelope = seal(body, platform_seal_key.public_key(), CONTEXT)
    assert open_sealed(envelope, platform_seal_key, CONTEXT) == body


def test_another_key_cannot_open_it(platform_seal_key: X25519PrivateKey) -> None:
    envelope = seal(b"secret", platform_seal_key.public_key(), CONTEXT)
    other = X25519PrivateKey.generate()
    with pytest.raises(SealError) as caught:
        open_sealed(envelope, other, CONTEXT)
    assert caught.value.code == "wrong_key"
    # Claiming the other key's id does not help: the derived key is still wrong.
    envelope["key_id"] = key_id(raw_public_bytes(other.public_key()))
    with pytest.raises(SealError) as caught:
        open_sealed(envelope, other, CONTEXT)
    assert caught.value.code == "not_authentic"


def test_a_body_sealed_for_one_submission_does_not_open_as_another(
    platform_seal_key: X25519PrivateKey,
) -> None:
    envelope = seal(b"secret", platform_seal_key.public_key(), CONTEXT)
    for other in [CONTEXT[:-1] + b"f", CONTEXT + b" ", b"another-submission"]:
        with pytest.raises(SealError) as caught:
            open_sealed(envelope, platform_seal_key, other)
        assert caught.value.code == "not_authentic"


def _flipped(text: str, at: int) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    ("member", "at"),
    [
        ("ciphertext", 0),
        ("ciphertext", 20),
        ("ciphertext", -1),  # the last byte of the tag
        ("nonce", 0),
        ("nonce", 11),
        ("epk", 0),
        ("epk", 17),
    ],
)
def test_one_flipped_bit_is_refused(
    platform_seal_key: X25519PrivateKey, member: str, at: int
) -> None:
    envelope = seal(b"a" * 40, platform_seal_key.public_key(), CONTEXT)
    envelope[member] = _flipped(envelope[member], at)
    with pytest.raises(SealError) as caught:
        open_sealed(envelope, platform_seal_key, CONTEXT)
    assert caught.value.code == "not_authentic"


def test_a_low_order_ephemeral_key_is_refused(platform_seal_key: X25519PrivateKey) -> None:
    envelope = seal(b"a", platform_seal_key.public_key(), CONTEXT)
    envelope["epk"] = base64.b64encode(bytes(32)).decode()
    with pytest.raises(SealError) as caught:
        open_sealed(envelope, platform_seal_key, CONTEXT)
    assert caught.value.code == "not_authentic"


def _edit(**changes: Any) -> Any:
    def edit(envelope: dict[str, Any]) -> dict[str, Any]:
        for name, value in changes.items():
            if value is None:
                envelope.pop(name)
            else:
                envelope[name] = value
        return envelope

    return edit


@pytest.mark.parametrize(
    "edit",
    [
        _edit(alg="X25519-HKDF-SHA256-CHACHA20POLY1305"),
        _edit(alg=None),
        _edit(epk=None),
        _edit(nonce=None),
        _edit(ciphertext=None),
        _edit(extra="1"),
        _edit(epk=base64.b64encode(bytes(31)).decode()),
        _edit(nonce=base64.b64encode(bytes(16)).decode()),
        _edit(nonce="%%%%"),
        _edit(ciphertext=base64.b64encode(bytes(15)).decode()),
        _edit(ciphertext=12),
        _edit(epk=["a"]),
    ],
)
def test_an_envelope_of_another_form_is_malformed(
    platform_seal_key: X25519PrivateKey, edit: Any
) -> None:
    envelope = edit(seal(b"a", platform_seal_key.public_key(), CONTEXT))
    with pytest.raises(SealError) as caught:
        open_sealed(envelope, platform_seal_key, CONTEXT)
    assert caught.value.code == "malformed_envelope"


@pytest.mark.parametrize("envelope", [None, [], "sealed", {}])
def test_what_is_no_envelope_is_malformed(
    platform_seal_key: X25519PrivateKey, envelope: Any
) -> None:
    with pytest.raises(SealError) as caught:
        open_sealed(envelope, platform_seal_key, CONTEXT)
    assert caught.value.code == "malformed_envelope"


def test_a_context_is_required(platform_seal_key: X25519PrivateKey) -> None:
    with pytest.raises(ValueError, match="context"):
        seal(b"a", platform_seal_key.public_key(), b"")
    envelope = seal(b"a", platform_seal_key.public_key(), CONTEXT)
    with pytest.raises(SealError):
        open_sealed(envelope, platform_seal_key, b"")


def test_a_recipient_key_of_low_order_is_refused() -> None:
    with pytest.raises(SealError) as caught:
        seal(b"a", X25519PublicKey.from_public_bytes(bytes(32)), CONTEXT)
    assert caught.value.code == "wrong_key"
