"""The terminal takes only the catalogue its platform signed, and keeps the last good one."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.catalogue import CatalogueError
from kiosk.catalogue_store import CatalogueStore
from kiosk.trust import CatalogueSignatureError, signing_keys
from tests.unit.test_forms_and_catalogue import CATALOGUE
from tests.unit.test_trust import signed_by


class Source:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.calls = 0

    def get_catalogue(self) -> dict[str, Any]:
        self.calls += 1
        return copy.deepcopy(self.data)


def _catalogue(version: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    data["version"] = version
    return data


@pytest.fixture
def platform_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "data" / "catalogue.json"


@pytest.fixture
def bundled(tmp_path: Path) -> Path:
    path = tmp_path / "bundled.json"
    path.write_text(json.dumps(_catalogue("bundled"), ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def store(cache: Path, bundled: Path, platform_key: Ed25519PrivateKey) -> CatalogueStore:
    return CatalogueStore(cache, bundled, signing_keys([platform_key.public_key()]))


def test_a_signed_catalogue_is_taken_and_cached_with_its_signature(
    store: CatalogueStore, cache: Path, bundled: Path, platform_key: Ed25519PrivateKey
) -> None:
    assert store.load_local().version == "bundled"
    assert store.refresh(Source(signed_by(_catalogue("v2"), platform_key))).version == "v2"
    stored = json.loads(cache.read_bytes())
    assert stored["signature"]["alg"] == "Ed25519"
    assert store.load_local().version == "v2"
    # The next start, with the same keys, takes the cached copy.
    again = CatalogueStore(cache, bundled, signing_keys([platform_key.public_key()]))
    assert again.load_local().version == "v2"


def _tampered(signed: dict[str, Any]) -> dict[str, Any]:
    signed["services"][0]["name"]["zh_CN"] = "假的服务"
    return signed


@pytest.mark.parametrize(
    "case",
    [
        (lambda key: _tampered(signed_by(_catalogue("v3"), key)), "bad_signature"),
        (lambda key: _catalogue("v3"), "unsigned"),
        (lambda key: signed_by(_catalogue("v3"), Ed25519PrivateKey.generate()), "unknown_key"),
        (lambda key: dict(_catalogue("v3"), signature={"alg": "Ed25519"}), "malformed_signature"),
    ],
    ids=["tampered", "unsigned", "another key", "malformed"],
)
def test_a_catalogue_not_signed_by_the_platform_is_refused_and_the_last_good_kept(
    store: CatalogueStore,
    cache: Path,
    platform_key: Ed25519PrivateKey,
    caplog: pytest.LogCaptureFixture,
    case: tuple[Any, str],
) -> None:
    make, code = case
    store.refresh(Source(signed_by(_catalogue("good"), platform_key)))
    kept = cache.read_bytes()
    with pytest.raises(CatalogueSignatureError) as caught:
        store.refresh(Source(make(platform_key)))
    assert caught.value.code == code
    assert isinstance(caught.value, CatalogueError)  # reported as any refused catalogue is
    assert cache.read_bytes() == kept
    assert store.load_local().version == "good"
    assert "refused" in caplog.text
    assert code in caplog.text


def test_a_refused_first_catalogue_leaves_no_cache(
    store: CatalogueStore, cache: Path, platform_key: Ed25519PrivateKey
) -> None:
    with pytest.raises(CatalogueSignatureError):
        store.refresh(Source(_catalogue("unsigned")))
    assert not cache.exists()
    assert store.load_local().version == "bundled"


def _edit_version(path: Path) -> None:
    data = json.loads(path.read_bytes())
    data["version"] = "edited"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _edit_service(path: Path) -> None:
    path.write_bytes(path.read_bytes().replace("居住证".encode(), "居往证".encode(), 1))


def _drop_signature(path: Path) -> None:
    data = json.loads(path.read_bytes())
    del data["signature"]
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _not_json(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-1])


def _not_an_object(path: Path) -> None:
    path.write_text("[]", encoding="utf-8")


@pytest.mark.parametrize(
    "edit", [_edit_version, _edit_service, _drop_signature, _not_json, _not_an_object]
)
def test_a_cache_edited_on_disk_is_refused_and_the_bundled_used(
    store: CatalogueStore,
    cache: Path,
    platform_key: Ed25519PrivateKey,
    caplog: pytest.LogCaptureFixture,
    edit: Any,
) -> None:
    store.refresh(Source(signed_by(_catalogue("good"), platform_key)))
    before = cache.read_bytes()
    edit(cache)
    assert cache.read_bytes() != before
    assert store.load_local().version == "bundled"
    assert "catalogue.json unusable" in caplog.text


def test_a_cache_laid_out_differently_still_verifies(
    store: CatalogueStore, cache: Path, platform_key: Ed25519PrivateKey
) -> None:
    # The signature is over the canonical form, not the bytes on disk.
    store.refresh(Source(signed_by(_catalogue("good"), platform_key)))
    data = json.loads(cache.read_bytes())
    cache.write_text(json.dumps(data, indent=4, sort_keys=True), encoding="utf-8")
    assert store.load_local().version == "good"


def test_an_edited_cache_and_no_bundled_copy_is_an_error(
    cache: Path, platform_key: Ed25519PrivateKey
) -> None:
    store = CatalogueStore(cache, None, signing_keys([platform_key.public_key()]))
    store.refresh(Source(signed_by(_catalogue("good"), platform_key)))
    _edit_version(cache)
    with pytest.raises(CatalogueError) as caught:
        store.load_local()
    assert "bad_signature" in caught.value.detail


def test_a_cache_from_before_enrolment_is_refused_once_keys_are_given(
    cache: Path, bundled: Path, platform_key: Ed25519PrivateKey
) -> None:
    CatalogueStore(cache, bundled).refresh(Source(_catalogue("unsigned")))
    assert CatalogueStore(cache, bundled).load_local().version == "unsigned"
    enrolled = CatalogueStore(cache, bundled, signing_keys([platform_key.public_key()]))
    assert enrolled.load_local().version == "bundled"


def test_the_bundled_copy_is_trusted_as_the_code_is(store: CatalogueStore, bundled: Path) -> None:
    assert "signature" not in json.loads(bundled.read_bytes())
    assert store.load_local().version == "bundled"


def test_without_keys_unsigned_and_signed_are_taken_as_before(
    cache: Path, bundled: Path, platform_key: Ed25519PrivateKey
) -> None:
    store = CatalogueStore(cache, bundled)
    assert store.refresh(Source(_catalogue("plain"))).version == "plain"
    assert store.load_local().version == "plain"
    signed = _tampered(signed_by(_catalogue("signed"), platform_key))
    assert store.refresh(Source(signed)).version == "signed"  # nothing checks it yet
    assert store.load_local().version == "signed"


def test_a_platform_key_rotation_with_both_keys_trusted(
    cache: Path, bundled: Path, platform_key: Ed25519PrivateKey
) -> None:
    new_key = Ed25519PrivateKey.generate()
    both = signing_keys([platform_key.public_key(), new_key.public_key()])
    store = CatalogueStore(cache, bundled, both)
    assert store.refresh(Source(signed_by(_catalogue("old"), platform_key))).version == "old"
    assert store.refresh(Source(signed_by(_catalogue("new"), new_key))).version == "new"
    assert store.load_local().version == "new"


def test_the_store_says_when_its_catalogue_came_from_the_platform(
    store: CatalogueStore, cache: Path, bundled: Path, platform_key: Ed25519PrivateKey
) -> None:
    assert store.load_local().version == "bundled"
    assert store.fetched_at() is None  # the shipped one
    store.refresh(Source(signed_by(_catalogue("v2"), platform_key)))
    taken = store.fetched_at()
    assert taken is not None and taken == cache.stat().st_mtime
    again = CatalogueStore(cache, bundled, signing_keys([platform_key.public_key()]))
    assert again.load_local().version == "v2" and again.fetched_at() == taken
    _edit_version(cache)  # refused on the next load: the bundled one is in use again
    assert again.load_local().version == "bundled" and again.fetched_at() is None
