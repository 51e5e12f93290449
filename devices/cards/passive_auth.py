"""Passive Authentication of an eMRTD (ICAO 9303 Part 11 §5.1, Part 10 §4.6.2, Part 12).

The chip's EF.SOD (tag 77) wraps a CMS SignedData whose content is the LDSSecurityObject: the
hash of every data group. The document is genuine when
1. the Document Signer (DS) certificate in the SOD was signed by a CSCA of the trust store,
2. the SignerInfo's message-digest attribute is the hash of the LDSSecurityObject and the DS
   signature over the signed attributes verifies (RSA PKCS#1 v1.5, RSA-PSS, ECDSA in DER or in
   the plain r||s form of BSI TR-03111; SHA-1, SHA-224, SHA-256, SHA-384, SHA-512), and
3. every data group read hashes to the value the LDSSecurityObject lists for it.
EC keys may name their curve or spell out its parameters (as BSI TR-03110 issuers do); spelled-out
P-224/256/384/521 and brainpoolP256/384/512r1 are recognised. What cannot be checked at all (an
unknown curve, DSA, another hash) is not_checked/unsupported_algorithm, not a failure.
Passive Authentication proves the data was written by the issuer; it does not prove the chip is
not a copy (that is Active or Chip Authentication).

Dates. ICAO makes a DS certificate valid for its key's usage period plus the longest validity of a
document it signs, and a CSCA certificate valid for its key's usage period plus the longest
validity of a DS certificate, so a document that has not expired is always within both validity
periods even though its DS private key has long stopped signing. Both certificates are therefore
checked at one reference time: now, or the end of the document's expiry day when that is earlier.
An expired passport can still be shown to be genuine; whether an expired document is acceptable
is the application's decision on its expiry date. A SOD that states its signing time is also
accepted when both certificates were valid then (ICAO: "valid at the time of signing"), for
issuers whose DS certificates end with the key usage period. The private key usage period
extension is not consulted. Revocation lists are not consulted either.

Trust: CSCA certificates (PEM or DER, a file or a directory) and ICAO master lists (a CMS
SignedData over a CscaMasterList). A master list is trusted because it was configured, like a
CSCA file; its own signature is checked only against the CSCAs it carries, which catches a damaged
or altered file but cannot make a list more trustworthy than where it came from.

Every failure is a DocumentCheck, never an exception: a document that fails is still read, and
staff decide what to do with it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from asn1crypto import cms, core, pem  # type: ignore[import-untyped]
from asn1crypto import x509 as asn1_x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from devices.cards.document_check import CheckStatus, DocumentCheck

log = logging.getLogger(__name__)

OID_LDS_SECURITY_OBJECT = "2.23.136.1.1.1"
OID_CSCA_MASTER_LIST = "2.23.136.1.1.2"
_OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
_SOD_TAG = 23  # application class, constructed: the 77 of EF.SOD

# BSI TR-03111 ecdsa-plain-signatures: r || s instead of a DER sequence.
_ECDSA_PLAIN = {
    "0.4.0.127.0.7.1.1.4.1.1": "sha1",
    "0.4.0.127.0.7.1.1.4.1.2": "sha224",
    "0.4.0.127.0.7.1.1.4.1.3": "sha256",
    "0.4.0.127.0.7.1.1.4.1.4": "sha384",
    "0.4.0.127.0.7.1.1.4.1.5": "sha512",
}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
# Many issuers spell out their EC domain parameters (BSI TR-03110 asks for it) where `cryptography`
# only loads named curves. A curve is recognised by prime, a, b and order; the key is then checked
# with the named curve's own generator. Key: the first 128 bits of SHA-256 over "p:a:b:n" in hex.
_EXPLICIT_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "2807d7c8d322fb99ecb37cbdc2821e29": ec.SECP256R1,
    "47f8b9bc23432b86c28ce8586f90973a": ec.SECP384R1,
    "9f729863eec21cbafb959b8bb8750135": ec.SECP521R1,
    "2ac470b5d6325e672a17a8e8da7a71be": ec.SECP224R1,
    "ece2249f929fa0ae4d08e351e9824408": ec.BrainpoolP256R1,
    "dbbce33989ab7328aaf13a3276208684": ec.BrainpoolP384R1,
    "bc83695020c3a965cbf94ea2ef838b7c": ec.BrainpoolP512R1,
}
_CERT_SUFFIXES = {".pem", ".crt", ".cer", ".der", ".ml", ".cacert"}




class TrustStoreError(ValueError):
    """A configured CSCA file or master list cannot be used."""


# ---- ASN.1 of ICAO 9303 Part 10 §4.6.2.2 and Part 12 §9 ---------------------------------------


class DataGroupHash(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar = [
        ("data_group_number", core.Integer),
        ("data_group_hash_value", core.OctetString),
    ]


class DataGroupHashValues(core.SequenceOf):  # type: ignore[misc]
    _child_spec = DataGroupHash


class LdsVersionInfo(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar = [
        ("lds_version", core.PrintableString),
        ("unicode_version", core.PrintableString),
    ]


class LdsSecurityObject(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar = [
        ("version", core.Integer),
        ("hash_algorithm", cms.DigestAlgorithm),
        ("data_group_hash_values", DataGroupHashValues),
        ("lds_version_info", LdsVersionInfo, {"optional": True}),
    ]


class CscaCertificates(core.SetOf):  # type: ignore[misc]
    _child_spec = asn1_x509.Certificate


class CscaMasterList(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar = [("version", core.Integer), ("cert_list", CscaCertificates)]


# ---- the trust store --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class TrustStore:
    """CSCA certificates to accept Document Signers from. Immutable, shared between readers."""

    certificates: tuple[Any, ...]  # asn1crypto x509.Certificate

    def __len__(self) -> int:
        return len(self.certificates)

    @classmethod
    def load(cls, *paths: Path, verify_master_lists: bool = True) -> TrustStore:
        """Certificates and master lists from files and directories (not recursive).

        In a directory, files ending .pem .crt .cer .der .ml .cacert are read. TrustStoreError if
        a file cannot be read or parsed, a master list's signature does not hold, or nothing at
        all was found: better to fail when the terminal starts than when a citizen is waiting.
        """
        blobs: list[tuple[str, bytes]] = []
        for path in paths:
            files = (
                sorted(p for p in path.iterdir() if p.suffix.lower() in _CERT_SUFFIXES)
                if path.is_dir()
                else [path]
            )
            for file in files:
                try:
                    blobs.append((str(file), file.read_bytes()))
                except OSError as exc:
                    raise TrustStoreError(f"cannot read {file}: {exc}") from exc
        store = cls.from_bytes(blobs, verify_master_lists=verify_master_lists)
        if not store.certificates:
            where = ", ".join(str(p) for p in paths) or "nothing"
            raise TrustStoreError(f"no CSCA certificates in {where}")
        return store

    @classmethod
    def from_bytes(
        cls, blobs: Iterable[tuple[str, bytes]], *, verify_master_lists: bool = True
    ) -> TrustStore:
        """From (name, content) pairs: each a PEM bundle, a DER certificate or a master list."""
        found: dict[bytes, Any] = {}
        for name, data in blobs:
            try:
                for der in _der_objects(data):
                    for cert in _certificates_in(der, verify_master_lists):
                        found.setdefault(hashlib.sha256(cert.dump()).digest(), cert)
            except (ValueError, TypeError, KeyError) as exc:
                raise TrustStoreError(f"{name}: {exc}") from exc
        return cls(tuple(found.values()))


def _der_objects(data: bytes) -> list[bytes]:
    if pem.detect(data):
        return [der for _kind, _headers, der in pem.unarmor(data, multiple=True)]
    return [data]


def _certificates_in(der: bytes, verify_master_lists: bool) -> list[Any]:
    info = _content_info(der)
    if info is None:
        cert = asn1_x509.Certificate.load(der, strict=True)
        _parse_all(cert)
        return [cert]
    signed = info["content"]
    try:
        econtent = _econtent(signed, OID_CSCA_MASTER_LIST)
    except _Failure as failure:
        raise TrustStoreError(f"not a master list: {failure}") from failure
    certs = list(CscaMasterList.load(econtent, strict=True)["cert_list"])
    for cert in certs:
        _parse_all(cert)
    if verify_master_lists:
        try:
            _verify_signer(signed, econtent, OID_CSCA_MASTER_LIST, certs, at=None)
        except _Failure as failure:
            raise TrustStoreError(f"master list signature: {failure}") from failure
    return certs


def _parse_all(value: Any) -> None:
    """asn1crypto parses lazily: touch every part so a broken structure fails here, at once."""
    _ = value.native


def _content_info(der: bytes) -> Any:
    """The ContentInfo of a SignedData when der is one (a master list), else None."""
    try:
        info = cms.ContentInfo.load(der, strict=True)
        is_signed = info["content_type"].dotted == _OID_SIGNED_DATA
    except (ValueError, TypeError):
        return None
    return info if is_signed else None


# ---- verification -----------------------------------------------------------------------------


class _Failure(Exception):
    def __init__(self, reason: str, detail: str, status: CheckStatus = CheckStatus.FAILED) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status


@dataclass(slots=True)
class _Signer:
    country: str = ""
    subject: str = ""


def verify(
    sod: bytes,
    data_groups: Mapping[int, bytes],
    trust: TrustStore,
    *,
    now: dt.datetime,
    document_expiry: dt.date | None = None,
) -> DocumentCheck:
    """Passive Authentication of the data groups read (number -> the whole file as read)."""
    signer = _Signer()
    try:
        if not sod:
            raise _Failure("no_sod", "the chip has no EF.SOD")
        signed = _signed_data(sod)
        econtent = _econtent(signed, OID_LDS_SECURITY_OBJECT)
        at = _reference_time(now, document_expiry)
        _verify_signer(
            signed, econtent, OID_LDS_SECURITY_OBJECT, trust.certificates, at=at, found=signer
        )
        _check_data_groups(econtent, data_groups)
    except _Failure as failure:
        return DocumentCheck(
            failure.status, failure.reason, signer.country, signer.subject, failure.detail
        )
    return DocumentCheck(CheckStatus.PASSED, "", signer.country, signer.subject)


def _reference_time(now: dt.datetime, expiry: dt.date | None) -> dt.datetime:
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    if expiry is None:
        return now
    end_of_expiry = dt.datetime.combine(expiry, dt.time(23, 59, 59), dt.UTC)
    return min(now, end_of_expiry)


def _signed_data(sod: bytes) -> Any:
    try:
        outer = core.Asn1Value.load(sod, strict=True)
        if outer.class_ != 1 or outer.tag != _SOD_TAG or outer.method != 1:
            raise _Failure("malformed_sod", "EF.SOD is not tag 77")
        info = cms.ContentInfo.load(outer.contents, strict=True)
        if info["content_type"].dotted != _OID_SIGNED_DATA:
            raise _Failure("malformed_sod", "EF.SOD does not hold a SignedData")
        signed = info["content"]
        _parse_all(signed)
    except (ValueError, TypeError, KeyError) as exc:
        raise _Failure("malformed_sod", str(exc)) from exc
    return signed


def _econtent(signed: Any, content_type: str) -> bytes:
    try:
        encap = signed["encap_content_info"]
        if encap["content_type"].dotted != content_type:
            raise _Failure("malformed_sod", f"content is {encap['content_type'].dotted}")
        content = encap["content"]
        if isinstance(content, core.Void):
            raise _Failure("malformed_sod", "the SignedData has no content")
        if isinstance(content, core.Any):
            # A version 1 SignedData reads as PKCS#7; CMS still wraps the content in OCTETS.
            content = content.parse(core.OctetString)
        return bytes(content)
    except (ValueError, TypeError, KeyError) as exc:
        raise _Failure("malformed_sod", str(exc)) from exc


def _verify_signer(
    signed: Any,
    econtent: bytes,
    content_type: str,
    anchors: Sequence[Any],
    *,
    at: dt.datetime | None,
    found: _Signer | None = None,
) -> None:
    """The one SignerInfo's certificate chains to an anchor and its signature covers econtent.

    at None skips the validity dates (master lists, whose signer certificates are short-lived).
    """
    try:
        infos = list(signed["signer_infos"])
        if len(infos) != 1:
            raise _Failure("malformed_sod", f"{len(infos)} signers instead of one")
        info = infos[0]
        ds = _signer_certificate(signed, info)
        if found is not None:
            found.country = str(ds.issuer.native.get("country_name", ""))
            found.subject = ds.subject.human_friendly
        digest_name = info["digest_algorithm"]["algorithm"].native
        signed_attrs = info["signed_attrs"]
        if not signed_attrs:
            raise _Failure("malformed_sod", "the signer has no signed attributes")
        attrs = {attr["type"].dotted: list(attr["values"]) for attr in signed_attrs}
        stated_type = attrs.get("1.2.840.113549.1.9.3", [])
        digests = attrs.get("1.2.840.113549.1.9.4", [])
        times = attrs.get("1.2.840.113549.1.9.5", [])
        signing_time: dt.datetime | None = times[0].native if len(times) == 1 else None
        # The signature covers the attributes as a SET (tag 31), in the bytes the chip holds.
        attrs_der = b"\x31" + signed_attrs.dump()[1:]
        signature = info["signature"].native
        algorithm = info["signature_algorithm"]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise _Failure("malformed_sod", str(exc)) from exc
    if len(stated_type) != 1 or stated_type[0].dotted != content_type:
        raise _Failure("malformed_sod", "content-type attribute missing or wrong")
    if len(digests) != 1:
        raise _Failure("malformed_sod", "message-digest attribute missing")
    if _digest(digest_name, econtent) != digests[0].native:
        raise _Failure("sod_signature_invalid", "message digest does not match the content")
    csca = _issuer_of(ds, anchors)
    try:
        _verify_signature(_public_key(ds), signature, attrs_der, algorithm, digest_name)
    except InvalidSignature as exc:
        raise _Failure("sod_signature_invalid", "signature over the signed attributes") from exc
    if at is not None:
        # After the signature: only then is the signing time the signer's word.
        _check_dates(ds, csca, at, signing_time)


def _signer_certificate(signed: Any, info: Any) -> Any:
    sid = info["sid"]
    for choice in signed["certificates"] or []:
        if choice.name != "certificate":
            continue
        cert = choice.chosen
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            serial = wanted["serial_number"].native
            if cert.issuer == wanted["issuer"] and cert.serial_number == serial:
                return cert
        elif cert.key_identifier == sid.chosen.native:
            return cert
    raise _Failure("ds_certificate_missing", "the SOD does not carry its signer's certificate")


def _issuer_of(ds: Any, anchors: Sequence[Any]) -> Any:
    """The anchor that signed ds; several may share a name (key rollover), each is tried."""
    aki = ds.authority_key_identifier
    candidates = [
        csca
        for csca in anchors
        if csca.subject == ds.issuer
        and (aki is None or csca.key_identifier is None or csca.key_identifier == aki)
    ]
    if not candidates:
        raise _Failure("unknown_csca", f"no CSCA {ds.issuer.human_friendly}")
    tbs = ds["tbs_certificate"].dump()
    algorithm = ds["signature_algorithm"]
    unsupported: _Failure | None = None
    for csca in candidates:
        try:
            _verify_signature(_public_key(csca), ds.signature, tbs, algorithm, None)
        except InvalidSignature:
            continue
        except _Failure as failure:
            unsupported = failure
            continue
        return csca
    if unsupported is not None:
        raise unsupported
    raise _Failure("ds_signature_invalid", f"not signed by {ds.issuer.human_friendly}")


def _check_dates(ds: Any, csca: Any, at: dt.datetime, signing_time: dt.datetime | None) -> None:
    def valid(cert: Any, when: dt.datetime) -> bool:
        return bool(cert.not_valid_before <= when <= cert.not_valid_after)

    for cert, reason in ((ds, "ds_not_valid_now"), (csca, "csca_not_valid_now")):
        if valid(cert, at) or (signing_time is not None and valid(cert, signing_time)):
            continue
        # Not the time checked at: that may be the document's expiry date, which is personal.
        raise _Failure(
            reason, f"valid {cert.not_valid_before:%Y-%m-%d} to {cert.not_valid_after:%Y-%m-%d}"
        )


def _check_data_groups(econtent: bytes, data_groups: Mapping[int, bytes]) -> None:
    try:
        lds = LdsSecurityObject.load(econtent, strict=True)
        digest_name = lds["hash_algorithm"]["algorithm"].native
        listed = {
            entry["data_group_number"].native: entry["data_group_hash_value"].native
            for entry in lds["data_group_hash_values"]
        }
    except (ValueError, TypeError, KeyError) as exc:
        raise _Failure("malformed_sod", f"LDSSecurityObject: {exc}") from exc
    for number, content in sorted(data_groups.items()):
        expected = listed.get(number)
        if expected is None:
            raise _Failure("dg_hash_mismatch", f"DG{number} is not listed in the SOD")
        if _digest(digest_name, content) != expected:
            raise _Failure("dg_hash_mismatch", f"DG{number} differs from the SOD")


def _digest(name: str, data: bytes) -> bytes:
    hasher = hashes.Hash(_hash(name))
    hasher.update(data)
    return hasher.finalize()


def _hash(name: str) -> hashes.HashAlgorithm:
    algorithm = _HASHES.get(name)
    if algorithm is None:
        raise _Failure("unsupported_algorithm", f"hash {name}", CheckStatus.NOT_CHECKED)
    return algorithm()


def _public_key(cert: Any) -> Any:
    info = cert.public_key
    try:
        return serialization.load_der_public_key(info.dump())
    except (ValueError, UnsupportedAlgorithm) as exc:
        key = _explicit_ec_key(info)
        if key is not None:
            return key
        raise _Failure(
            "unsupported_algorithm", f"public key: {exc}", CheckStatus.NOT_CHECKED
        ) from exc


def _explicit_ec_key(info: Any) -> ec.EllipticCurvePublicKey | None:
    """An EC key whose certificate spells out a known curve's parameters, else None."""
    try:
        algorithm = info["algorithm"]
        if algorithm["algorithm"].native != "ec" or algorithm["parameters"].name != "specified":
            return None
        domain = algorithm["parameters"].chosen
        if domain["field_id"]["field_type"].native != "prime_field":
            return None
        p = domain["field_id"]["parameters"].native
        a = int.from_bytes(domain["curve"]["a"].native, "big")
        b = int.from_bytes(domain["curve"]["b"].native, "big")
        n = domain["order"].native
        fingerprint = hashlib.sha256(f"{p:x}:{a:x}:{b:x}:{n:x}".encode()).hexdigest()[:32]
        curve = _EXPLICIT_CURVES.get(fingerprint)
        if curve is None:
            return None
        return ec.EllipticCurvePublicKey.from_encoded_point(curve(), info["public_key"].native)
    except (ValueError, TypeError, KeyError):
        return None


