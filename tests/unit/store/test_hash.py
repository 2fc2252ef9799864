"""The stored form of unit ids."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from service.store.sink import hash_unit


def test_known_value() -> None:
    expected = hmac.new(b"key", b"user-1", hashlib.sha256).hexdigest()[:32]
    assert hash_unit(b"key", "user-1") == expected
    assert len(expected) == 32


@given(st.text(), st.binary(min_size=1, max_size=64))
def test_hash_is_hex_and_keyed(unit_id: str, key: bytes) -> None:
    digest = hash_unit(key, unit_id)
    assert len(digest) == 32 and int(digest, 16) >= 0
    assert digest == hash_unit(key, unit_id)
    assert digest != hash_unit(key + b"x", unit_id)
