"""tenants.api_keys: key format, hashing, and what a principal may carry (no database needed)."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from tenants.api_keys import (
    ApiKeyInfo,
    ApiKeyPrincipal,
    authenticate,
    create_api_key,
    generate_key,
    hash_key,
    key_prefix,
    revoke_api_key,
)

FORMAT = re.compile(r"aer_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")


class NoDatabase:
    """A connection that fails the test if it is used."""

    async def execute(self, *_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the database should not have been asked")


NO_DB = cast(AsyncConnection, NoDatabase())


def test_generated_key_format() -> None:
    prefix, key = generate_key()
    match = FORMAT.fullmatch(key)
    assert match is not None and match.group(1) == prefix
    assert len(key) == 4 + 8 + 1 + 43
    assert key_prefix(key) == prefix


def test_keys_are_unique() -> None:
    keys = {generate_key()[1] for _ in range(500)}
    assert len(keys) == 500
    assert len({key_prefix(k) for k in keys}) > 490  # 32 bits of prefix: collisions are rare, not forbidden


def test_hash_is_sha256_of_the_whole_key() -> None:
    _, key = generate_key()
    assert hash_key(key) == hashlib.sha256(key.encode()).digest()
    assert len(hash_key(key)) == 32
    assert hash_key(key) != hash_key(key[:-1] + ("A" if key[-1] != "A" else "B"))


@pytest.mark.parametrize("key", [
    "", "aer_", "Bearer aer_0123abcd_" + "a" * 43, "aer_0123ABCD_" + "a" * 43, "aer_0123abc_" + "a" * 44,
    "aer_0123abcd_" + "a" * 42, "aer_0123abcd_" + "a" * 44, "aer_0123abcd_" + "a" * 42 + "=",
    "xyz_0123abcd_" + "a" * 43, "aer_0123abcd-" + "a" * 43, " aer_0123abcd_" + "a" * 43,
])
def test_malformed_keys_have_no_prefix(key: str) -> None:
    assert key_prefix(key) is None


async def test_malformed_key_is_refused_without_a_query() -> None:
    assert await authenticate(NO_DB, "aer_nothex00_" + "a" * 43) is None


async def test_revoke_with_a_non_uuid_id_is_refused_without_a_query() -> None:
    assert await revoke_api_key(NO_DB, tenant_id="t", key_id="1; DROP TABLE api_keys") is False


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
async def test_key_name_is_required_and_bounded(name: str) -> None:
    with pytest.raises(ValueError, match="key name"):
        await create_api_key(NO_DB, tenant_id="t", name=name)


def test_principal_carries_no_secret() -> None:
    names = {f.name for f in dataclasses.fields(ApiKeyPrincipal)}
    assert names == {"key_id", "tenant_id", "name", "prefix"}
    assert not {f.name for f in dataclasses.fields(ApiKeyInfo)} & {"key_hash", "hash", "key", "secret"}
    prefix, key = generate_key()
    principal = ApiKeyPrincipal(key_id="k", tenant_id="t", name="ci", prefix=prefix)
    shown = repr(principal)
    assert key not in shown and hash_key(key).hex() not in shown and key[13:] not in shown
    with pytest.raises(dataclasses.FrozenInstanceError):
        principal.tenant_id = "other"  # type: ignore[misc]
