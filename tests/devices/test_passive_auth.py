"""Passive Authentication: the eMRTD profile reads EF.SOD from the emulated chip and checks it
against a trust store of CSCAs the tests make themselves (tests/fixtures/mrtd_pki.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import keys  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from devices.cards import passive_auth
from devices.cards.bac import BacKey
from devices.cards.base import ProfileRegistry
from devices.cards.document_check import NOT_CHECKED, CheckStatus, DocumentCheck
from devices.cards.emrtd import FID_SOD, EmrtdProfile
from devices.cards.mrz import MrtdIdentity
from devices.cards.passive_auth import TrustStore, TrustStoreError, verify
from tests.fixtures import emrtd_card as emu
from tests.fixtures import mrtd_pki as pki

TODAY = dt.date(2026, 1, 15)
NOW = dt.datetime(2026, 1, 15, 10, 0, tzinfo=dt.UTC)
YEAR = dt.timedelta(days=365)


class Direct:
    """A transport that hands APDUs straight to the emulated chip."""

    def __init__(self, chip: emu.Chip) -> None:
        self.chip = chip

    def transmit(self, apdu: bytes) -> bytes:
        return self.chip.handle(apdu)


class RecordingChip(emu.EmrtdChip):
    """Remembers which files were selected (inside secure messaging, so in plain)."""

    selected: list[int]
    refuse_sod: bool = False

    def _file_command(self, header: bytes, data: bytes, le: int | None) -> tuple[bytes, bytes]:
        if header[1] == 0xA4:
            fid = int.from_bytes(data, "big")
            self.selected.append(fid)
            if fid == FID_SOD and self.refuse_sod:
                return b"", emu.SW_SECURITY
        return super()._file_command(header, data, le)


def read(
    doc: emu.Document,
    trust: TrustStore | None,
    *,
    now: dt.datetime = NOW,
    chip: RecordingChip | None = None,
    **options: Any,
) -> MrtdIdentity:
    chip = chip or RecordingChip(doc)
    chip.selected = []
    key = BacKey(doc.document_number, doc.birth, doc.expiry)
    profile = EmrtdProfile(
        lambda _reader: key,
        today=lambda: TODAY,
        trust_store=trust,
        clock=lambda: now,
        **options,
    )
    transport = Direct(chip)
    chosen = ProfileRegistry([profile]).choose(transport, chip.atr)
    identity = chosen.read(transport, "reader-1")
    assert isinstance(identity, MrtdIdentity)
    return identity


def store(*holders: pki.Holder) -> TrustStore:
    return TrustStore.from_bytes((h.cert.subject.rfc4514_string(), h.pem) for h in holders)


@pytest.fixture(scope="module")
def csca() -> pki.Holder:
    return pki.make_csca(not_before=NOW - 15 * YEAR, not_after=NOW + 15 * YEAR)


@pytest.fixture(scope="module")
def signer(csca: pki.Holder) -> pki.Holder:
    return pki.make_signer(csca, not_before=NOW - YEAR, not_after=NOW + 10 * YEAR)


@pytest.fixture(scope="module")
def genuine(signer: pki.Holder) -> emu.Document:
    return pki.signed_document(emu.Document(photo=emu.sample_jpeg()), signer)


def test_genuine_document_passes(genuine: emu.Document, csca: pki.Holder) -> None:
    identity = read(genuine, store(csca))
    check = identity.document_check
    assert check.status is CheckStatus.PASSED, check
    assert check.passed and check.reason == ""
    assert check.country == "UT"
    assert "Document Signer 1" in check.signer
    assert identity.name == "HUANG XIAO MING"
    assert identity.photo is not None


@pytest.mark.parametrize(
    ("kind", "cert_scheme", "options"),
    [
        ("rsa", "pss", {"scheme": "pss"}),
        ("rsa", "pkcs1", {"scheme": "rsa-encryption", "hash_name": "sha512"}),
        ("rsa", "pkcs1", {"by_key_identifier": True, "hash_name": "sha384"}),
        ("ec", "pkcs1", {"scheme": "ecdsa"}),
        ("ec", "pkcs1", {"scheme": "ecdsa-plain", "hash_name": "sha384"}),
        ("brainpool", "pkcs1", {"scheme": "ecdsa", "hash_name": "sha512"}),
    ],
)
def test_signature_schemes_pass(kind: str, cert_scheme: str, options: dict[str, Any]) -> None:
    root = pki.make_csca(kind=kind, scheme=cert_scheme) if kind == "rsa" else pki.make_csca("ZZ")
    ds = pki.make_signer(root, kind=kind, scheme=cert_scheme)
    doc = pki.signed_document(emu.Document(), ds, **options)
    check = read(doc, store(root), now=pki.NOW).document_check
    assert check.status is CheckStatus.PASSED, check
    # The same SOD, one bit of its signature flipped, fails: the scheme really was checked.
    broken = pki.signed_document(emu.Document(), ds, break_signature=True, **options)
    check = read(broken, store(root), now=pki.NOW).document_check
    assert (check.status, check.reason) == (CheckStatus.FAILED, "sod_signature_invalid")




def test_explicit_curve_parameters_pass() -> None:
    root = pki.make_csca("DE", kind="brainpool")
    root = pki.with_explicit_parameters(root, root.key, "brainpoolP256r1")
    ds = pki.make_signer(root, kind="brainpool")
    ds = pki.with_explicit_parameters(ds, root.key, "brainpoolP256r1")
    with pytest.raises(ValueError, match="explicit"):
        ds.cert.public_key()  # what `cryptography` alone makes of it
    doc = pki.signed_document(emu.Document(), ds)
    assert read(doc, store(root), now=pki.NOW).document_check.passed
    broken = pki.signed_document(emu.Document(), ds, break_signature=True)
    assert read(broken, store(root), now=pki.NOW).document_check.reason == "sod_signature_invalid"


@pytest.mark.parametrize(
    ("name", "curve"),
    [
        ("prime256v1", ec.SECP256R1),
        ("secp224r1", ec.SECP224R1),
        ("secp384r1", ec.SECP384R1),
        ("secp521r1", ec.SECP521R1),
        ("brainpoolP256r1", ec.BrainpoolP256R1),
        ("brainpoolP384r1", ec.BrainpoolP384R1),
        ("brainpoolP512r1", ec.BrainpoolP512R1),
    ],
)
def test_every_known_curve_is_recognised_spelled_out(
    name: str, curve: type[ec.EllipticCurve]
) -> None:
    key = ec.generate_private_key(curve()).public_key()
    point = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    info = keys.PublicKeyInfo(
        {
            "algorithm": {
                "algorithm": "ec",
                "parameters": keys.ECDomainParameters.load(pki.explicit_parameters(name)),
            },
            "public_key": point,
        }
    )
    found = passive_auth._explicit_ec_key(keys.PublicKeyInfo.load(info.dump()))
    assert found is not None
    assert isinstance(found.curve, curve)
    assert found.public_numbers() == key.public_numbers()


def test_altered_dg1_fails_but_is_still_read(genuine: emu.Document, csca: pki.Holder) -> None:
    altered = dataclasses.replace(genuine, surname="SMITH")
    identity = read(altered, store(csca))
    assert identity.name == "SMITH XIAO MING"
    check = identity.document_check
    assert (check.status, check.reason) == (CheckStatus.FAILED, "dg_hash_mismatch")
    assert "DG1" in check.detail


def test_swapped_photo_fails(genuine: emu.Document, csca: pki.Holder) -> None:
    altered = dataclasses.replace(genuine, photo=emu.sample_jpeg(seed=99))
    check = read(altered, store(csca)).document_check
    assert (check.reason, check.detail) == ("dg_hash_mismatch", "DG2 differs from the SOD")


def test_photo_not_read_is_not_checked(genuine: emu.Document, csca: pki.Holder) -> None:
    altered = dataclasses.replace(genuine, photo=emu.sample_jpeg(seed=99))
    identity = read(altered, store(csca), read_photo=False)
    assert identity.photo is None
    assert identity.document_check.passed


def test_issuer_signing_a_wrong_hash_fails(signer: pki.Holder, csca: pki.Holder) -> None:
    doc = pki.signed_document(emu.Document(), signer, lie_about=1)
    check = read(doc, store(csca)).document_check
    assert (check.reason, check.detail) == ("dg_hash_mismatch", "DG1 differs from the SOD")


def test_signer_from_another_csca_is_unknown(csca: pki.Holder) -> None:
    other = pki.make_csca("XX", common_name="CSCA Elsewhere")
    doc = pki.signed_document(emu.Document(), pki.make_signer(other))
    check = read(doc, store(csca), now=pki.NOW).document_check
    assert (check.status, check.reason) == (CheckStatus.FAILED, "unknown_csca")
    assert check.country == "XX"


def test_impostor_csca_with_the_same_name(csca: pki.Holder) -> None:
    impostor = pki.make_csca(not_before=NOW - 5 * YEAR, not_after=NOW + 15 * YEAR)
    assert impostor.cert.subject == csca.cert.subject
    # With key identifiers the impostor's Document Signer names a CSCA key nobody trusts ...
    doc = pki.signed_document(emu.Document(), pki.make_signer(impostor))
    assert read(doc, store(csca)).document_check.reason == "unknown_csca"
    # ... without them the name matches and the certificate's signature does not hold.
    doc = pki.signed_document(emu.Document(), pki.make_signer(impostor, key_identifiers=False))
    check = read(doc, store(csca)).document_check
    assert (check.status, check.reason) == (CheckStatus.FAILED, "ds_signature_invalid")


def test_key_rollover_finds_the_right_csca(csca: pki.Holder) -> None:
    old = pki.make_csca(not_before=NOW - 5 * YEAR, not_after=NOW + 15 * YEAR)
    doc = pki.signed_document(emu.Document(), pki.make_signer(old, key_identifiers=False))
    assert read(doc, store(csca, old)).document_check.passed


def test_tampered_sod_signature_fails(signer: pki.Holder, csca: pki.Holder) -> None:
    doc = pki.signed_document(emu.Document(), signer, break_signature=True)
    check = read(doc, store(csca)).document_check
    assert (check.status, check.reason) == (CheckStatus.FAILED, "sod_signature_invalid")


def test_message_digest_that_lies_fails(signer: pki.Holder, csca: pki.Holder) -> None:
    doc = pki.signed_document(emu.Document(), signer, message_digest=bytes(32))
    check = read(doc, store(csca)).document_check
    assert (check.reason, check.detail) == (
        "sod_signature_invalid",
        "message digest does not match the content",
    )


def test_missing_sod_fails(csca: pki.Holder) -> None:
    chip = RecordingChip(emu.Document())
    identity = read(emu.Document(), store(csca), chip=chip)
    assert identity.document_check == DocumentCheck(CheckStatus.FAILED, "no_sod", detail=(
        "the chip has no EF.SOD"
    ))  # fmt: skip
    assert FID_SOD in chip.selected


def test_sod_the_chip_refuses_fails(genuine: emu.Document, csca: pki.Holder) -> None:
    chip = RecordingChip(genuine)
    chip.refuse_sod = True
    identity = read(genuine, store(csca), chip=chip)
    assert identity.document_check.reason == "sod_unreadable"
    assert identity.name == "HUANG XIAO MING"


def test_no_trust_store_is_not_checked_and_sod_not_read(genuine: emu.Document) -> None:
    chip = RecordingChip(genuine)
    identity = read(genuine, None, chip=chip)
    assert identity.document_check is NOT_CHECKED
    assert identity.document_check.status is CheckStatus.NOT_CHECKED
    assert identity.document_check.reason == "no_trust_store"
    assert FID_SOD not in chip.selected
    assert chip.selected[0] == emu.FID_DG1


def test_sod_without_signer_certificate(signer: pki.Holder, csca: pki.Holder) -> None:
    doc = pki.signed_document(emu.Document(), signer, include_certificate=False)
    assert read(doc, store(csca)).document_check.reason == "ds_certificate_missing"


@pytest.mark.parametrize(
    "sod",
    [
        emu.ef_sod(b"\x30\x03\x02\x01\x01"),
        b"\x77\x03\x04\x01\x00",
        emu.ef_sod(b"\x30\x82\x01\x00" + bytes(20)),
        b"\x61\x02\x30\x00",
    ],
)
def test_malformed_sod(sod: bytes, csca: pki.Holder) -> None:
    check = verify(sod, {1: b"\x61\x00"}, store(csca), now=NOW)
    assert (check.status, check.reason) == (CheckStatus.FAILED, "malformed_sod")


def test_sod_over_other_content_is_malformed(signer: pki.Holder, csca: pki.Holder) -> None:
    content = pki.signed_data(signer, "1.2.840.113549.1.7.1", b"hello")
    check = verify(emu.ef_sod(content), {}, store(csca), now=NOW)
    assert check.reason == "malformed_sod"


# ---- dates -------------------------------------------------------------------------------


def test_signer_past_its_validity_fails_a_valid_document(csca: pki.Holder) -> None:
    ds = pki.make_signer(csca, not_before=NOW - 3 * YEAR, not_after=NOW - YEAR)
    doc = pki.signed_document(emu.Document(expiry="350630"), ds)
    check = read(doc, store(csca)).document_check
    assert (check.status, check.reason) == (CheckStatus.FAILED, "ds_not_valid_now")


def test_expired_document_is_checked_at_its_expiry(csca: pki.Holder) -> None:
    # Issued 2015 for five years by a signer valid 2014..2021; read in 2026.
    ds = pki.make_signer(
        csca, not_before=dt.datetime(2014, 1, 1, tzinfo=dt.UTC), not_after=NOW - 5 * YEAR
    )
    doc = pki.signed_document(emu.Document(expiry="200101"), ds)
    identity = read(doc, store(csca))
    assert identity.valid_until == dt.date(2020, 1, 1)
    assert identity.document_check.passed, identity.document_check


def test_signing_time_within_validity_is_accepted(csca: pki.Holder) -> None:
    # An issuer whose Document Signer certificates end with the key usage period.
    ds = pki.make_signer(csca, not_before=NOW - 3 * YEAR, not_after=NOW - YEAR)
    doc = pki.signed_document(emu.Document(), ds, signing_time=NOW - 2 * YEAR)
    assert read(doc, store(csca)).document_check.passed
    late = pki.signed_document(emu.Document(), ds, signing_time=NOW - YEAR // 2)
    assert read(late, store(csca)).document_check.reason == "ds_not_valid_now"


def test_signer_not_yet_valid_fails(csca: pki.Holder) -> None:
    ds = pki.make_signer(csca, not_before=NOW + YEAR, not_after=NOW + 10 * YEAR)
    doc = pki.signed_document(emu.Document(), ds)
    assert read(doc, store(csca)).document_check.reason == "ds_not_valid_now"


def test_expired_csca_fails() -> None:
    root = pki.make_csca(not_before=NOW - 20 * YEAR, not_after=NOW - YEAR)
    ds = pki.make_signer(root, not_before=NOW - 5 * YEAR, not_after=NOW + 5 * YEAR)
    doc = pki.signed_document(emu.Document(), ds)
    assert read(doc, store(root)).document_check.reason == "csca_not_valid_now"


def test_now_must_carry_a_time_zone(genuine: emu.Document, csca: pki.Holder) -> None:
    with pytest.raises(ValueError, match="time zone"):
        verify(genuine.sod, genuine.data_groups(), store(csca), now=dt.datetime(2026, 1, 1))


# ---- the trust store ---------------------------------------------------------------------


def test_master_list_trust_store(tmp_path: Path, genuine: emu.Document, csca: pki.Holder) -> None:
    other = pki.make_csca("XX", kind="ec")
    list_signer = pki.make_signer(csca, common_name="Master List Signer")
    (tmp_path / "utopia.ml").write_bytes(pki.master_list(list_signer, [other, csca]))
    (tmp_path / "README.txt").write_text("not a certificate")
    trust = TrustStore.load(tmp_path)
    assert len(trust) == 2
    assert read(genuine, trust).document_check.passed


def test_master_list_with_a_broken_signature_is_refused(tmp_path: Path, csca: pki.Holder) -> None:
    list_signer = pki.make_signer(csca, common_name="Master List Signer")
    path = tmp_path / "bad.ml"
    path.write_bytes(pki.master_list(list_signer, [csca], break_signature=True))
    with pytest.raises(TrustStoreError, match="master list signature"):
        TrustStore.load(path)
    assert len(TrustStore.load(path, verify_master_lists=False)) == 1


def test_master_list_signed_outside_the_list_is_refused(csca: pki.Holder) -> None:
    stranger = pki.make_csca("XX")
    list_signer = pki.make_signer(stranger, common_name="Master List Signer")
    with pytest.raises(TrustStoreError, match="unknown_csca"):
        TrustStore.from_bytes([("ml", pki.master_list(list_signer, [csca]))])


def test_directory_of_pem_and_der(tmp_path: Path, genuine: emu.Document, csca: pki.Holder) -> None:
    other = pki.make_csca("XX", kind="ec")
    (tmp_path / "bundle.pem").write_bytes(other.pem + csca.pem)
    (tmp_path / "utopia.der").write_bytes(csca.der)  # the same CSCA twice counts once
    trust = TrustStore.load(tmp_path)
    assert len(trust) == 2
    assert read(genuine, trust).document_check.passed
    assert read(genuine, TrustStore.load(tmp_path / "utopia.der")).document_check.passed


def test_unusable_trust_store_fails_at_load(tmp_path: Path) -> None:
    with pytest.raises(TrustStoreError, match="no CSCA"):
        TrustStore.load(tmp_path)
    garbage = tmp_path / "x.pem"
    garbage.write_bytes(b"\x30\x03\x02\x01\x01")
    with pytest.raises(TrustStoreError, match=r"x\.pem"):
        TrustStore.load(garbage)
    with pytest.raises(TrustStoreError, match="cannot read"):
        TrustStore.load(tmp_path / "missing.der")


def test_record_has_no_detail() -> None:
    check = DocumentCheck(CheckStatus.FAILED, "unknown_csca", "XX", "CN=DS", "internal")
    assert check.as_record() == {
        "status": "failed",
        "reason": "unknown_csca",
        "country": "XX",
        "signer": "CN=DS",
    }


def test_hash_nobody_supports_is_not_checked(signer: pki.Holder, csca: pki.Holder) -> None:
    doc = emu.Document()
    lds = pki.lds_security_object(doc.data_groups(), "md5")
    sod = emu.ef_sod(pki.signed_data(signer, pki.OID_LDS_SECURITY_OBJECT, lds))
    check = verify(sod, doc.data_groups(), store(csca), now=NOW)
    assert (check.status, check.reason) == (CheckStatus.NOT_CHECKED, "unsupported_algorithm")