def _verify_signature(
    key: Any, signature: bytes, data: bytes, algorithm: Any, digest_name: str | None
) -> None:
    """InvalidSignature when the signature does not hold; _Failure when it cannot be checked.

    digest_name stands in for the hash when the algorithm names none (rsaEncryption or
    id-ecPublicKey as a CMS signature algorithm, which issuers do use).
    """
    dotted = algorithm["algorithm"].dotted
    if dotted in _ECDSA_PLAIN:
        if not isinstance(key, ec.EllipticCurvePublicKey) or len(signature) % 2:
            raise InvalidSignature
        half = len(signature) // 2
        der = encode_dss_signature(
            int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
        )
        key.verify(der, data, ec.ECDSA(_hash(_ECDSA_PLAIN[dotted])))
        return
    try:
        kind = algorithm.signature_algo
    except ValueError:
        kind = "ecdsa" if dotted == "1.2.840.10045.2.1" else ""
    try:
        hash_name = algorithm.hash_algo
    except ValueError:
        hash_name = digest_name or ""
    if kind == "rsassa_pkcs1v15":
        if not isinstance(key, rsa.RSAPublicKey):
            raise InvalidSignature
        key.verify(signature, data, padding.PKCS1v15(), _hash(hash_name))
    elif kind == "rsassa_pss":
        if not isinstance(key, rsa.RSAPublicKey):
            raise InvalidSignature
        params = algorithm["parameters"]
        mgf = params["mask_gen_algorithm"]
        trailer = params["trailer_field"].native
        if mgf["algorithm"].native != "mgf1" or trailer != "trailer_field_bc":
            raise _Failure("unsupported_algorithm", "PSS variant", CheckStatus.NOT_CHECKED)
        pss = padding.PSS(
            mgf=padding.MGF1(_hash(mgf["parameters"]["algorithm"].native)),
            salt_length=int(params["salt_length"].native),
        )
        key.verify(signature, data, pss, _hash(params["hash_algorithm"]["algorithm"].native))
    elif kind == "ecdsa":
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise InvalidSignature
        key.verify(signature, data, ec.ECDSA(_hash(hash_name)))
    else:
        raise _Failure("unsupported_algorithm", f"signature {dotted}", CheckStatus.NOT_CHECKED)
